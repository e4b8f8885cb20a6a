//! The Alexa response envelope, with field names from the `ask-sdk-model` typings, and the
//! platform's limits enforced where a response is built.

use serde::Serialize;

/// The platform rejects larger responses.
pub const MAX_RESPONSE_BYTES: usize = 24 * 1024;
/// Longest output speech, in characters (the SSML markup included).
pub const MAX_SPEECH_CHARS: usize = 8000;
/// Longest AudioPlayer token.
pub const MAX_TOKEN_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseEnvelope {
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    pub response: Response,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_speech: Option<OutputSpeech>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reprompt: Option<Reprompt>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub directives: Vec<Directive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub should_end_session: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum OutputSpeech {
    PlainText {
        text: String,
    },
    #[serde(rename = "SSML")]
    Ssml {
        ssml: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reprompt {
    pub output_speech: OutputSpeech,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Card {
    Simple {
        title: String,
        content: String,
    },
    Standard {
        title: String,
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        image: Option<CardImage>,
    },
    /// Asks the listener, in the Alexa app, to link their account.
    LinkAccount,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardImage {
    pub small_image_url: String,
    pub large_image_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlayBehavior {
    ReplaceAll,
    Enqueue,
    ReplaceEnqueued,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClearBehavior {
    ClearEnqueued,
    ClearAll,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
#[allow(clippy::large_enum_variant)] // built once per response, never stored in bulk
pub enum Directive {
    #[serde(rename = "AudioPlayer.Play")]
    Play {
        play_behavior: PlayBehavior,
        audio_item: AudioItem,
    },
    #[serde(rename = "AudioPlayer.Stop")]
    Stop {},
    #[serde(rename = "AudioPlayer.ClearQueue")]
    ClearQueue { clear_behavior: ClearBehavior },
    /// Asks for one slot of the intent the listener began: Alexa hears the answer with the
    /// dialog model's samples for that slot ("relaxing", "something relaxing") and sends the
    /// same intent again with it filled.
    #[serde(rename = "Dialog.ElicitSlot")]
    ElicitSlot {
        slot_to_elicit: String,
        updated_intent: UpdatedIntent,
    },
}

/// The intent as the skill hands it back with a dialog directive.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedIntent {
    pub name: String,
    pub confirmation_status: &'static str,
    pub slots: std::collections::BTreeMap<String, UpdatedSlot>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedSlot {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub confirmation_status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioItem {
    pub stream: Stream,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AudioItemMetadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    pub url: String,
    pub token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_previous_token: Option<String>,
    pub offset_in_milliseconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioItemMetadata {
    pub title: String,
    pub subtitle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub art: Option<Image>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background_image: Option<Image>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_description: Option<String>,
    pub sources: Vec<ImageSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSource {
    pub url: String,
}

impl ResponseEnvelope {
    pub fn new(response: Response) -> Self {
        ResponseEnvelope {
            version: "1.0",
            session_attributes: None,
            response,
        }
    }

    /// An empty response: what SessionEndedRequest and reports with nothing to do get.
    pub fn empty() -> Self {
        Self::new(Response::default())
    }

    /// Serialises within the platform's size limit: an oversize response loses its card
    /// and audio metadata first, then its reprompt.
    pub fn to_bytes(mut self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(&self).unwrap_or_default();
        if bytes.len() > MAX_RESPONSE_BYTES {
            tracing::warn!(
                bytes = bytes.len(),
                "response over the platform limit, trimming"
            );
            self.response.card = None;
            self.response.reprompt = None;
            for d in &mut self.response.directives {
                if let Directive::Play { audio_item, .. } = d {
                    audio_item.metadata = None;
                }
            }
            bytes = serde_json::to_vec(&self).unwrap_or_default();
        }
        bytes
    }
}

/// SSML speech for `text`, escaped and cut to the platform's limit at a word boundary.
pub fn ssml(text: &str) -> OutputSpeech {
    const WRAP: usize = "<speak></speak>".len();
    let mut escaped = String::with_capacity(text.len() + 16);
    let mut cut_at = 0;
    let mut chars = WRAP;
    for c in text.chars() {
        let piece: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            _ => "",
        };
        let add = if piece.is_empty() {
            1
        } else {
            piece.chars().count()
        };
        if chars + add > MAX_SPEECH_CHARS {
            if cut_at > 0 {
                escaped.truncate(cut_at);
            }
            break;
        }
        if c.is_whitespace() {
            cut_at = escaped.len();
        }
        chars += add;
        if piece.is_empty() {
            escaped.push(c)
        } else {
            escaped.push_str(piece)
        }
    }
    OutputSpeech::Ssml {
        ssml: format!("<speak>{}</speak>", escaped.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_escaped() {
        let OutputSpeech::Ssml { ssml } = ssml("Rock & Roll <live> \"Tom's\"") else {
            unreachable!()
        };
        assert_eq!(
            ssml,
            "<speak>Rock &amp; Roll &lt;live&gt; &quot;Tom&apos;s&quot;</speak>"
        );
    }

    #[test]
    fn long_speech_is_cut_at_a_word_within_the_limit() {
        let text = "la & la ".repeat(2000);
        let OutputSpeech::Ssml { ssml } = ssml(&text) else {
            unreachable!()
        };
        assert!(ssml.chars().count() <= MAX_SPEECH_CHARS, "{}", ssml.len());
        assert!(
            ssml.ends_with("la</speak>") || ssml.ends_with("&amp;</speak>"),
            "{}",
            &ssml[ssml.len() - 30..]
        );
    }
}
