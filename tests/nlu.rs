//! The text parser, driven by data: tests/nlu/<locale>.tsv lists utterances and what they
//! must mean, for every locale shipped in intents/. A second test feeds every sample
//! utterance of the interaction model back through the parser. A third scores the parser
//! on tests/nlu/natural/<locale>.tsv: at least 30 requests per locale, written as people
//! ask for music there and apart from the samples, with the accuracy per locale printed.

use crate::common;

use encore::interaction::{InteractionModel, LocaleModel};
use serde_json::Value;
use std::collections::HashMap;

fn model() -> InteractionModel {
    let artists = HashMap::from([(
        "AMAZON.Musician".to_owned(),
        vec!["Theo Dubois".to_owned(), "Neon Embers".to_owned()],
    )]);
    InteractionModel::load(&common::repo().join("intents"), &artists).unwrap()
}

fn check(model: &LocaleModel, utterance: &str, intent: &str, slots: &str) -> Result<(), String> {
    let parsed = model.parse(utterance);
    if parsed.name != intent {
        return Err(format!(
            "{utterance:?}: expected {intent}, got {} {:?}",
            parsed.name, parsed.slots
        ));
    }
    for pair in slots.split(',').filter(|p| !p.trim().is_empty()) {
        let (slot, id) = pair
            .split_once('=')
            .ok_or_else(|| format!("bad slot spec {pair:?}"))?;
        let fill = parsed
            .slots
            .get(slot.trim())
            .ok_or_else(|| format!("{utterance:?}: slot {slot} missing"))?;
        let ok = if id == "*" {
            fill.heard.is_some()
        } else {
            fill.id.as_deref() == Some(id.trim())
        };
        if !ok {
            return Err(format!(
                "{utterance:?}: slot {slot} expected {id}, got {fill:?}"
            ));
        }
    }
    Ok(())
}

/// Each row of the table at `path` (utterance, intent, slots; `#` comments), checked.
fn check_table(model: &LocaleModel, path: &str) -> Vec<Result<(), String>> {
    let path = common::repo().join(path);
    let table = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("every shipped locale needs {}", path.display()));
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            check(model, cols[0], cols[1], cols.get(2).copied().unwrap_or(""))
        })
        .collect()
}

#[test]
fn every_locale_understands_its_test_utterances() {
    let model = model();
    let mut failures = Vec::new();
    let mut checked = 0;
    for locale in model.locales().map(str::to_owned).collect::<Vec<_>>() {
        let m = model.locale(&locale);
        assert_eq!(m.locale, locale);
        for result in check_table(m, &format!("tests/nlu/{locale}.tsv")) {
            checked += 1;
            if let Err(e) = result {
                failures.push(format!("[{locale}] {e}"));
            }
        }
    }
    assert!(checked > 60, "only {checked} utterances checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every sample utterance, with each slot filled by each of its type's values, parses back to
/// its own intent with that value: the parser really is built from the interaction model.
#[test]
fn every_sample_utterance_parses_back_to_its_intent() {
    let model = model();
    let mut failures = Vec::new();
    let mut checked = 0;
    for locale in model.locales().map(str::to_owned).collect::<Vec<_>>() {
        let path = common::repo().join(format!(
            "intents/skill-package/interactionModels/custom/{locale}.json"
        ));
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let lm = &json["interactionModel"]["languageModel"];
        let values = |ty: &str| -> Vec<(String, String)> {
            match ty {
                "AMAZON.Musician" => return vec![("Theo Dubois".into(), "Theo Dubois".into())],
                // Open: any words are heard, none resolves to an id.
                "AMAZON.MusicRecording" => return vec![("Slow Window".into(), "*".into())],
                "AMAZON.MusicAlbum" => return vec![("Restless Bloom".into(), "*".into())],
                "AMAZON.MusicPlaylist" => return vec![("road trip".into(), "*".into())],
                _ => {}
            }
            let t = lm["types"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == ty)
                .unwrap();
            t["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["name"]["value"].as_str().unwrap().to_owned(),
                        v["id"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let m = model.locale(&locale);
        for intent in lm["intents"].as_array().unwrap() {
            let name = intent["name"].as_str().unwrap();
            let slots: Vec<(String, String)> = intent["slots"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (
                                s["name"].as_str().unwrap().to_owned(),
                                s["type"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            for sample in intent["samples"].as_array().unwrap() {
                let sample = sample.as_str().unwrap();
                // Every value of the sample's first slot, with the first value of each other.
                let used: Vec<&(String, String)> = slots
                    .iter()
                    .filter(|(slot, _)| sample.contains(&format!("{{{slot}}}")))
                    .collect();
                let Some(((first, first_type), others)) = used.split_first() else {
                    checked += 1;
                    if let Err(e) = check(m, sample, name, "") {
                        failures.push(format!("[{locale}] {e}"));
                    }
                    continue;
                };
                let mut text = sample.to_owned();
                let mut expected = Vec::new();
                for (slot, ty) in others {
                    let (value, id) = values(ty).swap_remove(0);
                    text = text.replace(&format!("{{{slot}}}"), &value);
                    expected.push(format!("{slot}={id}"));
                }
                for (value, id) in values(first_type) {
                    checked += 1;
                    let text = text.replace(&format!("{{{first}}}"), &value);
                    let mut expected = expected.clone();
                    expected.push(format!("{first}={id}"));
                    if let Err(e) = check(m, &text, name, &expected.join(",")) {
                        failures.push(format!("[{locale}] {e}"));
                    }
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} samples checked");
    let share = failures.len() as f64 / checked as f64;
    assert!(
        failures.is_empty(),
        "{} of {checked} ({:.1}%) failed, first ones:\n{}",
        failures.len(),
        share * 100.0,
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_unknown_locale_falls_back_to_its_language_then_to_en_us() {
    let model = model();
    assert_eq!(model.locale("en-NZ").locale.split('-').next(), Some("en"));
    assert_eq!(model.locale("de-AT").locale, "de-DE");
    for (asked, served) in [
        ("fr-BE", "fr-FR"),
        ("fr-CH", "fr-FR"),
        ("es-AR", "es-ES"),
        ("it-CH", "it-IT"),
        ("nl-BE", "nl-NL"),
        ("pt-PT", "pt-BR"),
        ("fr-CA", "fr-CA"),
        ("es-MX", "es-MX"),
    ] {
        assert_eq!(model.locale(asked).locale, served, "{asked}");
    }
    assert_eq!(model.locale("ja-JP").locale, "en-US");
}

/// Least share of a locale's natural requests the parser must understand.
const NATURAL_ACCURACY: f64 = 0.9;

#[test]
fn the_parser_understands_how_people_ask_for_music_in_every_locale() {
    let model = model();
    let mut report = Vec::new();
    let mut below = Vec::new();
    for locale in model.locales().map(str::to_owned).collect::<Vec<_>>() {
        let m = model.locale(&locale);
        let (mut total, mut misses) = (0, Vec::new());
        for result in check_table(m, &format!("tests/nlu/natural/{locale}.tsv")) {
            total += 1;
            if let Err(e) = result {
                misses.push(e);
            }
        }
        assert!(total >= 30, "{locale}: only {total} natural requests");
        let accuracy = (total - misses.len()) as f64 / total as f64;
        report.push(format!("{locale}: {accuracy:.3} of {total}"));
        if accuracy < NATURAL_ACCURACY {
            below.push(format!(
                "{locale} ({accuracy:.3}):\n  {}",
                misses.join("\n  ")
            ));
        }
        for miss in &misses {
            eprintln!("[{locale}] not understood: {miss}");
        }
    }
    eprintln!("natural requests understood: {}", report.join(", "));
    assert!(
        below.is_empty(),
        "below {NATURAL_ACCURACY}:\n{}",
        below.join("\n")
    );
}
