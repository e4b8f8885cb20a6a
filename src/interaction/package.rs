//! The ask-cli skill package's interaction-model file format (what `intents/` holds), and the
//! one way utterances and sample phrases are normalised into tokens.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ModelFile {
    pub interaction_model: InteractionModelJson,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InteractionModelJson {
    pub language_model: LanguageModel,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LanguageModel {
    pub invocation_name: String,
    pub intents: Vec<IntentDef>,
    #[serde(default)]
    pub types: Vec<SlotType>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct IntentDef {
    pub name: String,
    #[serde(default)]
    pub slots: Vec<SlotDef>,
    #[serde(default)]
    pub samples: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct SlotDef {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct SlotType {
    pub name: String,
    pub values: Vec<SlotTypeValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct SlotTypeValue {
    pub id: Option<String>,
    pub name: SlotValueName,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct SlotValueName {
    pub value: String,
    #[serde(default)]
    pub synonyms: Vec<String>,
}

/// Lower case, punctuation (but apostrophes) to spaces, single spaces.
pub(super) fn normalize(s: &str) -> String {
    tokenize(s).join(" ")
}

pub(super) fn tokenize(s: &str) -> Vec<String> {
    s.chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' => '\'',
            c if c.is_alphanumeric() || c == '\'' => c,
            _ => ' ',
        })
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .map(|t| t.trim_matches('\'').to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}
