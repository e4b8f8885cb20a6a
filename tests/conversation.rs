//! A whole conversation, as a person with an Echo would have it, against a server on a real
//! listener with verification on: play a mood, let the device report playback, pause,
//! resume, skip, ask what's playing, like, stop; then restart the server and resume. The
//! main conversation runs on the embedded default and on DynamoDB (the local server).

use crate::common;

use common::{TestServer, fetcher, fixture, pki, post_signed, verifier};
use encore::settings::StorageArgs;
use serde_json::Value;

struct Echo {
    client: reqwest::Client,
    server: TestServer,
}

impl Echo {
    async fn start(data_dir: &std::path::Path) -> Echo {
        Self::start_on(common::storage(data_dir)).await
    }

    async fn start_on(storage: StorageArgs) -> Echo {
        let server = TestServer::start_on(storage, Some(verifier(fetcher()))).await;
        Echo {
            client: reqwest::Client::new(),
            server,
        }
    }

    async fn send(&self, name: &str, token: &str, offset: Option<u64>) -> Value {
        self.send_edited(name, token, offset, |_| {}).await
    }

    /// `send`, with the request changed by `edit` before it is signed.
    async fn send_edited(
        &self,
        name: &str,
        token: &str,
        offset: Option<u64>,
        edit: impl FnOnce(&mut Value),
    ) -> Value {
        let mut request = fixture(name, token);
        if let Some(offset) = offset {
            request["context"]["AudioPlayer"]["offsetInMilliseconds"] = offset.into();
            if request["request"].get("offsetInMilliseconds").is_some() {
                request["request"]["offsetInMilliseconds"] = offset.into();
            }
        }
        edit(&mut request);
        let r = post_signed(&self.client, &self.server, &request, &pki().good, "good").await;
        assert_eq!(r.status(), 200, "{name}");
        r.json().await.unwrap()
    }
}

fn play(r: &Value) -> (&str, String, String, u64) {
    let d = &r["response"]["directives"][0];
    assert_eq!(
        d["type"], "AudioPlayer.Play",
        "expected a Play directive: {r}"
    );
    let stream = &d["audioItem"]["stream"];
    (
        d["playBehavior"].as_str().unwrap(),
        stream["token"].as_str().unwrap().to_owned(),
        d["audioItem"]["metadata"]["title"]
            .as_str()
            .unwrap()
            .to_owned()
            + " / "
            + d["audioItem"]["metadata"]["subtitle"].as_str().unwrap(),
        stream["offsetInMilliseconds"].as_u64().unwrap(),
    )
}

fn speech(r: &Value) -> &str {
    r["response"]["outputSpeech"]["ssml"].as_str().unwrap_or("")
}

fn is_empty(r: &Value) -> bool {
    r["response"] == serde_json::json!({})
}

#[tokio::test]
async fn a_listener_plays_pauses_resumes_skips_likes_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    converse(common::storage(dir.path())).await;
}

#[tokio::test]
async fn the_same_conversation_on_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let storage = common::dynamo_storage(dir.path(), "conversation");
    encore::cli::init::run(&storage).await.unwrap();
    converse(storage).await;
}

async fn converse(storage: StorageArgs) {
    let echo = Echo::start_on(storage.clone()).await;

    // "Alexa, open Encore"
    let r = echo.send("launch", "", None).await;
    assert!(speech(&r).contains("What would you like to hear"));
    assert_eq!(r["response"]["shouldEndSession"], false);

    // "play something relaxing"
    let r = echo.send("play_mood_er", "", None).await;
    let (behavior, t1, track1, offset) = play(&r);
    assert_eq!((behavior, offset), ("REPLACE_ALL", 0));
    assert!(speech(&r).contains("relaxing"));
    assert_eq!(r["response"]["shouldEndSession"], true);

    // The device starts the stream, and near its end asks for the next one.
    assert!(is_empty(&echo.send("playback_started", &t1, Some(0)).await));
    let r = echo
        .send("playback_nearly_finished", &t1, Some(180_000))
        .await;
    let (behavior, t2, track2, _) = play(&r);
    assert_eq!(behavior, "ENQUEUE");
    assert_eq!(
        r["response"]["directives"][0]["audioItem"]["stream"]["expectedPreviousToken"],
        t1.as_str()
    );
    assert_ne!(track2, track1);
    assert!(
        r["response"].get("outputSpeech").is_none()
            && r["response"].get("shouldEndSession").is_none()
    );
    assert!(is_empty(
        &echo.send("playback_finished", &t1, Some(212_000)).await
    ));
    assert!(is_empty(&echo.send("playback_started", &t2, Some(0)).await));

    // "what's playing?"
    let r = echo.send("what_is_playing", &t2, Some(5_000)).await;
    let (title, artist) = track2.split_once(" / ").unwrap();
    assert!(
        speech(&r).contains(title) && speech(&r).contains(artist),
        "{r}"
    );

    // "why did you play this?": the request that chose it and the reason (a new listener's
    // list is the popular one), without interrupting the music.
    let r = echo.send("why_this_song", &t2, Some(6_000)).await;
    let why = speech(&r);
    assert!(
        why.contains(title)
            && why.contains("because you asked for relaxing music")
            && why.contains("most popular"),
        "{r}"
    );
    assert!(r["response"].get("directives").is_none(), "{r}");

    // "pause": the stream stops, the device reports where.
    let r = echo.send("pause", &t2, Some(61_000)).await;
    assert_eq!(r["response"]["directives"][0]["type"], "AudioPlayer.Stop");
    assert_eq!(r["response"]["shouldEndSession"], true);
    assert!(
        r["response"].get("outputSpeech").is_none(),
        "pausing says nothing"
    );
    assert!(is_empty(
        &echo.send("playback_stopped", &t2, Some(61_000)).await
    ));

    // "resume": the same track, where it stopped.
    let r = echo.send("resume", &t2, Some(61_000)).await;
    let (behavior, t2b, track, offset) = play(&r);
    assert_eq!(
        (behavior, track.as_str(), offset),
        ("REPLACE_ALL", track2.as_str(), 61_000)
    );
    assert_ne!(t2b, t2, "every Play gets a fresh token");

    // "next", then "previous"
    let r = echo.send("next", &t2b, Some(70_000)).await;
    let (behavior, t3, track3, offset) = play(&r);
    assert_eq!((behavior, offset), ("REPLACE_ALL", 0));
    assert!(track3 != track1 && track3 != track2);
    let r = echo.send("previous", &t3, Some(1_000)).await;
    let (_, t4, track, _) = play(&r);
    assert_eq!(track, track2);

    // "I like this song"
    let r = echo.send("like", &t4, Some(2_000)).await;
    assert!(speech(&r).contains("Glad you like"), "{r}");
    assert!(
        r["response"].get("directives").is_none(),
        "liking does not interrupt the music"
    );

    // The stream fails: another track starts (what follows was re-ranked by the like).
    let r = echo.send("playback_failed", &t4, None).await;
    let (behavior, t5, track5, _) = play(&r);
    assert_eq!(behavior, "REPLACE_ALL");
    assert_ne!(track5, track2);

    // "stop": the music stops, the session ends, and nothing restarts by itself.
    let r = echo.send("stop", &t5, Some(30_000)).await;
    assert_eq!(r["response"]["directives"][0]["type"], "AudioPlayer.Stop");
    assert_eq!(r["response"]["shouldEndSession"], true);
    assert!(is_empty(
        &echo.send("playback_stopped", &t5, Some(30_000)).await
    ));
    assert!(is_empty(&echo.send("session_ended", "", None).await));

    // After a restart the listener's queue is still there: "resume" picks up where it stopped.
    echo.server.stop().await;
    let echo = Echo::start_on(storage).await;
    let r = echo.send("controller_play", &t5, Some(30_000)).await;
    let (behavior, _, track, offset) = play(&r);
    assert_eq!(
        (behavior, track.as_str(), offset),
        ("REPLACE_ALL", track5.as_str(), 30_000)
    );
    assert!(
        r["response"].get("outputSpeech").is_none(),
        "PlaybackController requests get no speech"
    );
    echo.server.stop().await;
}

#[tokio::test]
async fn a_disliked_track_is_skipped_and_never_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Echo::start(dir.path()).await;
    let (_, t1, track1, _) = play(&echo.send("play_mood_er", "", None).await);
    let r = echo.send("dislike", &t1, Some(3_000)).await;
    assert!(speech(&r).contains("play that one again"), "{r}");
    let (_, _, next, _) = play(&r);
    assert_ne!(next, track1, "a disliked track stops at once");
    // Asking for the same mood again never brings it back.
    let r = echo.send("play_mood_er", "", None).await;
    let (_, _, first, _) = play(&r);
    assert_ne!(first, track1);
    echo.server.stop().await;
}

#[tokio::test]
async fn shuffle_and_loop_answer_and_keep_playing_from_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Echo::start(dir.path()).await;
    let (_, t1, _, _) = play(&echo.send("play_genre", "", None).await);
    let r = echo.send("shuffle_on", &t1, Some(1_000)).await;
    assert!(speech(&r).contains("Shuffle is on"));
    let r = echo.send("loop_on", &t1, Some(1_000)).await;
    assert!(speech(&r).contains("Loop is on"));
    let mut token = t1;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let (_, t, track, _) = play(&echo.send("next", &token, Some(1_000)).await);
        assert!(
            seen.insert(track.clone()),
            "shuffle repeated {track} within ten skips"
        );
        token = t;
    }
    echo.server.stop().await;
}

#[tokio::test]
async fn toggling_shuffle_or_loop_while_playing_replaces_what_the_device_has_enqueued() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Echo::start(dir.path()).await;
    let (_, t1, track1, _) = play(&echo.send("play_genre", "", None).await);
    let r = echo.send("shuffle_on", &t1, Some(1_000)).await;
    let (behavior, _, next, _) = play(&r);
    assert_eq!(behavior, "REPLACE_ENQUEUED");
    assert_ne!(next, track1);
    assert!(
        r["response"]["directives"][0]["audioItem"]["stream"]
            .get("expectedPreviousToken")
            .is_none()
    );
    // Loop off on a queue that is not at its end still has a next track to enqueue.
    let r = echo.send("loop_off", &t1, Some(1_000)).await;
    assert_eq!(play(&r).0, "REPLACE_ENQUEUED");
    echo.server.stop().await;
}

/// An Echo over parts the test keeps a hand on: the store and the feedback log.
async fn echo_over_parts(
    dir: &std::path::Path,
) -> (
    Echo,
    std::sync::Arc<dyn encore::store::ProfileStore>,
    std::sync::Arc<encore::feedback::LocalLog>,
) {
    echo_over_storage(dir, common::storage(dir)).await
}

/// `echo_over_parts` on `storage` (in `dir`).
async fn echo_over_storage(
    dir: &std::path::Path,
    storage: StorageArgs,
) -> (
    Echo,
    std::sync::Arc<dyn encore::store::ProfileStore>,
    std::sync::Arc<encore::feedback::LocalLog>,
) {
    let parts = encore::app::Components::load(&storage).await.unwrap();
    let store = parts.store.clone();
    let log = parts.feedback_log().unwrap().clone();
    let args = common::serve_args(false, dir);
    let server = TestServer::start_with_parts(&args, parts, Some(verifier(fetcher()))).await;
    let echo = Echo {
        client: reqwest::Client::new(),
        server,
    };
    (echo, store, log)
}

/// The events in `log` so far, as (kind, track id).
fn events_in(log: &encore::feedback::LocalLog) -> Vec<(&'static str, String)> {
    common::logged_events(log)
        .into_iter()
        .map(|e| (e.kind.as_str(), e.track_id.0))
        .collect()
}

fn track_of(token: &str) -> String {
    token.parse::<encore::domain::Token>().unwrap().track_id.0
}

#[tokio::test]
async fn interruptions_and_pauses_are_not_endings_and_one_play_is_one_play() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, _, log) = echo_over_parts(dir.path()).await;
    let (_, t1, _, _) = play(&echo.send("play_mood_er", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    // "Alexa, I like this" at 10 s: the device stops the stream to listen, then resumes it.
    echo.send("playback_stopped", &t1, Some(10_000)).await;
    echo.send("like", &t1, Some(10_000)).await;
    echo.send("playback_started", &t1, Some(10_000)).await;
    // It plays to its end and the next one starts.
    let (_, t2, _, _) = play(
        &echo
            .send("playback_nearly_finished", &t1, Some(180_000))
            .await,
    );
    echo.send("playback_finished", &t1, Some(212_000)).await;
    echo.send("playback_started", &t2, Some(0)).await;
    // "Alexa, next" 5 s in: the stream stops to listen, then Encore moves on.
    echo.send("playback_stopped", &t2, Some(5_000)).await;
    let (_, t3, _, _) = play(&echo.send("next", &t2, Some(5_000)).await);
    echo.send("playback_started", &t3, Some(0)).await;
    // "Alexa, pause" at 40 s, then "resume": one play, on a new stream.
    echo.send("pause", &t3, Some(40_000)).await;
    echo.send("playback_stopped", &t3, Some(40_000)).await;
    let (_, t3b, _, _) = play(&echo.send("resume", &t3, Some(40_000)).await);
    echo.send("playback_started", &t3b, Some(40_000)).await;
    // It finishes, and the device reports that twice.
    echo.send("playback_finished", &t3b, Some(200_000)).await;
    echo.send("playback_finished", &t3b, Some(200_000)).await;

    let (a, b, c) = (track_of(&t1), track_of(&t2), track_of(&t3));
    assert_eq!(
        events_in(&log),
        [
            ("play_started", a.clone()),
            ("liked", a.clone()),
            ("play_finished", a),
            ("play_started", b.clone()),
            ("skipped", b),
            ("play_started", c.clone()),
            ("play_finished", c),
        ],
        "three plays: one finished after a like, one skipped, one finished after a pause"
    );
    echo.server.stop().await;
}

#[tokio::test]
async fn a_pause_nobody_comes_back_to_ends_the_play_and_a_late_resume_is_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, store, log) = echo_over_parts(dir.path()).await;
    let (_, t1, _, _) = play(&echo.send("play_mood_er", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    echo.send("pause", &t1, Some(45_000)).await;
    echo.send("playback_stopped", &t1, Some(45_000)).await;
    // The pause began longer ago than ABANDONED_AFTER_MS.
    let request = fixture("playback_started", &t1);
    let key = encore::domain::QueueKey {
        user_id: request["context"]["System"]["user"]["userId"]
            .as_str()
            .unwrap()
            .to_owned(),
        device_id: request["context"]["System"]["device"]["deviceId"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    let mut queue = store.queue(&key).await.unwrap().unwrap();
    let open = queue.open_play.as_mut().expect("the paused play is open");
    open.stopped_at_ms = open
        .stopped_at_ms
        .map(|at| at - encore::domain::ABANDONED_AFTER_MS - 1);
    store.put_queue(&key, &queue).await.unwrap();

    let (_, t1b, _, _) = play(&echo.send("resume", &t1, Some(45_000)).await);
    echo.send("playback_started", &t1b, Some(45_000)).await;
    let a = track_of(&t1);
    assert_eq!(
        events_in(&log),
        [
            ("play_started", a.clone()),
            ("stopped", a.clone()),
            ("play_started", a),
        ],
        "the abandoned play ended where it stopped; the resume an hour later is a new play"
    );
    echo.server.stop().await;
}

#[tokio::test]
async fn a_late_stop_report_about_an_older_stream_does_not_move_the_queue_back() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Echo::start(dir.path()).await;
    let (_, t1, track1, _) = play(&echo.send("play_mood_er", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    let (_, t2, track2, _) = play(
        &echo
            .send("playback_nearly_finished", &t1, Some(180_000))
            .await,
    );
    echo.send("playback_finished", &t1, Some(212_000)).await;
    echo.send("playback_started", &t2, Some(0)).await;
    // The first stream's stop report arrives late, after the second has started.
    echo.send("playback_stopped", &t1, Some(211_000)).await;
    let (_, _, resumed, offset) = play(&echo.send("resume", &t1, Some(211_000)).await);
    assert_ne!(track1, track2);
    assert_eq!(
        (resumed.as_str(), offset),
        (track2.as_str(), 0),
        "resume plays the track that is playing, not the one the late report named"
    );
    echo.server.stop().await;
}

#[tokio::test]
async fn a_nearly_finished_report_that_comes_twice_or_after_a_shuffle_enqueues_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Echo::start(dir.path()).await;
    let (_, t1, _, _) = play(&echo.send("play_mood_er", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    let first = echo
        .send("playback_nearly_finished", &t1, Some(180_000))
        .await;
    assert_eq!(play(&first).0, "ENQUEUE");
    let again = echo
        .send("playback_nearly_finished", &t1, Some(180_500))
        .await;
    assert!(is_empty(&again), "the report came twice: {again}");
    // Shuffle replaces what is enqueued; a late NearlyFinished must not add another.
    let shuffled = echo.send("shuffle_on", &t1, Some(181_000)).await;
    assert_eq!(play(&shuffled).0, "REPLACE_ENQUEUED", "{shuffled}");
    let late = echo
        .send("playback_nearly_finished", &t1, Some(181_500))
        .await;
    assert!(is_empty(&late), "after the shuffle: {late}");
    echo.server.stop().await;
}

/// A PlaybackFailed report about `failed` while the device plays `playing`.
async fn failed_while_playing(echo: &Echo, failed: &str, playing: &str) -> Value {
    let playing = playing.to_owned();
    echo.send_edited("playback_failed", failed, None, move |r| {
        r["request"]["currentPlaybackState"]["token"] = playing.clone().into();
        r["context"]["AudioPlayer"]["token"] = playing.into();
    })
    .await
}

#[tokio::test]
async fn a_failed_enqueued_stream_is_replaced_and_the_song_playing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, _, log) = echo_over_parts(dir.path()).await;
    let (_, t1, _, _) = play(&echo.send("play_mood_er", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    let (_, t2, _, _) = play(
        &echo
            .send("playback_nearly_finished", &t1, Some(180_000))
            .await,
    );
    // The enqueued stream fails to load while the first one still plays.
    let r = failed_while_playing(&echo, &t2, &t1).await;
    let (behavior, t3, _, _) = play(&r);
    assert_eq!(behavior, "REPLACE_ENQUEUED", "{r}");
    assert_ne!(track_of(&t3), track_of(&t2));
    assert_ne!(track_of(&t3), track_of(&t1));
    echo.send("playback_finished", &t1, Some(212_000)).await;
    echo.send("playback_started", &t3, Some(0)).await;
    let events = events_in(&log);
    assert_eq!(
        events,
        vec![
            ("play_started", track_of(&t1)),
            ("failed", track_of(&t2)),
            ("play_finished", track_of(&t1)),
            ("play_started", track_of(&t3)),
        ],
        "the song that was playing is not cut off"
    );
    // Reported twice, the failure changes nothing more.
    let again = failed_while_playing(&echo, &t2, &t3).await;
    assert!(is_empty(&again), "{again}");
    echo.server.stop().await;
}

#[tokio::test]
async fn streams_failing_in_a_row_stop_after_three_and_resume_apologises() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, _, log) = echo_over_parts(dir.path()).await;
    let (_, mut token, _, _) = play(&echo.send("play_mood_er", "", None).await);
    let mut failed = Vec::new();
    for _ in 1..3 {
        let r = echo.send("playback_failed", &token, Some(0)).await;
        failed.push(track_of(&token));
        let (behavior, next, _, _) = play(&r);
        assert_eq!(behavior, "REPLACE_ALL");
        token = next;
    }
    // The third failure in a row: no fourth track is tried.
    let r = echo.send("playback_failed", &token, Some(0)).await;
    failed.push(track_of(&token));
    assert_eq!(
        r["response"]["directives"],
        serde_json::json!([{ "type": "AudioPlayer.Stop" }]),
        "{r}"
    );
    let kinds: Vec<(&str, String)> = failed.iter().map(|t| ("failed", t.clone())).collect();
    assert_eq!(events_in(&log), kinds);
    // The listener asks to resume: they hear why it stopped, and it tries again.
    let r = echo.send("resume", &token, Some(0)).await;
    assert!(speech(&r).contains("so I stopped"), "{r}");
    let (_, again, _, _) = play(&r);
    let r = echo.send("playback_failed", &again, Some(0)).await;
    assert_eq!(play(&r).0, "REPLACE_ALL", "the count starts again: {r}");
    echo.server.stop().await;
}

#[tokio::test]
async fn with_an_apology_clip_the_listener_hears_it_when_encore_stops_trying() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::storage(dir.path());
    let clip = "https://audio.encore.example/sorry.mp3";
    storage.apology_audio_url = Some(clip.to_owned());
    let (echo, _, _) = echo_over_storage(dir.path(), storage).await;
    let (_, mut token, _, _) = play(&echo.send("play_mood_er", "", None).await);
    for _ in 1..3 {
        token = play(&echo.send("playback_failed", &token, Some(0)).await).1;
    }
    let r = echo.send("playback_failed", &token, Some(0)).await;
    let d = &r["response"]["directives"][0];
    assert_eq!(d["playBehavior"], "REPLACE_ALL", "{r}");
    assert_eq!(d["audioItem"]["stream"]["url"], clip, "{r}");
    // Its own reports are not about a queue: nothing is enqueued after it.
    let clip_token = d["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = echo
        .send("playback_nearly_finished", &clip_token, Some(5_000))
        .await;
    assert!(is_empty(&r), "{r}");
    echo.server.stop().await;
}

/// A listener who wants two genres (the queue's first two tracks'), lets those play and
/// says "next" 5 s into anything else, over `steps` tracks of a mood queue, on a server
/// with the session re-ranking on or off: how many tracks they skipped.
async fn skips_of_a_two_genre_listener(rerank: bool, steps: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::storage(dir.path());
    storage.session_rerank = rerank;
    let parts = encore::app::Components::load(&storage).await.unwrap();
    let recommender = parts.service.recommender().clone();
    let args = common::serve_args(false, dir.path());
    let server = TestServer::start_with_parts(&args, parts, Some(verifier(fetcher()))).await;
    let echo = Echo {
        client: reqwest::Client::new(),
        server,
    };
    let genre = |token: &str| {
        let id = encore::domain::TrackId(track_of(token));
        recommender.track(&id).unwrap().genre.clone()
    };
    let (_, mut token, _, _) = play(&echo.send("play_mood_er", "", None).await);
    let mut wanted = vec![genre(&token)];
    let mut skips = 0;
    for step in 0..steps {
        echo.send("playback_started", &token, Some(0)).await;
        if step == 1 {
            wanted.push(genre(&token));
        }
        let next = if wanted.contains(&genre(&token)) {
            let r = echo
                .send("playback_nearly_finished", &token, Some(190_000))
                .await;
            echo.send("playback_finished", &token, Some(200_000)).await;
            play(&r).1
        } else {
            skips += 1;
            play(&echo.send("next", &token, Some(5_000)).await).1
        };
        token = next;
    }
    echo.server.stop().await;
    skips
}

#[tokio::test]
async fn skips_re_rank_the_rest_of_the_session_so_a_listener_skips_less_than_with_a_static_queue() {
    let adaptive = skips_of_a_two_genre_listener(true, 20).await;
    let fixed = skips_of_a_two_genre_listener(false, 20).await;
    assert!(
        adaptive < fixed,
        "skips in 20 tracks: {adaptive} re-ranked, {fixed} with the static queue"
    );
}

#[tokio::test]
async fn a_recognised_voice_is_its_own_listener_and_the_device_reports_follow_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, store, log) = echo_over_parts(dir.path()).await;
    let person = "amzn1.ask.person.ENCORETESTPERSONA";
    let account = common::fixture("play_mood_er", "")["context"]["System"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_person = |r: &mut Value| {
        r["context"]["System"]["person"] = serde_json::json!({ "personId": person });
    };
    // The person asks for music; the device then reports its stream (naming no person).
    let (_, t1, _, _) = play(&echo.send("play_mood_person", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    // The person likes it.
    echo.send_edited("like", &t1, Some(20_000), as_person).await;
    // The device's own report of the stream's end is the person's play too.
    echo.send("playback_finished", &t1, Some(200_000)).await;
    let users: Vec<String> = common::logged_events(&log)
        .into_iter()
        .map(|e| e.user_id)
        .collect();
    assert_eq!(
        users,
        vec![person; 3],
        "start, like, finish are the person's"
    );
    let liked = |user: &str| {
        let store = store.clone();
        let user = user.to_owned();
        async move {
            store
                .profile(&user)
                .await
                .unwrap()
                .map(|p| p.liked.len())
                .unwrap_or(0)
        }
    };
    assert_eq!(
        liked(person).await,
        1,
        "the like is in the person's profile"
    );
    assert_eq!(liked(&account).await, 0, "not in the account's");
    // The account holder, unrecognised, says "resume": the device's queue is found.
    let (_, _, _, _) = play(&echo.send("resume", &t1, Some(200_000)).await);
    echo.server.stop().await;
}

#[tokio::test]
async fn why_this_song_answers_from_the_recommendation_in_english_and_german() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, store, _) = echo_over_parts(dir.path()).await;
    let user = common::fixture("play_artist", "")["context"]["System"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    // A listener who has finished a good deal of Theo Dubois.
    encore::store::update_profile(store.as_ref(), &user, |p| {
        p.finishes = 8;
        p.artists.insert("Theo Dubois".into(), 8.0);
    })
    .await
    .unwrap();
    let (_, t1, track1, _) = play(&echo.send("play_artist", "", None).await);
    echo.send("playback_started", &t1, Some(0)).await;
    let r = echo.send("why_this_song", &t1, Some(4_000)).await;
    let why = speech(&r);
    assert!(
        why.contains("because you asked for music by theo dubois")
            && why.contains("you like Theo Dubois"),
        "{r}"
    );
    let german = |r: &mut Value| r["request"]["locale"] = "de-DE".into();
    let r = echo
        .send_edited("why_this_song", &t1, Some(5_000), german)
        .await;
    assert!(
        speech(&r).contains("weil du Musik von theo dubois wolltest")
            && speech(&r).contains("du magst Theo Dubois"),
        "{r}"
    );

    // "More like this": the seed by name, and nearness as the reason.
    let seed_title = track1.split_once(" / ").unwrap().0;
    let (_, t2, _, _) = play(&echo.send("more_like_this", &t1, Some(9_000)).await);
    echo.send("playback_started", &t2, Some(0)).await;
    let r = echo.send("why_this_song", &t2, Some(1_000)).await;
    assert!(
        speech(&r).contains(&format!("because you asked for more like {seed_title}"))
            && speech(&r).contains("closest in sound"),
        "{r}"
    );
    echo.server.stop().await;
}

#[tokio::test]
async fn songs_and_albums_asked_for_by_name_play_first_and_more_like_them_follows() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Echo::start(dir.path()).await;
    let slot = |name: &'static str, value: &'static str| {
        move |r: &mut Value| r["request"]["intent"]["slots"][name]["value"] = value.into()
    };

    // "Play Burning Night by Theo Dubois": six tracks share the title; the artist decides.
    let r = echo.send("play_song", "", None).await;
    let (_, token, track, _) = play(&r);
    assert_eq!(track, "Burning Night / Theo Dubois");
    assert!(
        speech(&r).contains("Burning Night by Theo Dubois, then more like it"),
        "{r}"
    );
    echo.send("playback_started", &token, Some(0)).await;
    let r = echo.send("why_this_song", &token, Some(2_000)).await;
    assert!(
        speech(&r).contains("You asked for Burning Night by Theo Dubois."),
        "{r}"
    );
    // The music goes on after the song: more like it.
    let (_, next_token, next, _) = play(&echo.send("next", &token, Some(3_000)).await);
    assert_ne!(next, track);
    echo.send("playback_started", &next_token, Some(0)).await;
    let r = echo.send("why_this_song", &next_token, Some(1_000)).await;
    assert!(speech(&r).contains("more like Burning Night"), "{r}");

    // A misheard word, an article and a word the catalog lacks still find it.
    let r = echo
        .send_edited("play_song", "", None, slot("song", "the burning nigt live"))
        .await;
    assert_eq!(play(&r).2, "Burning Night / Theo Dubois");

    // "Play burning night" heard as an artist: no artist has that name, a song does.
    let r = echo
        .send_edited("play_artist", "", None, slot("artist", "burning night"))
        .await;
    assert!(play(&r).2.starts_with("Burning Night / "), "{r}");

    // An album plays its own tracks first.
    let catalog = encore::recommend::Catalog::load(&common::repo().join("models")).unwrap();
    let mut album: Vec<String> = catalog
        .tracks()
        .iter()
        .filter(|t| t.album == "Restless Bloom" && t.artist == "Theo Dubois")
        .map(|t| t.title.clone())
        .collect();
    album.sort();
    let r = echo.send("play_album", "", None).await;
    assert!(
        speech(&r).contains("Playing the album Restless Bloom by Theo Dubois."),
        "{r}"
    );
    let (_, mut token, first, _) = play(&r);
    let mut heard = vec![first];
    for _ in 1..album.len() {
        let (_, t, track, _) = play(&echo.send("next", &token, Some(5_000)).await);
        heard.push(track);
        token = t;
    }
    let mut titles: Vec<String> = heard
        .iter()
        .map(|t| t.split_once(" / ").unwrap().0.to_owned())
        .collect();
    titles.sort();
    assert_eq!(titles, album);

    // Nothing by that name: the listener hears what to ask for instead, and can answer.
    let r = echo
        .send_edited("play_song", "", None, slot("song", "stairway to heaven"))
        .await;
    assert!(r["response"].get("directives").is_none(), "{r}");
    assert!(
        speech(&r).contains("find stairway to heaven by theo dubois.")
            && speech(&r).contains("something relaxing"),
        "{r}"
    );
    assert_eq!(r["response"]["shouldEndSession"], false, "{r}");
    echo.server.stop().await;
}

#[tokio::test]
async fn the_listeners_own_playlists_and_favourites_play_by_voice_and_no_one_elses() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, store, _) = echo_over_parts(dir.path()).await;
    let user = common::fixture("play_playlist", "")["context"]["System"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let catalog = encore::recommend::Catalog::load(&common::repo().join("models")).unwrap();
    let ids: Vec<encore::domain::TrackId> = catalog.tracks()[100..104]
        .iter()
        .map(|t| t.id.clone())
        .collect();
    let title_of = |id: &encore::domain::TrackId| catalog.track(id).unwrap().title.clone();
    let saved =
        |owner: &str, name: &str, tracks: Vec<encore::domain::TrackId>| encore::domain::Playlist {
            id: format!("{owner}-{name}"),
            user_id: owner.to_owned(),
            name: name.to_owned(),
            selection: None,
            tracks,
            created_at: 1,
        };
    // Someone else's "Road Trip" must never be what this listener hears.
    store
        .put_playlist(&saved("someone-else", "Road Trip", ids[2..].to_vec()))
        .await
        .unwrap();
    let r = echo.send("play_playlist", "", None).await;
    assert!(r["response"].get("directives").is_none(), "{r}");
    assert!(speech(&r).contains("no playlist called road trip"), "{r}");

    store
        .put_playlist(&saved(&user, "Road Trip!", ids[..2].to_vec()))
        .await
        .unwrap();
    let r = echo.send("play_playlist", "", None).await;
    let (_, token, first, _) = play(&r);
    assert!(
        speech(&r).contains("Playing your playlist Road Trip!"),
        "{r}"
    );
    assert_eq!(first.split_once(" / ").unwrap().0, title_of(&ids[0]));
    let (_, token, second, _) = play(&echo.send("next", &token, Some(5_000)).await);
    assert_eq!(second.split_once(" / ").unwrap().0, title_of(&ids[1]));
    // After the playlist, more like it rather than silence.
    let (_, _, third, _) = play(&echo.send("next", &token, Some(5_000)).await);
    assert!(!third.is_empty());

    // Favourites: nothing liked yet, then the liked tracks first, in some order.
    let r = echo.send("play_favourites", "", None).await;
    assert!(speech(&r).contains("liked any songs yet"), "{r}");
    encore::store::update_profile(store.as_ref(), &user, |p| {
        for id in &ids[1..4] {
            p.like(id);
        }
    })
    .await
    .unwrap();
    let r = echo.send("play_favourites", "", None).await;
    assert!(speech(&r).contains("the songs you like, shuffled"), "{r}");
    let (_, mut token, first, _) = play(&r);
    let mut heard = vec![first];
    for _ in 0..2 {
        let (_, t, track, _) = play(&echo.send("next", &token, Some(5_000)).await);
        heard.push(track);
        token = t;
    }
    let mut heard: Vec<String> = heard
        .iter()
        .map(|t| t.split_once(" / ").unwrap().0.to_owned())
        .collect();
    let mut liked: Vec<String> = ids[1..4].iter().map(title_of).collect();
    heard.sort();
    liked.sort();
    assert_eq!(heard, liked);
    echo.server.stop().await;
}

/// The first `n` tracks of the queue `r` started ("title / artist"), the listener saying
/// "next" after 5 s of each.
async fn next_and_next(echo: &Echo, r: &Value, n: usize) -> Vec<String> {
    let (_, mut token, first, _) = play(r);
    let mut shown = vec![first];
    while shown.len() < n {
        let (_, t, track, _) = play(&echo.send("next", &token, Some(5_000)).await);
        shown.push(track);
        token = t;
    }
    shown
}

#[tokio::test]
async fn a_decade_plays_only_its_years_and_something_new_only_what_the_listener_never_heard() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, store, _) = echo_over_parts(dir.path()).await;
    let catalog = encore::recommend::Catalog::load(&common::repo().join("models")).unwrap();
    let find = |shown: &str| {
        let (title, artist) = shown.split_once(" / ").unwrap();
        catalog
            .tracks()
            .iter()
            .find(|t| t.title == title && t.artist == artist)
            .unwrap_or_else(|| panic!("{shown} is not in the catalog"))
            .clone()
    };
    // Five tracks of "play 80s rock": each one rock, each one from 1980 to 1989.
    let r = echo.send("play_decade", "", None).await;
    assert!(speech(&r).contains("Playing rock from the 80s."), "{r}");
    let heard: Vec<_> = next_and_next(&echo, &r, 5)
        .await
        .iter()
        .map(|s| find(s))
        .collect();
    for t in &heard {
        assert_eq!(t.genre, "rock", "{t:?}");
        assert!(t.year.is_some_and(|y| (1980..1990).contains(&y)), "{t:?}");
    }
    // A decade the catalog lacks is said so, and the listener can ask again.
    let r = echo
        .send_edited("play_decade", "", None, |r: &mut Value| {
            let slot = &mut r["request"]["intent"]["slots"]["decade"];
            slot["value"] = "1920s".into();
            slot["resolutions"] = Value::Null;
            slot["slotValue"] = Value::Null;
        })
        .await;
    assert!(r["response"].get("directives").is_none(), "{r}");
    assert!(speech(&r).contains("find any rock from the 20s"), "{r}");

    // A listener who has played the 30 most popular jazz tracks to the end and likes jazz
    // (the first 20 long ago: no longer among their recent plays, still in their play
    // counts): "something new" is jazz they have not heard.
    let user = common::fixture("play_unheard", "")["context"]["System"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let played: Vec<encore::domain::TrackId> = catalog
        .tracks()
        .iter()
        .filter(|t| t.genre == "jazz")
        .take(30)
        .map(|t| t.id.clone())
        .collect();
    encore::store::update_profile(store.as_ref(), &user, |p| {
        for (n, id) in played.iter().enumerate() {
            if n >= 20 {
                p.played(id);
            }
            p.record_outcome(id, "genre=jazz", true);
            p.finishes += 1;
            p.adjust_affinity("jazz", "", 1.0);
        }
    })
    .await
    .unwrap();
    let r = echo.send("play_unheard", "", None).await;
    assert!(
        speech(&r).contains("Playing music you haven&apos;t heard."),
        "{r}"
    );
    let new: Vec<_> = next_and_next(&echo, &r, 10)
        .await
        .iter()
        .map(|s| find(s))
        .collect();
    for t in &new {
        assert!(!played.contains(&t.id), "{t:?} was heard before");
    }
    let jazz = new.iter().filter(|t| t.genre == "jazz").count();
    assert!(jazz >= 8, "{jazz} of 10 are jazz: {new:?}");
    echo.server.stop().await;
}
