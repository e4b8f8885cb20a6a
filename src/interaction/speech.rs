//! What Encore says, per language. The service decides *what* to tell the listener (a
//! `Reply`); this module decides the words, for the voice and the text paths alike.

use crate::domain::{Mood, Reason, Selection, Track};
use crate::domain::{Named, Wanted};
use crate::service::{Reply, SlotKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    pub fn of(locale: &str) -> Lang {
        if locale.to_ascii_lowercase().starts_with("de") {
            Lang::De
        } else {
            Lang::En
        }
    }
}

/// The words for one reply: the speech, a reprompt when a question is asked, a card title.
#[derive(Debug, Clone, PartialEq)]
pub struct Words {
    pub speech: String,
    pub reprompt: Option<String>,
    pub card_title: Option<String>,
}

fn mood_words(mood: Mood, lang: Lang) -> &'static str {
    match (lang, mood) {
        (Lang::En, Mood::Relaxing) => "relaxing music",
        (Lang::En, Mood::Energetic) => "energetic music",
        (Lang::En, Mood::Happy) => "happy music",
        (Lang::En, Mood::Sad) => "melancholic music",
        (Lang::En, Mood::Focus) => "music to focus",
        (Lang::En, Mood::Party) => "party music",
        (Lang::En, Mood::Sleep) => "music to fall asleep",
        (Lang::En, Mood::Workout) => "workout music",
        (Lang::De, Mood::Relaxing) => "entspannte Musik",
        (Lang::De, Mood::Energetic) => "energiegeladene Musik",
        (Lang::De, Mood::Happy) => "fröhliche Musik",
        (Lang::De, Mood::Sad) => "melancholische Musik",
        (Lang::De, Mood::Focus) => "Musik zum Konzentrieren",
        (Lang::De, Mood::Party) => "Partymusik",
        (Lang::De, Mood::Sleep) => "Musik zum Einschlafen",
        (Lang::De, Mood::Workout) => "Musik fürs Training",
    }
}

fn selection_words(selection: &Selection, lang: Lang) -> String {
    match (selection, lang) {
        (Selection::Mood(m), _) => mood_words(*m, lang).to_owned(),
        (Selection::Genre(g), _) => genre_words(g),
        (Selection::Artist(a), Lang::En) => format!("music by {a}"),
        (Selection::Artist(a), Lang::De) => format!("Musik von {a}"),
        (Selection::LikeTrack(_), Lang::En) => "more like this".to_owned(),
        (Selection::LikeTrack(_), Lang::De) => "mehr in dieser Art".to_owned(),
        (Selection::Decade { decade, genre }, Lang::En) => {
            let what = genre.as_deref().map_or("music".to_owned(), genre_words);
            format!("{what} from the {}", decade_words(*decade))
        }
        (Selection::Decade { decade, genre }, Lang::De) => {
            let what = genre.as_deref().map_or("Musik".to_owned(), genre_words);
            format!(
                "{what} aus den {}ern",
                decade_words(*decade).trim_end_matches('s')
            )
        }
        (Selection::Unheard, Lang::En) => "music you haven't heard".to_owned(),
        (Selection::Unheard, Lang::De) => "Musik, die du noch nicht gehört hast".to_owned(),
    }
}

/// A decade as people say it: "80s" for the twentieth century's, "2010s" for later ones.
fn decade_words(decade: u16) -> String {
    if (1920..2000).contains(&decade) {
        format!("{}s", decade % 100)
    } else {
        format!("{decade}s")
    }
}

fn track_words(t: &Track, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{} by {}", t.title, t.artist),
        Lang::De => format!("{} von {}", t.title, t.artist),
    }
}

/// A genre id as spoken ("hip-hop" -> "hip hop").
fn genre_words(genre: &str) -> String {
    genre.replace('-', " ")
}

/// "Why did you play this?": the request that chose the track, then its strongest reason.
fn why_words(
    track: &Track,
    selection: &Selection,
    reason: Reason,
    seed: Option<&Track>,
    lang: Lang,
) -> String {
    if reason == Reason::Requested {
        return match lang {
            Lang::En => format!("You asked for {}.", track_words(track, lang)),
            Lang::De => format!("Du hast dir {} gewünscht.", track_words(track, lang)),
        };
    }
    let asked = match (selection, seed, lang) {
        (Selection::LikeTrack(_), Some(seed), Lang::En) => format!("more like {}", seed.title),
        (Selection::LikeTrack(_), Some(seed), Lang::De) => format!("mehr wie {}", seed.title),
        _ => selection_words(selection, lang),
    };
    let genre = genre_words(&track.genre);
    let because = match (reason, lang) {
        (Reason::Popular, Lang::En) => Some("it's one of the most popular songs that fit".to_owned()),
        (Reason::Popular, Lang::De) => Some("es ist eines der beliebtesten passenden Lieder".to_owned()),
        (Reason::Artist, Lang::En) => Some(format!("you like {}", track.artist)),
        (Reason::Artist, Lang::De) => Some(format!("du magst {}", track.artist)),
        (Reason::Genre, Lang::En) => Some(format!("you often listen to {genre} to the end")),
        (Reason::Genre, Lang::De) => Some(format!("du hörst {genre} oft bis zum Ende")),
        (Reason::PreferredGenre, Lang::En) => Some(format!("you told the app you like {genre}")),
        (Reason::PreferredGenre, Lang::De) => Some(format!("du hast in der App gesagt, dass du {genre} magst")),
        (Reason::Sound, Lang::En) => Some("it sounds like the songs you usually play to the end".to_owned()),
        (Reason::Sound, Lang::De) => Some("es klingt wie die Lieder, die du meist bis zum Ende hörst".to_owned()),
        (Reason::FinishedBefore, Lang::En) => Some("you listened to it to the end before".to_owned()),
        (Reason::FinishedBefore, Lang::De) => Some("du hast es schon einmal bis zum Ende gehört".to_owned()),
        (Reason::Model, Lang::En) => Some("my recommendations rank it high for your taste".to_owned()),
        (Reason::Model, Lang::De) => Some("meine Empfehlungen sehen es weit oben für deinen Geschmack".to_owned()),
        (Reason::Exploring, Lang::En) => Some("it's new to you: now and then I try something you haven't heard, to learn what you like".to_owned()),
        (Reason::Exploring, Lang::De) => Some("es ist neu für dich: ab und zu probiere ich etwas aus, das du noch nicht kennst, um deinen Geschmack kennenzulernen".to_owned()),
        (Reason::Similar, Lang::En) => Some("it's one of the closest in sound".to_owned()),
        (Reason::Similar, Lang::De) => Some("es ist eines der ähnlichsten".to_owned()),
        (Reason::Requested | Reason::Unrecorded, _) => None,
    };
    let picked = match lang {
        Lang::En => format!(
            "I picked {} because you asked for {asked}",
            track_words(track, lang)
        ),
        Lang::De => format!(
            "Ich habe {} ausgesucht, weil du {asked} wolltest",
            track_words(track, lang)
        ),
    };
    let and = match lang {
        Lang::En => "and",
        Lang::De => "und",
    };
    match because {
        Some(b) => format!("{picked}, {and} {b}."),
        None => format!("{picked}."),
    }
}

/// A song or an album that is not in the catalog, and what to ask for instead: the nearest
/// match's artist if there is one, and a mood.
fn not_found_words(named: &Named, artist: Option<&str>, lang: Lang) -> String {
    let what = match (&named.artist, lang) {
        (Some(by), Lang::En) => format!("{} by {by}", named.name),
        (Some(by), Lang::De) => format!("{} von {by}", named.name),
        (None, _) => named.name.clone(),
    };
    match (artist, lang) {
        (Some(a), Lang::En) => format!(
            "Sorry, I couldn't find {what}. You could ask for music by {a}, or for something relaxing."
        ),
        (Some(a), Lang::De) => format!(
            "Leider habe ich {what} nicht gefunden. Du kannst dir Musik von {a} wünschen oder etwas Entspannendes."
        ),
        (None, Lang::En) => format!(
            "Sorry, I couldn't find {what}. You could ask for a mood, like something relaxing, or for an artist."
        ),
        (None, Lang::De) => format!(
            "Leider habe ich {what} nicht gefunden. Du kannst dir eine Stimmung wünschen, etwa etwas Entspannendes, oder einen Künstler."
        ),
    }
}

pub fn words(reply: &Reply, lang: Lang) -> Words {
    let say = |s: String| Words {
        speech: s,
        reprompt: None,
        card_title: None,
    };
    let ask = |s: String, r: &str| Words {
        speech: s,
        reprompt: Some(r.to_owned()),
        card_title: None,
    };
    use Lang::{De, En};
    match (reply, lang) {
        (Reply::Welcome, En) => ask("Welcome to Encore. What would you like to hear? You can say a mood like relaxing or energetic, a genre like jazz, or an artist.".into(), "What would you like to hear? For example, say: play something relaxing."),
        (Reply::Welcome, De) => ask("Willkommen bei Encore. Was möchtest du hören? Du kannst eine Stimmung wie entspannend oder fröhlich nennen, ein Genre wie Jazz oder einen Künstler.".into(), "Was möchtest du hören? Sag zum Beispiel: spiel etwas Entspannendes."),
        (Reply::NoAudioPlayer, En) => say("Sorry, this device can't play music from Encore. Try it on an Echo or another speaker that plays music.".into()),
        (Reply::NoAudioPlayer, De) => say("Leider kann dieses Gerät keine Musik von Encore abspielen. Probier es auf einem Echo oder einem anderen Lautsprecher, der Musik abspielt.".into()),
        (Reply::Help, En) => ask("Encore plays music for your mood. Say: play something relaxing, play jazz, play music by an artist, or a song or an album by its name. While music plays you can say next, previous, pause, resume, shuffle, loop, I like this song, what's playing, or why this song. What would you like to hear?".into(), "What would you like to hear?"),
        (Reply::Help, De) => ask("Encore spielt Musik für deine Stimmung. Sag: spiel etwas Entspannendes, spiel Jazz, spiel Musik von einem Künstler oder ein Lied oder Album mit seinem Namen. Während Musik läuft, kannst du sagen: nächstes Lied, zurück, Pause, weiter, mischen, Daumen hoch, was läuft gerade oder warum läuft das. Was möchtest du hören?".into(), "Was möchtest du hören?"),
        (Reply::Fallback, En) => ask("Sorry, I didn't catch that. You can ask for a mood, like: play something relaxing, a genre like rock, or an artist. What would you like?".into(), "Try: play something happy."),
        (Reply::Fallback, De) => ask("Entschuldige, das habe ich nicht verstanden. Du kannst eine Stimmung wünschen, etwa: spiel etwas Entspannendes, ein Genre wie Rock oder einen Künstler. Was möchtest du?".into(), "Sag zum Beispiel: spiel etwas Fröhliches."),
        (Reply::Goodbye, En) => say("Goodbye.".into()),
        (Reply::Goodbye, De) => say("Tschüss.".into()),
        (Reply::AskFor(SlotKind::Mood), En) => ask("Which mood? For example relaxing, energetic, happy, sad, focus, party, sleep or workout.".into(), "Which mood would you like?"),
        (Reply::AskFor(SlotKind::Mood), De) => ask("Welche Stimmung? Zum Beispiel entspannend, energiegeladen, fröhlich, traurig, Konzentration, Party, Schlafen oder Training.".into(), "Welche Stimmung möchtest du?"),
        (Reply::AskFor(SlotKind::Genre), En) => ask("Which genre? For example pop, rock, jazz, classical or electronic.".into(), "Which genre would you like?"),
        (Reply::AskFor(SlotKind::Genre), De) => ask("Welches Genre? Zum Beispiel Pop, Rock, Jazz, Klassik oder elektronisch.".into(), "Welches Genre möchtest du?"),
        (Reply::AskFor(SlotKind::Artist), En) => ask("Which artist would you like to hear?".into(), "Which artist?"),
        (Reply::AskFor(SlotKind::Artist), De) => ask("Welchen Künstler möchtest du hören?".into(), "Welchen Künstler?"),
        (Reply::AskFor(SlotKind::Song), En) => ask("Which song would you like to hear?".into(), "Which song?"),
        (Reply::AskFor(SlotKind::Song), De) => ask("Welches Lied möchtest du hören?".into(), "Welches Lied?"),
        (Reply::AskFor(SlotKind::Album), En) => ask("Which album would you like to hear?".into(), "Which album?"),
        (Reply::AskFor(SlotKind::Album), De) => ask("Welches Album möchtest du hören?".into(), "Welches Album?"),
        (Reply::PlayingNamed { wanted: Wanted::Song, track }, En) => Words {
            speech: format!("Here's {}, then more like it.", track_words(track, En)),
            reprompt: None,
            card_title: Some("Now playing".into()),
        },
        (Reply::PlayingNamed { wanted: Wanted::Song, track }, De) => Words {
            speech: format!("Hier ist {}, danach mehr in dieser Art.", track_words(track, De)),
            reprompt: None,
            card_title: Some("Jetzt läuft".into()),
        },
        (Reply::PlayingNamed { wanted: Wanted::Album, track }, En) => Words {
            speech: format!("Playing the album {} by {}.", track.album, track.artist),
            reprompt: None,
            card_title: Some("Now playing".into()),
        },
        (Reply::PlayingNamed { wanted: Wanted::Album, track }, De) => Words {
            speech: format!("Ich spiele das Album {} von {}.", track.album, track.artist),
            reprompt: None,
            card_title: Some("Jetzt läuft".into()),
        },
        (Reply::AskFor(SlotKind::Playlist), En) => ask("Which of your playlists?".into(), "Which playlist?"),
        (Reply::AskFor(SlotKind::Playlist), De) => ask("Welche deiner Playlists?".into(), "Welche Playlist?"),
        (Reply::AskFor(SlotKind::Decade), En) => ask("Which decade? For example, the eighties.".into(), "Which decade?"),
        (Reply::AskFor(SlotKind::Decade), De) => ask("Welches Jahrzehnt? Zum Beispiel die Achtziger.".into(), "Welches Jahrzehnt?"),
        (Reply::PlayingPlaylist { name, track }, En) => Words {
            speech: format!("Playing your playlist {name}, starting with {}.", track_words(track, En)),
            reprompt: None,
            card_title: Some("Now playing".into()),
        },
        (Reply::PlayingPlaylist { name, track }, De) => Words {
            speech: format!("Ich spiele deine Playlist {name}, zuerst {}.", track_words(track, De)),
            reprompt: None,
            card_title: Some("Jetzt läuft".into()),
        },
        (Reply::NoPlaylist { name, saved: 0 }, En) => ask(format!("You have no playlist called {name} yet: playlists you save in the Encore app play here. What would you like to hear?"), "What would you like to hear?"),
        (Reply::NoPlaylist { name, saved: 0 }, De) => ask(format!("Du hast noch keine Playlist namens {name}: Playlists, die du in der Encore-App speicherst, laufen auch hier. Was möchtest du hören?"), "Was möchtest du hören?"),
        (Reply::NoPlaylist { name, .. }, En) => ask(format!("I couldn't find a playlist of yours called {name}. Which playlist would you like?"), "Which playlist?"),
        (Reply::NoPlaylist { name, .. }, De) => ask(format!("Ich habe keine Playlist namens {name} bei dir gefunden. Welche Playlist möchtest du?"), "Welche Playlist?"),
        (Reply::PlayingFavourites(track), En) => Words {
            speech: format!("Playing the songs you like, shuffled, starting with {}.", track_words(track, En)),
            reprompt: None,
            card_title: Some("Now playing".into()),
        },
        (Reply::PlayingFavourites(track), De) => Words {
            speech: format!("Ich spiele deine Lieblingslieder gemischt, zuerst {}.", track_words(track, De)),
            reprompt: None,
            card_title: Some("Jetzt läuft".into()),
        },
        (Reply::NoFavourites, En) => ask("You haven't liked any songs yet. While a song plays, say: I like this song. What would you like to hear now?".into(), "What would you like to hear?"),
        (Reply::NoFavourites, De) => ask("Du hast noch keine Lieder mit Daumen hoch markiert. Sag während eines Lieds: Daumen hoch. Was möchtest du jetzt hören?".into(), "Was möchtest du hören?"),
        (Reply::NotFound { named, artist }, _) => ask(not_found_words(named, artist.as_deref(), lang), match lang { En => "What else would you like to hear?", De => "Was möchtest du sonst hören?" }),
        (Reply::Playing { selection, track }, En) => Words {
            speech: format!("Playing {}. Here's {}.", selection_words(selection, En), track_words(track, En)),
            reprompt: None,
            card_title: Some("Now playing".into()),
        },
        (Reply::Playing { selection, track }, De) => Words {
            speech: format!("Ich spiele {}. Hier ist {}.", selection_words(selection, De), track_words(track, De)),
            reprompt: None,
            card_title: Some("Jetzt läuft".into()),
        },
        (Reply::NoMatch(selection), En) => ask(format!("Sorry, I couldn't find any {}. Try a mood, like relaxing, or another genre or artist.", selection_words(selection, En)), "What else would you like to hear?"),
        (Reply::NoMatch(selection), De) => ask(format!("Leider habe ich keine {} gefunden. Versuch eine Stimmung wie entspannend oder ein anderes Genre oder einen anderen Künstler.", selection_words(selection, De)), "Was möchtest du sonst hören?"),
        (Reply::NowPlaying(track), En) => say(format!("This is {}.", track_words(track, En))),
        (Reply::NowPlaying(track), De) => say(format!("Das ist {}.", track_words(track, De))),
        (Reply::WhyThisSong { track, selection, reason, seed }, _) => Words {
            speech: why_words(track, selection, *reason, seed.as_deref(), lang),
            reprompt: None,
            card_title: Some(match lang { En => "Why this song", De => "Warum dieses Lied" }.into()),
        },
        (Reply::NothingPlaying, En) => ask("Nothing is playing right now. What would you like to hear?".into(), "What would you like to hear?"),
        (Reply::NothingPlaying, De) => ask("Gerade läuft nichts. Was möchtest du hören?".into(), "Was möchtest du hören?"),
        (Reply::NothingToResume, En) => ask("There's nothing to resume. What would you like to hear?".into(), "Say, for example: play something relaxing."),
        (Reply::NothingToResume, De) => ask("Es gibt nichts fortzusetzen. Was möchtest du hören?".into(), "Sag zum Beispiel: spiel etwas Entspannendes."),
        (Reply::Liked(track), En) => say(format!("Glad you like {}. I'll play more like it.", track.title)),
        (Reply::Liked(track), De) => say(format!("Schön, dass dir {} gefällt. Ich spiele mehr davon.", track.title)),
        (Reply::Disliked(_), En) => say("Got it, I won't play that one again.".into()),
        (Reply::Disliked(_), De) => say("Verstanden, das spiele ich nicht mehr.".into()),
        (Reply::Shuffle(true), En) => say("Shuffle is on.".into()),
        (Reply::Shuffle(true), De) => say("Zufallswiedergabe ist an.".into()),
        (Reply::Shuffle(false), En) => say("Shuffle is off.".into()),
        (Reply::Shuffle(false), De) => say("Zufallswiedergabe ist aus.".into()),
        (Reply::Loop(true), En) => say("Loop is on.".into()),
        (Reply::Loop(true), De) => say("Wiederholung ist an.".into()),
        (Reply::Loop(false), En) => say("Loop is off.".into()),
        (Reply::Loop(false), De) => say("Wiederholung ist aus.".into()),
        (Reply::EndOfQueue, En) => say("That was the last song. Ask for a mood to hear more.".into()),
        (Reply::EndOfQueue, De) => say("Das war das letzte Lied. Wünsch dir eine Stimmung, um mehr zu hören.".into()),
        (Reply::RelinkAccount, En) => say("Your Encore account link needs renewing. I've sent a card to the Alexa app to link it again.".into()),
        (Reply::RelinkAccount, De) => say("Die Verknüpfung mit deinem Encore-Konto muss erneuert werden. Ich habe dir in der Alexa-App eine Karte geschickt, um sie neu zu verknüpfen.".into()),
        (Reply::PlaybackFailing, En) => say("Sorry, the last few songs wouldn't play, so I stopped. Let's try again.".into()),
        (Reply::PlaybackFailing, De) => say("Entschuldige, die letzten Lieder ließen sich nicht abspielen, deshalb habe ich angehalten. Ich versuche es noch einmal.".into()),
        (Reply::Trouble, En) => say("Sorry, I'm having trouble right now. Please try again in a moment.".into()),
        (Reply::Trouble, De) => say("Entschuldige, gerade gibt es ein Problem. Bitte versuch es gleich noch einmal.".into()),
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
}
