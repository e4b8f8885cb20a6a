//! Loading `intents/`: one interaction model per locale from the skill package
//! (`intents/skill-package/interactionModels/custom/<locale>.json`, what `ask deploy`
//! uploads), and the sample phrases of Alexa's built-in intents (Alexa knows them itself;
//! the text path needs them spelled out, in `intents/builtins/<locale>.json`, outside the
//! package).

use super::package::{IntentDef, LanguageModel, ModelFile, normalize, tokenize};
use super::parser::{ListedValues, OpenValues, Parser};
use super::{Intent, SlotFill};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One locale's intents, slot types and utterance parser.
pub struct LocaleModel {
    pub locale: String,
    pub invocation_name: String,
    intents: Vec<IntentDef>,
    /// slot type -> normalised phrase -> value id
    values: HashMap<String, HashMap<String, String>>,
    parser: Parser,
}

/// Every locale in `intents/`.
pub struct InteractionModel {
    locales: BTreeMap<String, LocaleModel>,
}

/// The locale answered when a request names one we do not ship.
pub const DEFAULT_LOCALE: &str = "en-US";

impl InteractionModel {
    /// Loads `dir/skill-package/interactionModels/custom/*.json` and
    /// `dir/builtins/<locale>.json`.
    /// `open_values` lists known values of open slot types (e.g. catalog artists for
    /// `AMAZON.Musician`), used by the text parser only.
    pub fn load(
        dir: &Path,
        open_values: &HashMap<String, Vec<String>>,
    ) -> Result<Self, ModelError> {
        Self::load_with(dir, Arc::new(ListedValues::new(open_values)))
    }

    /// `load`, with the known values of open slot types looked up in `open` (the
    /// catalog's artists), which every locale shares.
    pub fn load_with(dir: &Path, open: Arc<dyn OpenValues>) -> Result<Self, ModelError> {
        let custom = dir
            .join("skill-package")
            .join("interactionModels")
            .join("custom");
        let entries = std::fs::read_dir(&custom).map_err(|source| ModelError::Io {
            path: custom.clone(),
            source,
        })?;
        let mut locales = BTreeMap::new();
        for entry in entries {
            let path = entry
                .map_err(|source| ModelError::Io {
                    path: custom.clone(),
                    source,
                })?
                .path();
            let Some(locale) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| path.extension().is_some_and(|e| e == "json"))
            else {
                continue;
            };
            let file: ModelFile = read_json(&path)?;
            let builtins_path = dir.join("builtins").join(format!("{locale}.json"));
            let builtins: BTreeMap<String, Vec<String>> = if builtins_path.exists() {
                read_json(&builtins_path)?
            } else {
                BTreeMap::new()
            };
            let model = LocaleModel::build(
                locale,
                file.interaction_model.language_model,
                builtins,
                open.clone(),
            )
            .map_err(|message| ModelError::Invalid {
                path: path.clone(),
                message,
            })?;
            locales.insert(locale.to_owned(), model);
        }
        if !locales.contains_key(DEFAULT_LOCALE) {
            return Err(ModelError::Invalid {
                path: custom,
                message: format!("no {DEFAULT_LOCALE} model"),
            });
        }
        Ok(InteractionModel { locales })
    }

    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.locales.keys().map(String::as_str)
    }

    /// Whether some locale's model has an intent of this name: what a request may name is
    /// anything, what the skill knows is this fixed set (metric labels use it).
    pub fn knows_intent(&self, name: &str) -> bool {
        self.locales
            .values()
            .any(|m| m.intent_names().any(|n| n == name))
    }

    /// The model for `locale`: the same locale, else the language's home locale (fr-BE ->
    /// fr-FR, es-AR -> es-ES), else another of the same language, else en-US.
    pub fn locale(&self, locale: &str) -> &LocaleModel {
        if let Some(m) = self.locales.get(locale) {
            return m;
        }
        let language = locale
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let home = format!("{language}-{}", language.to_ascii_uppercase());
        self.locales
            .get(&home)
            .or_else(|| {
                self.locales
                    .values()
                    .find(|m| m.locale.split('-').next() == Some(language.as_str()))
            })
            .unwrap_or_else(|| &self.locales[DEFAULT_LOCALE])
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_owned(),
        source,
    })
}

impl LocaleModel {
    fn build(
        locale: &str,
        mut lm: LanguageModel,
        builtins: BTreeMap<String, Vec<String>>,
        open: Arc<dyn OpenValues>,
    ) -> Result<Self, String> {
        let mut values: HashMap<String, HashMap<String, String>> = HashMap::new();
        for ty in &lm.types {
            let table = values.entry(ty.name.clone()).or_default();
            for v in &ty.values {
                let id = v.id.clone().unwrap_or_else(|| v.name.value.clone());
                for phrase in std::iter::once(&v.name.value).chain(&v.name.synonyms) {
                    table.insert(normalize(phrase), id.clone());
                }
            }
        }
        for (name, samples) in builtins {
            match lm.intents.iter_mut().find(|i| i.name == name) {
                Some(intent) => intent.samples.extend(samples),
                None => lm.intents.push(IntentDef {
                    name,
                    slots: Vec::new(),
                    samples,
                }),
            }
        }
        for intent in &lm.intents {
            for slot in &intent.slots {
                if !slot.type_name.starts_with("AMAZON.") && !values.contains_key(&slot.type_name) {
                    return Err(format!(
                        "intent {} uses undefined slot type {}",
                        intent.name, slot.type_name
                    ));
                }
            }
        }
        let parser = Parser::new(&lm.intents, values.clone(), open)?;
        Ok(LocaleModel {
            locale: locale.to_owned(),
            invocation_name: lm.invocation_name,
            intents: lm.intents,
            values,
            parser,
        })
    }

    /// The id of the slot value `heard` matches, through its name or a synonym.
    pub fn resolve(&self, slot_type: &str, heard: &str) -> Option<&str> {
        self.values
            .get(slot_type)?
            .get(&normalize(heard))
            .map(String::as_str)
    }

    /// The slot type of `intent`'s slot `slot`.
    pub fn slot_type(&self, intent: &str, slot: &str) -> Option<&str> {
        let intent = self.intents.iter().find(|i| i.name == intent)?;
        intent
            .slots
            .iter()
            .find(|s| s.name == slot)
            .map(|s| s.type_name.as_str())
    }

    pub fn intent_names(&self) -> impl Iterator<Item = &str> {
        self.intents.iter().map(|i| i.name.as_str())
    }

    /// Understands a typed or transcribed utterance. Anything it cannot place confidently
    /// becomes `AMAZON.FallbackIntent`.
    pub fn parse(&self, text: &str) -> Intent {
        let tokens = tokenize(text);
        let tokens = strip_invocation(&tokens, &self.invocation_name);
        if tokens.is_empty() {
            return Intent {
                name: super::command::LAUNCH.into(),
                slots: Default::default(),
            };
        }
        match self.parser.parse(tokens) {
            Some(found) => {
                let slots = found
                    .slots
                    .into_iter()
                    .map(|(name, (heard, id))| {
                        (
                            name,
                            SlotFill {
                                heard: Some(heard),
                                id,
                            },
                        )
                    })
                    .collect();
                Intent {
                    name: found.intent,
                    slots,
                }
            }
            None => Intent {
                name: "AMAZON.FallbackIntent".into(),
                slots: Default::default(),
            },
        }
    }
}

/// Drops "alexa", and "ask encore to" / "sage encore" style openings around the invocation name,
/// in every language shipped.
fn strip_invocation<'a>(tokens: &'a [String], invocation: &str) -> &'a [String] {
    let mut rest = tokens;
    if rest.first().is_some_and(|t| t == "alexa") {
        rest = &rest[1..];
    }
    let name = tokenize(invocation);
    if let Some(at) = rest
        .windows(name.len().max(1))
        .take(4)
        .position(|w| w == name.as_slice())
    {
        rest = &rest[at + name.len()..];
        // "ask encore to", "sage encore music, dass", "demande à encore musique de",
        // "pide a encore música que", "chiedi a encore musica di", "peça ao encore música
        // para", "vraag encore muziek om"; and "and" in each language.
        const JOINERS: [&str; 14] = [
            "to", "and", "for", "zu", "dass", "und", "de", "et", "que", "y", "di", "e", "para",
            "om",
        ];
        if rest.first().is_some_and(|t| JOINERS.contains(&t.as_str())) {
            rest = &rest[1..];
        }
    }
    rest
}
