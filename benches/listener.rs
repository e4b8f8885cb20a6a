//! The simulated-listener benchmark (in the spirit of RecSim): listeners with a hidden taste
//! play 20-track sessions through the real HTTP voice path, and the table compares skips per
//! session with the session re-ranking on and with the static queue (`--session-rerank
//! false`), on the embedded default, in one run.
//!
//! A listener asks for a mood ("play something relaxing"), then for each track the device
//! reports `PlaybackStarted`; a track that fits the taste plays on (`PlaybackNearlyFinished`,
//! whose enqueued track comes next, and `PlaybackFinished`), one that does not is skipped
//! 5 s in ("Alexa, next"). Tastes, drawn from the mood's pool in the catalog: two of its
//! genres (its second and third most common), an energy range (the lower half of the pool's
//! energies, and the upper half), and a listener who never skips (whose first track must be the same in both).
//! Each session is a new listener, so nothing is carried between sessions; the in-process
//! consumer folds events into profiles as it does in service.
//!
//! Run with `cargo bench --bench listener`. Settings: BENCH_SESSIONS (10 per mood and
//! taste), BENCH_TRACKS (20 per session).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/wrk.rs"]
mod wrk;

use encore::app::{Components, Server};
use encore::domain::{Mood, Track, TrackId};
use encore::recommend::{Catalog, Recommender, mood_target};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MOODS: [Mood; 5] = [
    Mood::Relaxing,
    Mood::Energetic,
    Mood::Happy,
    Mood::Focus,
    Mood::Party,
];

/// What a simulated listener likes, hidden from Encore.
enum Taste {
    Genres(String, String),
    Energy(f32, f32),
    Everything,
}

impl Taste {
    fn fits(&self, t: &Track) -> bool {
        match self {
            Taste::Genres(a, b) => &t.genre == a || &t.genre == b,
            Taste::Energy(lo, hi) => (*lo..=*hi).contains(&t.features.energy),
            Taste::Everything => true,
        }
    }

    fn name(&self) -> String {
        match self {
            Taste::Genres(a, b) => format!("genres {a} + {b}"),
            Taste::Energy(lo, hi) => format!("energy {lo:.2}-{hi:.2}"),
            Taste::Everything => "never skips".to_owned(),
        }
    }

    /// The tastes for `mood`, drawn from its pool in `catalog`.
    fn for_mood(catalog: &Catalog, mood: Mood) -> Vec<Taste> {
        let target = mood_target(mood);
        let all = catalog.tracks();
        let pool: Vec<&Arc<Track>> = all
            .iter()
            .filter(|t| target.distance(&t.features) == 0.0)
            .collect();
        let mut genres: HashMap<&str, usize> = HashMap::new();
        for t in &pool {
            *genres.entry(t.genre.as_str()).or_default() += 1;
        }
        let mut genres: Vec<(&str, usize)> = genres.into_iter().collect();
        genres.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut energies: Vec<f32> = pool.iter().map(|t| t.features.energy).collect();
        energies.sort_by(f32::total_cmp);
        let (lo, median, hi) = (
            energies[0],
            energies[energies.len() / 2],
            energies[energies.len() - 1],
        );
        vec![
            Taste::Genres(genres[1].0.to_owned(), genres[2].0.to_owned()),
            Taste::Energy(lo, median),
            Taste::Energy(median, hi),
            Taste::Everything,
        ]
    }
}

/// What one session came to.
#[derive(Default, Clone, Copy)]
struct Session {
    skips: usize,
    first_fits: bool,
}

/// One arm: Encore on the embedded default, the session re-ranking on or off.
struct Arm {
    addr: SocketAddr,
    tracks: Arc<dyn Recommender>,
    client: reqwest::Client,
}

impl Arm {
    async fn start(dir: &std::path::Path, rerank: bool) -> Arm {
        let mut args = common::serve_args(true, dir);
        args.storage.session_rerank = rerank;
        let parts = Components::load(&args.storage).await.unwrap();
        let tracks = parts.service.recommender().clone();
        let app = Server::with_parts(&args, parts, None).await.unwrap();
        let addr = app.local_addr();
        tokio::spawn(app.run_until(std::future::pending()));
        Arm {
            addr,
            tracks,
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: Value) -> Value {
        self.client
            .post(format!("http://{}/alexa", self.addr))
            .json(&request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A device report or intent about stream `token` at `offset` from `user`.
    async fn report(&self, name: &str, user: &str, token: &str, offset: u64) -> Value {
        let mut r = common::fixture_as(name, token, user);
        r["context"]["AudioPlayer"]["offsetInMilliseconds"] = offset.into();
        if r["request"].get("offsetInMilliseconds").is_some() {
            r["request"]["offsetInMilliseconds"] = offset.into();
        }
        self.send(r).await
    }

    fn track(&self, token: &str) -> Arc<Track> {
        let id = token.rsplit(':').next().unwrap();
        self.tracks.track(&TrackId(id.to_owned())).unwrap()
    }

    /// One listener's session of `length` tracks.
    async fn session(&self, user: &str, mood: Mood, taste: &Taste, length: usize) -> Session {
        let mut ask = common::fixture_as("play_mood_er", "", user);
        let slot = &mut ask["request"]["intent"]["slots"]["mood"];
        slot["value"] = mood.id().into();
        slot.as_object_mut().unwrap().remove("resolutions");
        slot.as_object_mut().unwrap().remove("slotValue");
        let mut token = stream_token(&self.send(ask).await);
        let mut session = Session {
            first_fits: taste.fits(&self.track(&token)),
            ..Session::default()
        };
        for _ in 0..length {
            self.report("playback_started", user, &token, 0).await;
            let track = self.track(&token);
            token = if taste.fits(&track) {
                let end = track.duration_ms;
                let next = self
                    .report(
                        "playback_nearly_finished",
                        user,
                        &token,
                        end.saturating_sub(10_000),
                    )
                    .await;
                self.report("playback_finished", user, &token, end).await;
                stream_token(&next)
            } else {
                session.skips += 1;
                stream_token(&self.report("next", user, &token, 5_000).await)
            };
        }
        session
    }
}

fn stream_token(answer: &Value) -> String {
    answer["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no Play directive in {answer}"))
        .to_owned()
}

fn main() {
    let sessions = wrk::env_or("BENCH_SESSIONS", 10);
    let length = wrk::env_or("BENCH_TRACKS", 20) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let adaptive = Arm::start(&dir.path().join("rerank"), true).await;
        let fixed = Arm::start(&dir.path().join("static"), false).await;
        println!(
            "\nsimulated listeners, {sessions} sessions of {length} tracks per mood and taste, \
             embedded default over HTTP; skips per session (mean) with the session re-ranking \
             and with the static queue, and how often the first track fits the taste\n"
        );
        println!(
            "{:<10} {:<28} {:>10} {:>10} {:>7} {:>12} {:>12}",
            "mood", "taste", "re-ranked", "static", "ratio", "1st fits rr", "1st fits st"
        );
        let (mut all_rr, mut all_st) = (0usize, 0usize);
        for mood in MOODS {
            for (t, taste) in Taste::for_mood(&catalog, mood).iter().enumerate() {
                let (mut rr, mut st) = (Vec::new(), Vec::new());
                for s in 0..sessions {
                    let user = format!("amzn1.ask.account.sim-{}-{t}-{s}", mood.id());
                    rr.push(
                        adaptive
                            .session(&format!("{user}-rr"), mood, taste, length)
                            .await,
                    );
                    st.push(
                        fixed
                            .session(&format!("{user}-st"), mood, taste, length)
                            .await,
                    );
                }
                let mean = |v: &[Session]| {
                    v.iter().map(|s| s.skips).sum::<usize>() as f64 / v.len() as f64
                };
                let fits = |v: &[Session]| {
                    v.iter().filter(|s| s.first_fits).count() as f64 / v.len() as f64
                };
                if !matches!(taste, Taste::Everything) {
                    all_rr += rr.iter().map(|s| s.skips).sum::<usize>();
                    all_st += st.iter().map(|s| s.skips).sum::<usize>();
                }
                let ratio = match mean(&st) {
                    0.0 => "-".to_owned(),
                    st_mean => format!("{:.2}", mean(&rr) / st_mean),
                };
                println!(
                    "{:<10} {:<28} {:>10.1} {:>10.1} {:>7} {:>11.0}% {:>11.0}%",
                    mood.id(),
                    taste.name(),
                    mean(&rr),
                    mean(&st),
                    ratio,
                    100.0 * fits(&rr),
                    100.0 * fits(&st)
                );
            }
        }
        println!(
            "\nall skipping tastes: {all_rr} skips re-ranked, {all_st} static (ratio {:.2})",
            all_rr as f64 / all_st.max(1) as f64
        );
    });
}
