//! What Encore says, per language. The service decides *what* to tell the listener (a
//! `Reply`); this module decides the words, for the voice and the text paths alike. Each
//! language is one table of phrases (`en.rs`, `de.rs`, ...) whose `{name}` holes are filled
//! here, so adding a language is one file and one `Lang` arm, and the compiler refuses a
//! table that lacks a phrase.

mod de;
mod en;
mod es;
mod fr;
mod it;
mod nl;
mod pt;

use crate::domain::{Mood, Reason, Selection, Track};
use crate::domain::{Named, Wanted};
use crate::service::{Reply, SlotKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
    It,
    Pt,
    Nl,
}

impl Lang {
    pub const ALL: [Lang; 7] = [
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::It,
        Lang::Pt,
        Lang::Nl,
    ];

    /// The language of a locale ("fr-CA" -> French); English for any language Encore does
    /// not speak.
    pub fn of(locale: &str) -> Lang {
        let language = locale
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match language.as_str() {
            "de" => Lang::De,
            "fr" => Lang::Fr,
            "es" => Lang::Es,
            "it" => Lang::It,
            "pt" => Lang::Pt,
            "nl" => Lang::Nl,
            _ => Lang::En,
        }
    }

    fn phrases(self) -> &'static Phrases {
        match self {
            Lang::En => &en::PHRASES,
            Lang::De => &de::PHRASES,
            Lang::Fr => &fr::PHRASES,
            Lang::Es => &es::PHRASES,
            Lang::It => &it::PHRASES,
            Lang::Pt => &pt::PHRASES,
            Lang::Nl => &nl::PHRASES,
        }
    }

    /// The word between a title and its artist on a card ("by", "von", "de").
    pub fn by(self) -> &'static str {
        self.phrases().by
    }
}

/// A question and what to ask again if the listener says nothing.
type Ask = (&'static str, &'static str);

/// Everything Encore says in one language. A `{name}` in a phrase is a hole filled from the
/// reply: `{track}` (title and artist, as `track` says them), `{title}`, `{artist}`,
/// `{album}`, `{name}` (a playlist's), `{genre}`, `{selection}` and `{asked}` (what was
/// asked for, as the selection phrases say it), `{what}` and `{decade}`.
struct Phrases {
    /// A mood asked for, in `Mood::ALL` order.
    moods: [&'static str; 8],
    /// Genres not said as their id is written ("classical" -> "Klassik"); others are said
    /// as their id with spaces for dashes.
    genres: &'static [(&'static str, &'static str)],
    /// "music by {artist}"
    artist: &'static str,
    /// "more like this"
    like_this: &'static str,
    /// "more like {title}": a "more like this" request, when the seed track is known.
    more_like: &'static str,
    /// "music": what a decade asked for without a genre plays.
    music: &'static str,
    /// "{what} from the {decade}s", `{decade}` being "80" or "2010".
    decade: &'static str,
    /// Music the listener has not heard.
    unheard: &'static str,
    /// "{title} by {artist}"
    track: &'static str,
    /// The word between title and artist on a card.
    by: &'static str,
    /// "You asked for {track}."
    requested: &'static str,
    /// "I picked {track} because you asked for {asked}"
    picked: &'static str,
    /// "{picked}, and {reason}."
    picked_because: &'static str,
    /// The reasons, in the order of `Reason` (Popular to Similar).
    reasons: [&'static str; 9],
    /// "{name} by {artist}": a song or album asked for by name with its artist.
    named_by: &'static str,
    /// Not found, with the nearest match's `{artist}` to suggest.
    not_found_artist: &'static str,
    /// Not found, nothing near.
    not_found: &'static str,
    welcome: Ask,
    no_audio_player: &'static str,
    help: Ask,
    fallback: Ask,
    goodbye: &'static str,
    ask_mood: Ask,
    ask_genre: Ask,
    ask_artist: Ask,
    ask_song: Ask,
    ask_album: Ask,
    ask_playlist: Ask,
    ask_decade: Ask,
    /// The card title while music starts.
    now_playing_title: &'static str,
    playing_song: &'static str,
    playing_album: &'static str,
    playing_playlist: &'static str,
    no_playlist_yet: Ask,
    no_playlist: Ask,
    playing_favourites: &'static str,
    no_favourites: Ask,
    /// "What else would you like to hear?"
    else_reprompt: &'static str,
    playing: &'static str,
    no_match: &'static str,
    now_playing: &'static str,
    why_title: &'static str,
    nothing_playing: Ask,
    nothing_to_resume: Ask,
    liked: &'static str,
    disliked: &'static str,
    shuffle_on: &'static str,
    shuffle_off: &'static str,
    loop_on: &'static str,
    loop_off: &'static str,
    end_of_queue: &'static str,
    relink: &'static str,
    playback_failing: &'static str,
    trouble: &'static str,
}

/// `phrase` with each `{key}` of `holes` replaced by its value, in one pass: a value that
/// itself contains braces (a title such as "{untitled}") is taken as it is.
fn fill(phrase: &str, holes: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(phrase.len() + 32);
    let mut rest = phrase;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hole = after.find('}').and_then(|close| {
            holes
                .iter()
                .find(|(key, _)| *key == &after[..close])
                .map(|(_, value)| (close, *value))
        });
        match hole {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The words for one reply: the speech, a reprompt when a question is asked, a card title.
#[derive(Debug, Clone, PartialEq)]
pub struct Words {
    pub speech: String,
    pub reprompt: Option<String>,
    pub card_title: Option<String>,
}

fn mood_words(mood: Mood, lang: Lang) -> &'static str {
    let index = Mood::ALL
        .iter()
        .position(|m| *m == mood)
        .expect("Mood::ALL lists every mood");
    lang.phrases().moods[index]
}

fn selection_words(selection: &Selection, lang: Lang) -> String {
    let p = lang.phrases();
    match selection {
        Selection::Mood(m) => mood_words(*m, lang).to_owned(),
        Selection::Genre(g) => genre_words(g, lang),
        Selection::Artist(a) => fill(p.artist, &[("artist", a)]),
        Selection::LikeTrack(_) => p.like_this.to_owned(),
        Selection::Decade { decade, genre } => {
            let what = genre
                .as_deref()
                .map_or_else(|| p.music.to_owned(), |g| genre_words(g, lang));
            fill(
                p.decade,
                &[("what", &what), ("decade", &decade_number(*decade))],
            )
        }
        Selection::Unheard => p.unheard.to_owned(),
    }
}

/// A decade as people say it: "80" for the twentieth century's, "2010" for later ones; the
/// language's phrase adds "s", "er", "années" around it.
fn decade_number(decade: u16) -> String {
    if (1920..2000).contains(&decade) {
        (decade % 100).to_string()
    } else {
        decade.to_string()
    }
}

fn track_words(t: &Track, lang: Lang) -> String {
    fill(
        lang.phrases().track,
        &[("title", &t.title), ("artist", &t.artist)],
    )
}

/// A genre id as spoken: the language's own name for it, else the id ("hip-hop" ->
/// "hip hop").
fn genre_words(genre: &str, lang: Lang) -> String {
    match lang.phrases().genres.iter().find(|(id, _)| *id == genre) {
        Some((_, said)) => (*said).to_owned(),
        None => genre.replace('-', " "),
    }
}

/// "Why did you play this?": the request that chose the track, then its strongest reason.
fn why_words(
    track: &Track,
    selection: &Selection,
    reason: Reason,
    seed: Option<&Track>,
    lang: Lang,
) -> String {
    let p = lang.phrases();
    let said = track_words(track, lang);
    if reason == Reason::Requested {
        return fill(p.requested, &[("track", &said)]);
    }
    let asked = match (selection, seed) {
        (Selection::LikeTrack(_), Some(seed)) => fill(p.more_like, &[("title", &seed.title)]),
        _ => selection_words(selection, lang),
    };
    let picked = fill(p.picked, &[("track", &said), ("asked", &asked)]);
    let index = match reason {
        Reason::Popular => 0,
        Reason::Artist => 1,
        Reason::Genre => 2,
        Reason::PreferredGenre => 3,
        Reason::Sound => 4,
        Reason::FinishedBefore => 5,
        Reason::Model => 6,
        Reason::Exploring => 7,
        Reason::Similar => 8,
        Reason::Requested | Reason::Unrecorded => return format!("{picked}."),
    };
    let genre = genre_words(&track.genre, lang);
    let because = fill(
        p.reasons[index],
        &[("artist", &track.artist), ("genre", &genre)],
    );
    fill(
        p.picked_because,
        &[("picked", &picked), ("reason", &because)],
    )
}

/// A song or an album that is not in the catalog, and what to ask for instead: the nearest
/// match's artist if there is one, and a mood.
fn not_found_words(named: &Named, artist: Option<&str>, lang: Lang) -> String {
    let p = lang.phrases();
    let what = match &named.artist {
        Some(by) => fill(p.named_by, &[("name", &named.name), ("artist", by)]),
        None => named.name.clone(),
    };
    match artist {
        Some(a) => fill(p.not_found_artist, &[("what", &what), ("artist", a)]),
        None => fill(p.not_found, &[("what", &what)]),
    }
}

pub fn words(reply: &Reply, lang: Lang) -> Words {
    let p = lang.phrases();
    let say = |s: String| Words {
        speech: s,
        reprompt: None,
        card_title: None,
    };
    let ask = |(speech, reprompt): Ask| Words {
        speech: speech.to_owned(),
        reprompt: Some(reprompt.to_owned()),
        card_title: None,
    };
    let ask_about = |(speech, reprompt): Ask, holes: &[(&str, &str)]| Words {
        speech: fill(speech, holes),
        reprompt: Some(reprompt.to_owned()),
        card_title: None,
    };
    let playing = |speech: String| Words {
        speech,
        reprompt: None,
        card_title: Some(p.now_playing_title.to_owned()),
    };
    let track = |t: &Track| track_words(t, lang);
    match reply {
        Reply::Welcome => ask(p.welcome),
        Reply::NoAudioPlayer => say(p.no_audio_player.into()),
        Reply::Help => ask(p.help),
        Reply::Fallback => ask(p.fallback),
        Reply::Goodbye => say(p.goodbye.into()),
        Reply::AskFor(slot) => ask(match slot {
            SlotKind::Mood => p.ask_mood,
            SlotKind::Genre => p.ask_genre,
            SlotKind::Artist => p.ask_artist,
            SlotKind::Song => p.ask_song,
            SlotKind::Album => p.ask_album,
            SlotKind::Playlist => p.ask_playlist,
            SlotKind::Decade => p.ask_decade,
        }),
        Reply::PlayingNamed {
            wanted: Wanted::Song,
            track: t,
        } => playing(fill(p.playing_song, &[("track", &track(t))])),
        Reply::PlayingNamed {
            wanted: Wanted::Album,
            track: t,
        } => playing(fill(
            p.playing_album,
            &[("album", &t.album), ("artist", &t.artist)],
        )),
        Reply::PlayingPlaylist { name, track: t } => playing(fill(
            p.playing_playlist,
            &[("name", name), ("track", &track(t))],
        )),
        Reply::NoPlaylist { name, saved: 0 } => ask_about(p.no_playlist_yet, &[("name", name)]),
        Reply::NoPlaylist { name, .. } => ask_about(p.no_playlist, &[("name", name)]),
        Reply::PlayingFavourites(t) => playing(fill(p.playing_favourites, &[("track", &track(t))])),
        Reply::NoFavourites => ask(p.no_favourites),
        Reply::NotFound { named, artist } => Words {
            speech: not_found_words(named, artist.as_deref(), lang),
            reprompt: Some(p.else_reprompt.to_owned()),
            card_title: None,
        },
        Reply::Playing {
            selection,
            track: t,
        } => playing(fill(
            p.playing,
            &[
                ("selection", &selection_words(selection, lang)),
                ("track", &track(t)),
            ],
        )),
        Reply::NoMatch(selection) => Words {
            speech: fill(
                p.no_match,
                &[("selection", &selection_words(selection, lang))],
            ),
            reprompt: Some(p.else_reprompt.to_owned()),
            card_title: None,
        },
        Reply::NowPlaying(t) => say(fill(p.now_playing, &[("track", &track(t))])),
        Reply::WhyThisSong {
            track,
            selection,
            reason,
            seed,
        } => Words {
            speech: why_words(track, selection, *reason, seed.as_deref(), lang),
            reprompt: None,
            card_title: Some(p.why_title.to_owned()),
        },
        Reply::NothingPlaying => ask(p.nothing_playing),
        Reply::NothingToResume => ask(p.nothing_to_resume),
        Reply::Liked(t) => say(fill(p.liked, &[("title", &t.title)])),
        Reply::Disliked(_) => say(p.disliked.into()),
        Reply::Shuffle(on) => say(if *on { p.shuffle_on } else { p.shuffle_off }.into()),
        Reply::Loop(on) => say(if *on { p.loop_on } else { p.loop_off }.into()),
        Reply::EndOfQueue => say(p.end_of_queue.into()),
        Reply::RelinkAccount => say(p.relink.into()),
        Reply::PlaybackFailing => say(p.playback_failing.into()),
        Reply::Trouble => say(p.trouble.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn track(title: &str, artist: &str, genre: &str) -> Arc<Track> {
        Arc::new(Track::sample(title, artist, genre))
    }

    #[test]
    fn a_song_asked_for_by_name_and_one_not_found_are_answered_in_both_languages() {
        let t = track("Blue Hour", "Mara Lind", "jazz");
        let song = Reply::PlayingNamed {
            wanted: Wanted::Song,
            track: t.clone(),
        };
        assert!(
            words(&song, Lang::En)
                .speech
                .contains("Blue Hour by Mara Lind, then more like it")
        );
        assert!(
            words(&song, Lang::De)
                .speech
                .contains("Blue Hour von Mara Lind, danach")
        );
        let why = Reply::WhyThisSong {
            track: t.clone(),
            selection: Selection::LikeTrack(t.id.clone()),
            reason: Reason::Requested,
            seed: Some(t),
        };
        assert_eq!(
            words(&why, Lang::De).speech,
            "Du hast dir Blue Hour von Mara Lind gewünscht."
        );
        let named = Named {
            wanted: Wanted::Song,
            name: "halo".into(),
            artist: None,
        };
        let near = Reply::NotFound {
            named: named.clone(),
            artist: Some("Mara Lind".into()),
        };
        let w = words(&near, Lang::En);
        assert!(
            w.speech
                .contains("couldn't find halo. You could ask for music by Mara Lind")
        );
        assert!(w.reprompt.is_some(), "the listener can answer");
        let none = Reply::NotFound {
            named,
            artist: None,
        };
        assert!(words(&none, Lang::De).speech.contains("eine Stimmung"));
    }

    #[test]
    fn decades_and_something_new_are_said_as_people_say_them() {
        let eighties_rock = Selection::Decade {
            decade: 1980,
            genre: Some("rock".into()),
        };
        let noughties = Selection::Decade {
            decade: 2000,
            genre: None,
        };
        for (selection, lang, words) in [
            (&eighties_rock, Lang::En, "rock from the 80s"),
            (&eighties_rock, Lang::De, "rock aus den 80ern"),
            (&noughties, Lang::En, "music from the 2000s"),
            (&noughties, Lang::De, "Musik aus den 2000ern"),
            (&Selection::Unheard, Lang::En, "music you haven't heard"),
            (
                &Selection::Unheard,
                Lang::De,
                "Musik, die du noch nicht gehört hast",
            ),
        ] {
            assert_eq!(selection_words(selection, lang), words);
        }
    }

    #[test]
    fn why_this_song_names_the_track_the_request_and_each_reason_in_both_languages() {
        let t = track("Blue Hour", "Mara Lind", "hip-hop");
        let reasons = [
            (Reason::Popular, "most popular", "beliebtesten"),
            (Reason::Artist, "you like Mara Lind", "du magst Mara Lind"),
            (
                Reason::Genre,
                "hip hop to the end",
                "hip hop oft bis zum Ende",
            ),
            (
                Reason::PreferredGenre,
                "told the app you like hip hop",
                "dass du hip hop magst",
            ),
            (
                Reason::Sound,
                "sounds like the songs",
                "klingt wie die Lieder",
            ),
            (
                Reason::FinishedBefore,
                "to the end before",
                "schon einmal bis zum Ende",
            ),
            (Reason::Model, "for your taste", "für deinen Geschmack"),
            (Reason::Exploring, "new to you", "neu für dich"),
            (Reason::Similar, "closest in sound", "ähnlichsten"),
        ];
        let mood = Selection::Mood(Mood::Focus);
        for (reason, en, de) in reasons {
            let reply = Reply::WhyThisSong {
                track: t.clone(),
                selection: mood.clone(),
                reason,
                seed: None,
            };
            let english = words(&reply, Lang::En).speech;
            assert!(
                english.starts_with(
                    "I picked Blue Hour by Mara Lind because you asked for music to focus, and "
                ) && english.contains(en),
                "{english}"
            );
            let german = words(&reply, Lang::De).speech;
            assert!(
                german.starts_with("Ich habe Blue Hour von Mara Lind ausgesucht, weil du Musik zum Konzentrieren wolltest, und ")
                    && german.contains(de),
                "{german}"
            );
        }
        // A queue stored before reasons were kept: the request alone.
        let seed = track("Old Song", "Someone", "pop");
        let reply = Reply::WhyThisSong {
            track: t.clone(),
            selection: Selection::LikeTrack(seed.id.clone()),
            reason: Reason::Unrecorded,
            seed: Some(seed),
        };
        assert_eq!(
            words(&reply, Lang::En).speech,
            "I picked Blue Hour by Mara Lind because you asked for more like Old Song."
        );
        assert_eq!(
            words(&reply, Lang::De).speech,
            "Ich habe Blue Hour von Mara Lind ausgesucht, weil du mehr wie Old Song wolltest."
        );
    }

    /// One of every reply, with every selection and reason, for the table tests.
    fn every_reply() -> Vec<Reply> {
        let t = track("Blue Hour", "Mara Lind", "classical");
        let selections = [
            Selection::Mood(Mood::Sleep),
            Selection::Genre("r-n-b".into()),
            Selection::Artist("Mara Lind".into()),
            Selection::LikeTrack(t.id.clone()),
            Selection::Decade {
                decade: 1980,
                genre: Some("rock".into()),
            },
            Selection::Decade {
                decade: 2010,
                genre: None,
            },
            Selection::Unheard,
        ];
        let named = Named {
            wanted: Wanted::Album,
            name: "Night Drive".into(),
            artist: Some("Mara Lind".into()),
        };
        let mut replies = vec![
            Reply::Welcome,
            Reply::NoAudioPlayer,
            Reply::Help,
            Reply::Fallback,
            Reply::Goodbye,
            Reply::PlayingNamed {
                wanted: Wanted::Song,
                track: t.clone(),
            },
            Reply::PlayingNamed {
                wanted: Wanted::Album,
                track: t.clone(),
            },
            Reply::NotFound {
                named: named.clone(),
                artist: Some("Mara Lind".into()),
            },
            Reply::NotFound {
                named,
                artist: None,
            },
            Reply::PlayingPlaylist {
                name: "road trip".into(),
                track: t.clone(),
            },
            Reply::NoPlaylist {
                name: "road trip".into(),
                saved: 0,
            },
            Reply::NoPlaylist {
                name: "road trip".into(),
                saved: 2,
            },
            Reply::PlayingFavourites(t.clone()),
            Reply::NoFavourites,
            Reply::NowPlaying(t.clone()),
            Reply::NothingPlaying,
            Reply::NothingToResume,
            Reply::Liked(t.clone()),
            Reply::Disliked(t.clone()),
            Reply::Shuffle(true),
            Reply::Shuffle(false),
            Reply::Loop(true),
            Reply::Loop(false),
            Reply::EndOfQueue,
            Reply::RelinkAccount,
            Reply::PlaybackFailing,
            Reply::Trouble,
        ];
        for slot in [
            SlotKind::Mood,
            SlotKind::Genre,
            SlotKind::Artist,
            SlotKind::Song,
            SlotKind::Album,
            SlotKind::Playlist,
            SlotKind::Decade,
        ] {
            replies.push(Reply::AskFor(slot));
        }
        for selection in selections {
            replies.push(Reply::Playing {
                selection: selection.clone(),
                track: t.clone(),
            });
            replies.push(Reply::NoMatch(selection.clone()));
            for reason in [
                Reason::Popular,
                Reason::Artist,
                Reason::Genre,
                Reason::PreferredGenre,
                Reason::Sound,
                Reason::FinishedBefore,
                Reason::Model,
                Reason::Exploring,
                Reason::Similar,
                Reason::Requested,
                Reason::Unrecorded,
            ] {
                replies.push(Reply::WhyThisSong {
                    track: t.clone(),
                    selection: selection.clone(),
                    reason,
                    seed: Some(t.clone()),
                });
            }
        }
        replies
    }

    #[test]
    fn every_language_says_every_reply_with_its_holes_filled() {
        for lang in Lang::ALL {
            let mut said = std::collections::HashSet::new();
            for reply in every_reply() {
                let w = words(&reply, lang);
                for text in std::iter::once(&w.speech)
                    .chain(w.reprompt.as_ref())
                    .chain(w.card_title.as_ref())
                {
                    assert!(
                        !text.trim().is_empty() && !text.contains('{') && !text.contains('}'),
                        "{lang:?} {reply:?}: {text:?}"
                    );
                }
                // A question is asked again if the listener says nothing.
                if w.speech.trim_end().ends_with('?') {
                    assert!(w.reprompt.is_some(), "{lang:?} {reply:?}");
                }
                said.insert(w.speech);
            }
            // Words depend on the reply: the track, the playlist and the reason are said.
            let t = track("Blue Hour", "Mara Lind", "jazz");
            for reply in [
                Reply::NowPlaying(t.clone()),
                Reply::PlayingFavourites(t.clone()),
            ] {
                let speech = words(&reply, lang).speech;
                assert!(
                    speech.contains("Blue Hour") && speech.contains("Mara Lind"),
                    "{lang:?}: {speech}"
                );
            }
            assert!(
                said.len() > 60,
                "{lang:?}: only {} distinct answers",
                said.len()
            );
        }
        // Each language has its own words.
        let welcome: std::collections::HashSet<String> = Lang::ALL
            .iter()
            .map(|l| words(&Reply::Welcome, *l).speech)
            .collect();
        assert_eq!(welcome.len(), Lang::ALL.len());
    }

    #[test]
    fn a_locale_picks_its_language_and_an_unknown_one_english() {
        for (locale, lang) in [
            ("en-IN", Lang::En),
            ("de-AT", Lang::De),
            ("fr-CA", Lang::Fr),
            ("fr-FR", Lang::Fr),
            ("es-US", Lang::Es),
            ("es-MX", Lang::Es),
            ("it-IT", Lang::It),
            ("pt-BR", Lang::Pt),
            ("nl-NL", Lang::Nl),
            ("NL_be", Lang::Nl),
            ("ja-JP", Lang::En),
            ("", Lang::En),
        ] {
            assert_eq!(Lang::of(locale), lang, "{locale}");
        }
    }

    #[test]
    fn holes_are_filled_once_and_a_value_with_braces_is_said_as_it_is() {
        assert_eq!(
            fill(
                "{title} by {artist}",
                &[("title", "{artist}"), ("artist", "X")]
            ),
            "{artist} by X"
        );
        assert_eq!(fill("a {b} {unknown} {", &[("b", "c")]), "a c {unknown} {");
        let t = track("Blue Hour", "Mara Lind", "jazz");
        assert_eq!(
            words(&Reply::NowPlaying(t.clone()), Lang::Fr).speech,
            "C'est Blue Hour de Mara Lind."
        );
        assert_eq!(
            selection_words(
                &Selection::Decade {
                    decade: 1990,
                    genre: Some("classical".into())
                },
                Lang::It
            ),
            "musica classica degli anni 90"
        );
        assert_eq!(
            selection_words(&Selection::Mood(Mood::Relaxing), Lang::Nl),
            "ontspannen muziek"
        );
    }
}
