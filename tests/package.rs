//! The skill package (`intents/skill-package`, what `ask deploy --target skill-metadata`
//! uploads) as Amazon would take it: every file validates against the JSON Schemas
//! generated from `ask-smapi-model`'s typings (`tests/schema/generate.sh`), the directory
//! holds only what the package format allows, and what certification checks first holds in
//! every locale (invocation names, icons, policy URLs, example phrases the model
//! understands, no ambiguous carrier phrases, a dialog model for every slot the skill asks
//! for). `infra/skill/configure.py` is run on a copy.

use crate::common;

use encore::interaction::InteractionModel;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn package() -> PathBuf {
    common::repo().join("intents/skill-package")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(schema: &str) -> jsonschema::Validator {
    let schema = read(&common::repo().join("tests/schema").join(schema));
    jsonschema::validator_for(&schema).unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn manifest() -> Value {
    read(&package().join("skill.json"))
}

/// Each locale's interaction model file, by locale.
fn models() -> BTreeMap<String, Value> {
    let dir = package().join("interactionModels/custom");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let locale = p.file_stem().unwrap().to_str().unwrap().to_owned();
            (locale, read(&p))
        })
        .collect()
}

fn published_locales(manifest: &Value) -> BTreeSet<String> {
    manifest["manifest"]["publishingInformation"]["locales"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_package_file_validates_against_the_smapi_schemas() {
    let skill = validator("skill-manifest.schema.json");
    let model = validator("interaction-model.schema.json");
    let problems = errors(&skill, &manifest());
    assert!(problems.is_empty(), "skill.json:\n{}", problems.join("\n"));
    let models = models();
    assert!(models.len() >= 3, "{:?}", models.keys());
    for (locale, m) in &models {
        let problems = errors(&model, m);
        assert!(problems.is_empty(), "{locale}:\n{}", problems.join("\n"));
    }
    // The checks can fail: a misspelled field, a wrong enum value, a missing part.
    let mut bad = manifest();
    bad["manifest"]["apis"]["custom"]["endpoint"]["sslCertificateType"] = "Trusty".into();
    assert!(!errors(&skill, &bad).is_empty());
    let mut bad = manifest();
    bad["manifest"]["publishingInformation"]["locales"]["en-US"]["examplePhrase"] =
        serde_json::json!(["Alexa, open encore music"]);
    assert!(!errors(&skill, &bad).is_empty());
    let mut bad = models["en-US"].clone();
    bad["interactionModel"]["languageModel"]
        .as_object_mut()
        .unwrap()
        .remove("invocationName");
    assert!(!errors(&model, &bad).is_empty());
}

/// The files of `dir`, relative to it, recursively.
fn files(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, root, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

#[test]
fn the_package_holds_only_what_the_format_allows_and_ask_cli_finds_it() {
    let mut found = Vec::new();
    files(&package(), &package(), &mut found);
    let allowed = |f: &str| {
        f == "skill.json"
            || (f.starts_with("interactionModels/custom/") && f.ends_with(".json"))
            || (f.starts_with("assets/images/") && f.ends_with(".png"))
    };
    let stray: Vec<&String> = found.iter().filter(|f| !allowed(f)).collect();
    assert!(stray.is_empty(), "not part of a skill package: {stray:?}");
    let resources = read(&common::repo().join("ask-resources.json"));
    assert_eq!(
        resources["profiles"]["default"]["skillMetadata"]["src"],
        "./intents/skill-package"
    );
}

/// Width and height of a PNG file, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Words an invocation name may not contain (Amazon's invocation name requirements: launch
/// phrases, connecting words, wake words).
const NOT_IN_INVOCATION: [&str; 17] = [
    "alexa", "amazon", "echo", "computer", "skill", "app", "launch", "ask", "tell", "open", "load",
    "begin", "enable", "to", "from", "by", "and",
];

#[test]
fn every_locale_meets_the_certification_basics() {
    let manifest = manifest();
    let m = &manifest["manifest"];
    let published = published_locales(&manifest);
    let models = models();
    assert_eq!(
        published,
        models.keys().cloned().collect::<BTreeSet<_>>(),
        "every published locale has an interaction model, and no model is unpublished"
    );
    assert!(
        ["Trusted", "Wildcard"].contains(
            &m["apis"]["custom"]["endpoint"]["sslCertificateType"]
                .as_str()
                .unwrap()
        ),
        "the stack's certificate is an ACM one: Trusted (or Wildcard)"
    );
    let instructions = m["publishingInformation"]["testingInstructions"]
        .as_str()
        .unwrap();
    for needed in ["open encore music", "CDN", "pause", "stop"] {
        assert!(
            instructions.contains(needed),
            "testing instructions say {needed:?}"
        );
    }
    let intents = InteractionModel::load(&common::repo().join("intents"), &HashMap::new()).unwrap();
    for locale in &published {
        let info = &m["publishingInformation"]["locales"][locale];
        let invocation = models[locale]["interactionModel"]["languageModel"]["invocationName"]
            .as_str()
            .unwrap();
        let words: Vec<&str> = invocation.split(' ').collect();
        assert!(words.len() >= 2, "{locale}: {invocation:?} is one word");
        assert!(
            invocation
                .chars()
                .all(|c| c.is_lowercase() || c == ' ' || c == '\''),
            "{locale}: {invocation:?} has other than lower-case letters and spaces"
        );
        for word in &words {
            assert!(
                !NOT_IN_INVOCATION.contains(word),
                "{locale}: {invocation:?} contains {word:?}"
            );
        }
        for (key, size) in [("smallIconUri", 108), ("largeIconUri", 512)] {
            let uri = info[key]
                .as_str()
                .unwrap_or_else(|| panic!("{locale}: {key}"));
            let file = uri.strip_prefix("file://").expect("a file in the package");
            assert_eq!(
                png_size(&package().join(file)),
                (size, size),
                "{locale}: {key}"
            );
        }
        let privacy = &m["privacyAndCompliance"]["locales"][locale];
        for key in ["privacyPolicyUrl", "termsOfUseUrl"] {
            assert!(
                privacy[key]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://")),
                "{locale}: {key}"
            );
        }
        // Example phrases come from the samples: each names the skill and means something.
        let phrases = info["examplePhrases"].as_array().unwrap();
        assert!((1..=3).contains(&phrases.len()), "{locale}");
        let model = intents.locale(locale);
        assert_eq!(model.locale, *locale);
        for phrase in phrases {
            let phrase = phrase.as_str().unwrap();
            assert!(phrase.starts_with("Alexa, "), "{locale}: {phrase:?}");
            assert!(
                phrase.to_lowercase().contains(invocation),
                "{locale}: {phrase:?} does not name {invocation:?}"
            );
            let parsed = model.parse(phrase);
            assert!(
                parsed.name != "AMAZON.FallbackIntent" && parsed.name != "LaunchRequest",
                "{locale}: {phrase:?} is not understood ({})",
                parsed.name
            );
        }
    }
}

/// A sample with its slots written alike, and the slot names it has.
fn shape(sample: &str) -> (String, Vec<String>) {
    let mut slots = Vec::new();
    let words: Vec<String> = sample
        .split_whitespace()
        .map(
            |w| match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(slot) => {
                    slots.push(slot.to_owned());
                    "{}".to_owned()
                }
                None => w.to_owned(),
            },
        )
        .collect();
    (words.join(" "), slots)
}

/// The words that begin a request to play in each language (an open slot may share a
/// carrier with a closed one after them: the closed values match exactly, the rest is the
/// open slot). Dutch puts the verb last after "vraag encore muziek om": "{} te spelen"
/// begins with the slot.
fn play_verbs(locale: &str) -> &'static [&'static str] {
    match &locale[..2] {
        "de" => &["spiel", "spiele", "starte", "leg"],
        "fr" => &["mets", "joue", "lance", "mettre", "jouer", "fais", "tu"],
        "es" => &[
            "pon",
            "ponme",
            "poner",
            "ponga",
            "reproduce",
            "reproducir",
            "toca",
            "puedes",
        ],
        "it" => &[
            "metti",
            "mettimi",
            "mettere",
            "suona",
            "suonare",
            "riproduci",
            "fammi",
            "puoi",
        ],
        "pt" => &[
            "toca", "toque", "tocar", "coloca", "coloque", "bota", "põe", "pode",
        ],
        "nl" => &["speel", "draai", "zet", "start", "{}"],
        _ => &["play", "put", "start"],
    }
}

#[test]
fn the_models_have_no_ambiguous_carriers_or_empty_synonyms_and_a_dialog_for_every_asked_slot() {
    for (locale, m) in models() {
        let lm = &m["interactionModel"]["languageModel"];
        let intents = lm["intents"].as_array().unwrap();
        let slot_type = |intent: &str, slot: &str| -> String {
            let i = intents.iter().find(|i| i["name"] == intent).unwrap();
            i["slots"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == slot)
                .map(|s| s["type"].as_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{locale}: {intent} has no slot {slot}"))
        };
        // carrier -> (intent, whether the sample has an open slot)
        let mut carriers: BTreeMap<String, BTreeSet<(String, bool)>> = BTreeMap::new();
        for i in intents {
            let name = i["name"].as_str().unwrap();
            for sample in i["samples"].as_array().into_iter().flatten() {
                let (carrier, slots) = shape(sample.as_str().unwrap());
                let open = slots
                    .iter()
                    .any(|s| slot_type(name, s).starts_with("AMAZON."));
                carriers
                    .entry(carrier)
                    .or_default()
                    .insert((name.to_owned(), open));
            }
        }
        for (carrier, users) in &carriers {
            let intents: BTreeSet<&String> = users.iter().map(|(i, _)| i).collect();
            let open: Vec<&String> = users.iter().filter(|(_, o)| *o).map(|(i, _)| i).collect();
            if intents.len() < 2 || open.is_empty() {
                continue;
            }
            assert_eq!(
                open.len(),
                1,
                "{locale}: {carrier:?} is an open slot in {open:?}"
            );
            let first = carrier.split(' ').next().unwrap();
            assert!(
                carrier == "{}" || play_verbs(&locale).contains(&first),
                "{locale}: {carrier:?} is shared by {intents:?} with an open slot in {open:?}"
            );
        }
        for ty in lm["types"].as_array().unwrap() {
            for v in ty["values"].as_array().unwrap() {
                let value = v["name"]["value"].as_str().unwrap().to_lowercase();
                for synonym in v["name"]["synonyms"].as_array().into_iter().flatten() {
                    assert_ne!(
                        synonym.as_str().unwrap().to_lowercase(),
                        value,
                        "{locale}: a synonym equal to its value"
                    );
                }
            }
        }
        // Every slot the skill asks for (`SlotKind`) has a dialog entry with a prompt and
        // slot samples, so Alexa hears a one-word answer after Dialog.ElicitSlot.
        let dialog = m["interactionModel"]["dialog"]["intents"]
            .as_array()
            .unwrap();
        let prompts: BTreeSet<&str> = m["interactionModel"]["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        for (intent, slot) in [
            ("PlayMoodIntent", "mood"),
            ("PlayGenreIntent", "genre"),
            ("PlayArtistIntent", "artist"),
            ("PlaySongIntent", "song"),
            ("PlayAlbumIntent", "album"),
            ("PlayPlaylistIntent", "playlist"),
            ("PlayDecadeIntent", "decade"),
        ] {
            let entry = dialog
                .iter()
                .find(|d| d["name"] == intent)
                .unwrap_or_else(|| panic!("{locale}: no dialog for {intent}"));
            let s = entry["slots"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == slot)
                .unwrap();
            let prompt = s["prompts"]["elicitation"].as_str().unwrap();
            assert!(prompts.contains(prompt), "{locale}: {prompt}");
            let defined = intents.iter().find(|i| i["name"] == intent).unwrap()["slots"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["name"] == slot)
                .unwrap()
                .clone();
            let samples = defined["samples"].as_array().unwrap();
            assert!(
                samples.iter().any(|x| x == &format!("{{{slot}}}")),
                "{locale}: {intent}.{slot} hears the value alone"
            );
        }
    }
}

#[test]
fn configure_sets_the_endpoint_and_policies_of_a_deployment_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(package().join("skill.json"), dir.path().join("skill.json")).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("python3")
            .arg(common::repo().join("infra/skill/configure.py"))
            .arg("--package")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--endpoint",
        "https://music.example.org/alexa",
        "--privacy-url",
        "https://example.org/privacy",
        "--privacy-url",
        "de-DE=https://example.org/de/datenschutz",
        "--terms-url",
        "https://example.org/terms",
        "--certificate",
        "wildcard",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = read(&dir.path().join("skill.json"));
    let m = &written["manifest"];
    assert_eq!(
        m["apis"]["custom"]["endpoint"]["uri"],
        "https://music.example.org/alexa"
    );
    assert_eq!(
        m["apis"]["custom"]["endpoint"]["sslCertificateType"],
        "Wildcard"
    );
    let policies = &m["privacyAndCompliance"]["locales"];
    assert_eq!(
        policies["de-DE"]["privacyPolicyUrl"],
        "https://example.org/de/datenschutz"
    );
    assert_eq!(
        policies["en-US"]["privacyPolicyUrl"],
        "https://example.org/privacy"
    );
    assert_eq!(
        policies["en-GB"]["termsOfUseUrl"],
        "https://example.org/terms"
    );
    assert!(errors(&validator("skill-manifest.schema.json"), &written).is_empty());

    let before = std::fs::read(dir.path().join("skill.json")).unwrap();
    let out = run(&["--endpoint", "http://music.example.org/alexa"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https://"));
    assert_eq!(
        std::fs::read(dir.path().join("skill.json")).unwrap(),
        before
    );
}
