//! Intent names and slots -> service commands, for both the Alexa and the text path.

use crate::domain::{Mood, Selection, is_decade};
use crate::domain::{Named, Wanted};
use crate::service::{Command, SlotKind};
use std::collections::HashMap;

/// A slot as heard, and the slot value id it resolved to (if any).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotFill {
    pub heard: Option<String>,
    pub id: Option<String>,
}

/// An intent with its slots, from Alexa or from the text parser.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Intent {
    pub name: String,
    pub slots: HashMap<String, SlotFill>,
}

impl Intent {
    fn id(&self, slot: &str) -> Option<&str> {
        self.slots.get(slot).and_then(|s| s.id.as_deref())
    }

    fn heard(&self, slot: &str) -> Option<&str> {
        self.slots
            .get(slot)
            .and_then(|s| s.heard.as_deref())
            .filter(|h| !h.trim().is_empty())
    }
}

/// What the text parser answers for an utterance that only names the skill ("open encore").
pub const LAUNCH: &str = "LaunchRequest";

pub fn command_for(intent: &Intent) -> Command {
    match intent.name.as_str() {
        LAUNCH => Command::Launch,
        "PlayMoodIntent" => match intent.id("mood").and_then(|id| id.parse::<Mood>().ok()) {
            Some(mood) => Command::Play(Selection::Mood(mood)),
            None => Command::Missing(SlotKind::Mood),
        },
        "PlayGenreIntent" => match intent.id("genre") {
            Some(genre) => Command::Play(Selection::Genre(genre.to_owned())),
            None => Command::Missing(SlotKind::Genre),
        },
        "PlayArtistIntent" => match intent.id("artist").or(intent.heard("artist")) {
            Some(artist) => Command::Play(Selection::Artist(artist.to_owned())),
            None => Command::Missing(SlotKind::Artist),
        },
        "PlaySongIntent" => named(intent, Wanted::Song, SlotKind::Song),
        "PlayAlbumIntent" => named(intent, Wanted::Album, SlotKind::Album),
        "PlayPlaylistIntent" => match intent.heard("playlist") {
            Some(name) => Command::PlayPlaylist(name.to_owned()),
            None => Command::Missing(SlotKind::Playlist),
        },
        "PlayFavouritesIntent" => Command::PlayFavourites,
        "PlayDecadeIntent" => decade(intent),
        "PlayUnheardIntent" => Command::Play(Selection::Unheard),
        "MoreLikeThisIntent" => Command::MoreLikeThis,
        "LikeIntent" => Command::Like,
        "DislikeIntent" => Command::Dislike,
        "WhatIsPlayingIntent" => Command::WhatIsPlaying,
        "WhyThisSongIntent" => Command::WhyThisSong,
        "AMAZON.PauseIntent" => Command::Pause,
        "AMAZON.ResumeIntent" => Command::Resume,
        "AMAZON.NextIntent" => Command::Next,
        "AMAZON.PreviousIntent" => Command::Previous,
        "AMAZON.StartOverIntent" | "AMAZON.RepeatIntent" => Command::StartOver,
        "AMAZON.LoopOnIntent" => Command::Loop(true),
        "AMAZON.LoopOffIntent" => Command::Loop(false),
        "AMAZON.ShuffleOnIntent" => Command::Shuffle(true),
        "AMAZON.ShuffleOffIntent" => Command::Shuffle(false),
        "AMAZON.StopIntent" | "AMAZON.CancelIntent" => Command::Stop,
        "AMAZON.HelpIntent" => Command::Help,
        "AMAZON.NavigateHomeIntent" => Command::NavigateHome,
        "AMAZON.FallbackIntent" => Command::Fallback,
        other => {
            tracing::info!(intent = other, "unknown intent, answering with fallback");
            Command::Fallback
        }
    }
}

/// A song or an album named in the slot of `kind`, by the artist in slot `artist` if
/// filled; without it, that slot is asked for.
fn named(intent: &Intent, wanted: Wanted, kind: SlotKind) -> Command {
    match intent.heard(kind.slot_name()) {
        Some(name) => Command::PlayNamed(Named {
            wanted,
            name: name.to_owned(),
            artist: intent.heard("artist").map(str::to_owned),
        }),
        None => Command::Missing(kind),
    }
}

/// Music of the decade in slot `decade` (its id, or what was heard when it resolved to
/// none: "1970s", "the 70's"), of the genre in slot `genre` if one was said. A genre heard
/// but not known is kept as heard, so the answer says it has none rather than playing the
/// decade without it.
fn decade(intent: &Intent) -> Command {
    let decade = intent
        .id("decade")
        .or(intent.heard("decade"))
        .and_then(decade_said);
    let Some(decade) = decade else {
        return Command::Missing(SlotKind::Decade);
    };
    let genre = intent
        .id("genre")
        .or(intent.heard("genre"))
        .map(|g| g.trim().to_lowercase());
    Command::Play(Selection::Decade { decade, genre })
}

/// The first year of a decade written as digits: "1980", "1980s", "80s", "the 80's".
fn decade_said(said: &str) -> Option<u16> {
    let digits: String = said.chars().filter(char::is_ascii_digit).collect();
    let year: u16 = match digits.len() {
        2 => 1900 + digits.parse::<u16>().ok()?,
        4 => digits.parse().ok()?,
        _ => return None,
    };
    is_decade(year).then_some(year)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decade_is_read_from_how_it_is_written() {
        for (said, decade) in [
            ("1980", Some(1980)),
            ("1980s", Some(1980)),
            ("80s", Some(1980)),
            ("the 70's", Some(1970)),
            ("2010s", Some(2010)),
            ("1985", None),
            ("eighties", None),
            ("1880s", None),
            ("123", None),
        ] {
            assert_eq!(decade_said(said), decade, "{said}");
        }
    }
}
