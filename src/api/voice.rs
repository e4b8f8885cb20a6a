//! The text voice path: one utterance in, one typed answer out. `/v1/voice` returns it as
//! JSON and `encore say` prints it (as text or the same JSON): both call [`answer`].

use super::TrackDto;
use crate::domain::Listener;
use crate::interaction::speech::{self, Lang};
use crate::interaction::{Intent, LocaleModel, command_for};
use crate::service::{Outcome, PlayBehavior, Playback, PlayerState, Service, SessionEffect};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the skill understood, said and played.
#[derive(Debug, Serialize)]
pub struct VoiceAnswer {
    pub intent: IntentDto,
    pub speech: Option<String>,
    pub reprompt: Option<String>,
    pub end_session: bool,
    pub playback: Option<PlaybackDto>,
    /// The tracks after the one starting.
    pub upcoming: Vec<TrackDto>,
}

#[derive(Debug, Serialize)]
pub struct IntentDto {
    pub name: String,
    pub slots: BTreeMap<String, SlotDto>,
}

#[derive(Debug, Serialize)]
pub struct SlotDto {
    /// The words as heard (none: the slot was not filled).
    pub heard: Option<String>,
    /// The slot value's id, when the words resolved to one.
    pub id: Option<String>,
}

/// A playback directive, as a text client can show it.
#[derive(Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlaybackDto {
    Play {
        behavior: &'static str,
        token: String,
        offset_ms: u64,
        track: Box<TrackDto>,
    },
    Stop,
    ClearEnqueued,
}

/// Parses `text` with the locale's model and handles it as `listener`, as the voice path
/// would (no device playback state: the text path has none).
pub async fn answer(
    service: &Service,
    model: &LocaleModel,
    listener: &Listener,
    text: &str,
) -> VoiceAnswer {
    let intent = model.parse(text);
    let outcome = service
        .handle(listener, &PlayerState::default(), command_for(&intent))
        .await;
    VoiceAnswer::new(&intent, &outcome, Lang::of(&listener.locale))
}

impl VoiceAnswer {
    fn new(intent: &Intent, outcome: &Outcome, lang: Lang) -> Self {
        let words = outcome.reply.as_ref().map(|r| speech::words(r, lang));
        let slots = intent
            .slots
            .iter()
            .map(|(name, fill)| {
                let slot = SlotDto {
                    heard: fill.heard.clone(),
                    id: fill.id.clone(),
                };
                (name.clone(), slot)
            })
            .collect();
        let playback = outcome.playback.as_ref().map(|p| match p {
            Playback::Play {
                behavior,
                token,
                track,
                offset_ms,
                ..
            } => PlaybackDto::Play {
                behavior: match behavior {
                    PlayBehavior::ReplaceAll => "REPLACE_ALL",
                    PlayBehavior::Enqueue => "ENQUEUE",
                    PlayBehavior::ReplaceEnqueued => "REPLACE_ENQUEUED",
                },
                token: token.clone(),
                offset_ms: *offset_ms,
                track: Box::new(TrackDto::from(track)),
            },
            Playback::Stop => PlaybackDto::Stop,
            Playback::ClearEnqueued => PlaybackDto::ClearEnqueued,
        });
        let (speech, reprompt) = match words {
            Some(w) => (Some(w.speech), w.reprompt),
            None => (None, None),
        };
        VoiceAnswer {
            intent: IntentDto {
                name: intent.name.clone(),
                slots,
            },
            speech,
            reprompt,
            end_session: outcome.session == SessionEffect::End,
            playback,
            upcoming: outcome.upcoming.iter().map(TrackDto::from).collect(),
        }
    }
}
