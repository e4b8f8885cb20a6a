//! Properties over many generated cases: queue operations never lose or duplicate a track
//! and keep the current track where it is, and whatever the local log acknowledged is read
//! back after a crash that tore the records written after it.

use encore::domain::{Mood, Queue, Reason, Selection, TrackId};
use encore::domain::{Source, TrackId as Id};
use encore::feedback::{EventContext, EventKind, FeedbackEvent, FeedbackSink, LocalLog};
use proptest::prelude::*;
use rand::SeedableRng;
use std::io::Write;

#[derive(Debug, Clone)]
enum Op {
    Next,
    Previous,
    Shuffle(bool, u64),
    Loop(bool),
    Extend(Vec<u8>),
    Token,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Next),
        Just(Op::Previous),
        (any::<bool>(), any::<u64>()).prop_map(|(on, seed)| Op::Shuffle(on, seed)),
        any::<bool>().prop_map(Op::Loop),
        proptest::collection::vec(0u8..60, 0..12).prop_map(Op::Extend),
        Just(Op::Token),
    ]
}

fn track(n: u8) -> TrackId {
    TrackId(format!("t{n}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn queue_operations_never_lose_or_duplicate_a_track(
        start in proptest::collection::btree_set(0u8..60, 1..20),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let mut q = Queue::new(
            Selection::Mood(Mood::Happy),
            "rec".into(),
            "v".into(),
            start.iter().map(|&n| track(n)).collect(),
        );
        let mut known: std::collections::BTreeSet<TrackId> = start.iter().map(|&n| track(n)).collect();
        for op in ops {
            let current = q.current_track().clone();
            match op {
                Op::Next => {
                    if let Some(p) = q.next_position(q.cursor) {
                        q.move_to(p);
                    }
                }
                Op::Previous => {
                    if let Some(p) = q.previous_position(q.cursor) {
                        q.move_to(p);
                    }
                }
                Op::Shuffle(on, seed) => {
                    q.set_shuffle(on, &mut rand::rngs::StdRng::seed_from_u64(seed));
                    prop_assert_eq!(q.current_track(), &current, "shuffling keeps the current track");
                }
                Op::Loop(on) => q.looping = on,
                Op::Extend(more) => {
                    let added = q.extend(more.iter().map(|&n| (track(n), Reason::Popular)));
                    let new: std::collections::BTreeSet<TrackId> = more.iter().map(|&n| track(n)).filter(|t| !known.contains(t)).collect();
                    prop_assert_eq!(added, new.len());
                    known.extend(new);
                    prop_assert_eq!(q.current_track(), &current, "adding keeps the current track");
                }
                Op::Token => {
                    let pos = q.cursor;
                    let token = q.token_for(pos);
                    prop_assert_eq!(q.position_of(&token), Some(pos), "a token leads back to its position");
                    let parsed: encore::domain::Token = token.to_string().parse().unwrap();
                    prop_assert_eq!(parsed, token);
                }
            }
            prop_assert!(q.is_consistent(), "{:?}", q);
            let held: std::collections::BTreeSet<TrackId> = q.tracks.iter().cloned().collect();
            prop_assert_eq!(held.len(), q.tracks.len(), "no track twice");
            prop_assert_eq!(&held, &known, "no track lost");
            if q.looping {
                prop_assert!(q.next_position(q.cursor).is_some() && q.previous_position(q.cursor).is_some());
            }
        }
    }
}

fn event(i: usize, pad: usize) -> FeedbackEvent {
    FeedbackEvent::new(
        &format!("user{}", i % 7),
        &"d".repeat(1 + pad),
        &Id(format!("track{i}")),
        EventKind::PlayFinished,
        i as u64,
        EventContext::default(),
        Source::Mobile,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn what_the_log_acknowledged_survives_a_torn_tail(
        pads in proptest::collection::vec(0usize..300, 1..60),
        torn in proptest::collection::vec(any::<u8>(), 1..200),
        segment in 512u64..8192,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let acked: Vec<FeedbackEvent> = rt.block_on(async {
            let log = LocalLog::open_with_segment_size(dir.path(), segment).unwrap();
            let mut acked = Vec::new();
            for (i, pad) in pads.iter().enumerate() {
                let e = event(i, *pad);
                log.send(e.clone()).durable().await.unwrap();
                acked.push(e);
            }
            acked
        });
        // The crash: half a record's worth of bytes lands at the end of the newest segment.
        let newest = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .max()
            .unwrap();
        std::fs::OpenOptions::new().append(true).open(&newest).unwrap().write_all(&torn).unwrap();
        let log = LocalLog::open_with_segment_size(dir.path(), segment).unwrap();
        let back: Vec<FeedbackEvent> = log
            .read(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| r.event.unwrap())
            .collect();
        prop_assert_eq!(back, acked.clone());
        // And the log goes on from there.
        let next = event(9999, 0);
        rt.block_on(async { log.send(next.clone()).durable().await.unwrap() });
        let all = log.read(0, usize::MAX).unwrap();
        prop_assert_eq!(all.len(), acked.len() + 1);
        prop_assert_eq!(all.last().unwrap().event.as_ref().unwrap(), &next);
    }
}

use crate::common;

/// The parsers behind every input the service takes, fed arbitrary input: none may panic,
/// and the HTTP answers stay in the 2xx/4xx range (an arbitrary body is the caller's
/// fault, never a server error).
mod no_panic {
    use super::common;
    use axum::body::Body;
    use axum::http::Request;
    use encore::app::{Components, RouterSettings, build_router};
    use encore::http::RateLimit;
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use tower::ServiceExt;

    struct Fixture {
        rt: tokio::runtime::Runtime,
        router: axum::Router,
        model: std::sync::Arc<encore::interaction::InteractionModel>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let parts = rt
                .block_on(Components::load(&common::storage(dir.path())))
                .unwrap();
            let model = parts.model.clone();
            let router = build_router(
                &parts,
                Some(common::verifier(common::fetcher())),
                RouterSettings {
                    rate_limit: RateLimit {
                        per_minute: 1_000_000,
                        burst: 1_000_000,
                    },
                    ..common::router_settings()
                },
            );
            Fixture {
                rt,
                router,
                model,
                _dir: dir,
            }
        })
    }

    fn status_of(req: Request<Body>) -> u16 {
        let f = fixture();
        f.rt.block_on(f.router.clone().oneshot(req))
            .unwrap()
            .status()
            .as_u16()
    }

    /// Bytes that look like JSON some of the time.
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            "\\{\"version\":\"1.0\",\"request\":\\{\"type\":\"[A-Za-z.]{0,30}\",\"timestamp\":\"[0-9T:Z-]{0,25}\"\\}\\}"
                .prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn the_alexa_endpoint_answers_any_body_and_headers_without_a_server_error(
            body in jsonish(),
            cert in "[ -~]{0,120}",
            signature in "[A-Za-z0-9+/=]{0,400}",
        ) {
            let req = Request::post("/alexa")
                .header("SignatureCertChainUrl", cert)
                .header("Signature-256", signature)
                .body(Body::from(body))
                .unwrap();
            let status = status_of(req);
            prop_assert!((200..500).contains(&status), "{status}");
        }

        #[test]
        fn unsigned_envelopes_are_parsed_or_refused_never_crash(body in jsonish()) {
            // Straight to the parser, as verification would hand it over.
            let _ = serde_json::from_slice::<encore::skill::envelope::RequestEnvelope>(&body);
        }

        #[test]
        fn the_utterance_parser_takes_any_text(text in "\\PC{0,80}", locale in prop_oneof![Just("en-US"), Just("en-GB"), Just("de-DE"), Just("xx")]) {
            let intent = fixture().model.locale(locale).parse(&text);
            let _ = encore::interaction::command_for(&intent);
        }

        #[test]
        fn feedback_event_decoding_takes_any_bytes(bytes in jsonish()) {
            let _ = serde_json::from_slice::<encore::feedback::FeedbackEvent>(&bytes);
        }

        #[test]
        fn a_damaged_log_segment_is_an_error_or_records_never_a_crash(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(format!("{:020}.log", 0)), &bytes).unwrap();
            if let Ok(log) = encore::feedback::LocalLog::open(dir.path()) {
                let _ = log.read(0, 1000);
            }
        }
    }
}
