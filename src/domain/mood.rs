//! Moods a listener can ask for, with the ids the interaction model uses.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The moods a listener can ask for. Their ids are the slot value ids of the `MOOD` slot type
/// in `intents/`, shared by every locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mood {
    Relaxing,
    Energetic,
    Happy,
    Sad,
    Focus,
    Party,
    Sleep,
    Workout,
}

impl Mood {
    pub const ALL: [Mood; 8] = [
        Mood::Relaxing,
        Mood::Energetic,
        Mood::Happy,
        Mood::Sad,
        Mood::Focus,
        Mood::Party,
        Mood::Sleep,
        Mood::Workout,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Mood::Relaxing => "relaxing",
            Mood::Energetic => "energetic",
            Mood::Happy => "happy",
            Mood::Sad => "sad",
            Mood::Focus => "focus",
            Mood::Party => "party",
            Mood::Sleep => "sleep",
            Mood::Workout => "workout",
        }
    }
}

impl fmt::Display for Mood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown mood {0:?}")]
pub struct UnknownMood(String);

impl FromStr for Mood {
    type Err = UnknownMood;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mood::ALL
            .into_iter()
            .find(|m| m.id().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMood(s.to_owned()))
    }
}
