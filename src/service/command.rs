//! What goes into the service and what comes out of it.

use crate::domain::{Named, Reason, Selection, Token, Track, Wanted};
use std::sync::Arc;

/// Which slot a request lacked or did not resolve, so the listener can be asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    Mood,
    Genre,
    Artist,
    Song,
    Album,
    Playlist,
    Decade,
}

impl SlotKind {
    /// The slot's name in the interaction model (the same in every intent that has it).
    pub fn slot_name(self) -> &'static str {
        match self {
            SlotKind::Mood => "mood",
            SlotKind::Genre => "genre",
            SlotKind::Artist => "artist",
            SlotKind::Song => "song",
            SlotKind::Album => "album",
            SlotKind::Playlist => "playlist",
            SlotKind::Decade => "decade",
        }
    }
}

/// What the listener asked for, or what the device reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Launch,
    Play(Selection),
    /// A song or an album asked for by name.
    PlayNamed(Named),
    /// One of the listener's own playlists, by its name as said.
    PlayPlaylist(String),
    /// The tracks the listener liked.
    PlayFavourites,
    /// A play request whose slot was missing or matched nothing we know.
    Missing(SlotKind),
    MoreLikeThis,
    Like,
    Dislike,
    WhatIsPlaying,
    /// "Why did you play this?"
    WhyThisSong,
    Pause,
    Resume,
    Next,
    Previous,
    /// Start the current track again (StartOver and Repeat).
    StartOver,
    Shuffle(bool),
    Loop(bool),
    /// Stop and Cancel.
    Stop,
    Help,
    Fallback,
    NavigateHome,
    SessionEnded,
    Playback(PlaybackEvent),
}

impl Command {
    /// Whether answering it means a device streams audio: a device without the AudioPlayer
    /// interface gets speech for these instead.
    pub fn needs_audio(&self) -> bool {
        matches!(
            self,
            Command::Play(_)
                | Command::PlayNamed(_)
                | Command::PlayPlaylist(_)
                | Command::PlayFavourites
                | Command::MoreLikeThis
                | Command::Resume
                | Command::Next
                | Command::Previous
                | Command::StartOver
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackEventKind {
    Started,
    Finished,
    Stopped,
    NearlyFinished,
    Failed,
}

/// An AudioPlayer report from the device about the stream named by `token`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybackEvent {
    pub kind: PlaybackEventKind,
    pub token: String,
    pub offset_ms: u64,
}

/// What the device says it is doing (from the request's context).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerState {
    pub token: Option<String>,
    pub offset_ms: u64,
    pub playing: bool,
}

impl PlayerState {
    pub fn is_playing(&self) -> bool {
        self.playing
    }
}

/// Something to tell the listener; rendered per locale by whoever speaks it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Welcome,
    /// Music was asked for on a device that cannot stream it.
    NoAudioPlayer,
    Help,
    Fallback,
    Goodbye,
    AskFor(SlotKind),
    Playing {
        selection: Selection,
        track: Arc<Track>,
    },
    NoMatch(Selection),
    /// The song, or the first track of the album, asked for by name; more like it follows.
    PlayingNamed {
        wanted: Wanted,
        track: Arc<Track>,
    },
    /// Nothing in the catalog matches the name well; `artist` is the artist of the nearest
    /// match, to suggest.
    NotFound {
        named: Named,
        artist: Option<String>,
    },
    /// The listener's playlist `name` plays, `track` first.
    PlayingPlaylist {
        name: String,
        track: Arc<Track>,
    },
    /// None of the listener's `saved` playlists is called anything like `name`.
    NoPlaylist {
        name: String,
        saved: usize,
    },
    /// The listener's liked tracks play, shuffled, `track` first.
    PlayingFavourites(Arc<Track>),
    /// The listener has liked nothing yet.
    NoFavourites,
    NowPlaying(Arc<Track>),
    /// Why `track` is playing: the request that chose it and the strongest reason; `seed`
    /// is the track a "more like this" request started from.
    WhyThisSong {
        track: Arc<Track>,
        selection: Selection,
        reason: Reason,
        seed: Option<Arc<Track>>,
    },
    NothingPlaying,
    NothingToResume,
    Liked(Arc<Track>),
    Disliked(Arc<Track>),
    Shuffle(bool),
    Loop(bool),
    EndOfQueue,
    /// The linked account's token was refused: link the account again.
    RelinkAccount,
    /// Playback stopped because streams failed one after another; trying again.
    PlaybackFailing,
    /// Something behind the service failed; apologise without detail.
    Trouble,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayBehavior {
    ReplaceAll,
    Enqueue,
    ReplaceEnqueued,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Playback {
    Play {
        behavior: PlayBehavior,
        token: String,
        track: Arc<Track>,
        offset_ms: u64,
        /// For `Enqueue`: the token of the stream this one follows.
        expected_previous: Option<String>,
    },
    Stop,
    /// Drop what the device has enqueued after the current track.
    ClearEnqueued,
}

impl Playback {
    pub fn play(
        behavior: PlayBehavior,
        token: &Token,
        track: Arc<Track>,
        offset_ms: u64,
        expected_previous: Option<String>,
    ) -> Self {
        Playback::Play {
            behavior,
            token: token.to_string(),
            track,
            offset_ms,
            expected_previous,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEffect {
    /// The conversation is over (music may play on).
    End,
    /// A question was asked: keep listening.
    Listen,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: Option<Reply>,
    pub playback: Option<Playback>,
    pub session: SessionEffect,
    /// The tracks after the one starting, for clients that show a list.
    pub upcoming: Vec<Arc<Track>>,
}

impl Outcome {
    pub fn end(reply: Option<Reply>) -> Self {
        Outcome {
            reply,
            playback: None,
            session: SessionEffect::End,
            upcoming: Vec::new(),
        }
    }

    pub fn ask(reply: Reply) -> Self {
        Outcome {
            reply: Some(reply),
            playback: None,
            session: SessionEffect::Listen,
            upcoming: Vec::new(),
        }
    }

    /// Nothing to say or do (most device reports).
    pub fn silent() -> Self {
        Outcome::end(None)
    }
}
