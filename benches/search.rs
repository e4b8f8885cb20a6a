//! Songs and albums by name: natural requests on a catalog of real titles, through the text
//! path (`api::voice::answer`: the parser, the service, the search), and the share that plays
//! the track asked for first.
//!
//! The catalog is `benches/search/catalog.csv` (164 real tracks, with the decorations real
//! catalogs carry: "- Remastered 2011", "(feat. ...)", several songs of one title) unless
//! BENCH_CATALOG names another catalog CSV in the import format, such as the public Spotify
//! tracks dataset's `dataset.csv`. The requests are `benches/search/requests.tsv`
//! (BENCH_REQUESTS): spoken forms written apart from the catalog, with and without the
//! artist, with carrier words, with a misheard word. A song request is right when the first
//! track has the title and artist expected; an album request, when it is of that album.
//!
//! Run with `cargo bench --bench search`. Nothing leaves the process.

#[path = "../tests/common/mod.rs"]
mod common;

use encore::api::voice::{self, PlaybackDto};
use encore::app::Components;
use encore::domain::{Listener, Source};
use std::path::PathBuf;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Request {
    said: String,
    album: bool,
    name: String,
    artist: String,
}

fn requests(path: &std::path::Path) -> Vec<Request> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{l:?}: four tab-separated fields");
            Request {
                said: f[0].to_owned(),
                album: f[1] == "album",
                name: f[2].to_owned(),
                artist: f[3].to_owned(),
            }
        })
        .collect()
}

fn main() {
    let here = common::repo().join("benches/search");
    let catalog = std::env::var_os("BENCH_CATALOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("catalog.csv"));
    let requests = requests(
        &std::env::var_os("BENCH_REQUESTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| here.join("requests.tsv")),
    );
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(&catalog, models.join("catalog.csv")).unwrap();
    let manifest = serde_json::json!({
        "version": "search-bench",
        "created_at": "2026-12-02T00:00:00Z",
        "catalog": "catalog.csv",
        "stream_url_template": "https://audio.example/{track_id}.mp3",
    });
    std::fs::write(models.join("manifest.json"), manifest.to_string()).unwrap();
    let tracks = encore::recommend::Catalog::load(&models).unwrap().len();
    let mut storage = common::storage(&dir.path().join("data"));
    storage.models = encore::objects::Location::Dir(models);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let parts = Components::load(&storage).await.unwrap();
        let model = parts.model.locale("en-US");
        let (mut songs, mut albums, mut songs_right, mut albums_right) = (0, 0, 0, 0);
        let mut wrong = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let listener = Listener {
                user_id: format!("search-bench-{i}"),
                account_id: None,
                device_id: "text".into(),
                locale: "en-US".into(),
                source: Source::Mobile,
            };
            let answer = voice::answer(&parts.service, model, &listener, &r.said).await;
            let first = match &answer.playback {
                Some(PlaybackDto::Play { track, .. }) => Some(track),
                _ => None,
            };
            let right = first.is_some_and(|t| {
                t.artist == r.artist
                    && match r.album {
                        true => t.album == r.name,
                        false => t.title == r.name,
                    }
            });
            let (count, hits) = match r.album {
                true => (&mut albums, &mut albums_right),
                false => (&mut songs, &mut songs_right),
            };
            *count += 1;
            if right {
                *hits += 1;
            } else {
                let got = match first {
                    Some(t) => format!("{} / {} ({})", t.title, t.artist, t.album),
                    None => format!("no track: {:?}", answer.speech.unwrap_or_default()),
                };
                wrong.push(format!("{:?} ({}) -> {got}", r.said, answer.intent.name));
            }
        }
        let share = |hits: usize, n: usize| 100.0 * hits as f64 / n.max(1) as f64;
        println!(
            "\nsongs and albums by name, {} requests on {} ({} tracks), text path",
            requests.len(),
            catalog.display(),
            tracks,
        );
        println!("| requests | asked for | plays the one asked for first |");
        println!("|---|---|---|");
        println!(
            "| songs | {songs} | {songs_right} ({:.0}%) |",
            share(songs_right, songs)
        );
        println!(
            "| albums | {albums} | {albums_right} ({:.0}%) |",
            share(albums_right, albums)
        );
        println!(
            "| all | {} | {} ({:.0}%) |",
            songs + albums,
            songs_right + albums_right,
            share(songs_right + albums_right, songs + albums)
        );
        if !wrong.is_empty() {
            println!("\nnot as asked:");
            for w in wrong {
                println!("  {w}");
            }
        }
    });
}
