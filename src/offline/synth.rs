//! Synthetic data for benchmarks and evaluation: a catalog of any size with plausible audio
//! features per genre, and listening histories with planted structure (each listener keeps
//! to a few genres and artists), so a model that learns the structure measurably beats
//! popularity. Deterministic for a seed. Each artist's tracks come out a year apart from a
//! start year of their own.

use super::train::Interactions;
use crate::domain::{AudioFeatures, Track, TrackId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Genres and the centre of their audio features:
/// (valence, energy, tempo, danceability, acousticness, instrumentalness).
#[rustfmt::skip]
const GENRES: [(&str, [f32; 6]); 23] = [
    ("pop", [0.65, 0.70, 118.0, 0.68, 0.15, 0.02]),
    ("rock", [0.50, 0.80, 125.0, 0.50, 0.10, 0.08]),
    ("hip-hop", [0.55, 0.68, 95.0, 0.78, 0.12, 0.02]),
    ("jazz", [0.50, 0.38, 105.0, 0.55, 0.70, 0.45]),
    ("classical", [0.30, 0.15, 85.0, 0.28, 0.92, 0.88]),
    ("ambient", [0.25, 0.15, 75.0, 0.30, 0.80, 0.85]),
    ("house", [0.60, 0.82, 124.0, 0.80, 0.05, 0.55]),
    ("techno", [0.40, 0.88, 130.0, 0.72, 0.03, 0.80]),
    ("metal", [0.30, 0.95, 140.0, 0.40, 0.02, 0.15]),
    ("punk", [0.55, 0.92, 160.0, 0.45, 0.03, 0.03]),
    ("blues", [0.45, 0.45, 95.0, 0.52, 0.55, 0.10]),
    ("lo-fi", [0.45, 0.30, 80.0, 0.65, 0.60, 0.70]),
    ("acoustic", [0.50, 0.30, 100.0, 0.50, 0.85, 0.10]),
    ("country", [0.60, 0.60, 110.0, 0.58, 0.40, 0.02]),
    ("funk", [0.80, 0.72, 108.0, 0.80, 0.15, 0.10]),
    ("folk", [0.45, 0.35, 100.0, 0.48, 0.80, 0.08]),
    ("electronic", [0.50, 0.78, 126.0, 0.70, 0.08, 0.60]),
    ("piano", [0.35, 0.12, 80.0, 0.35, 0.95, 0.90]),
    ("r-n-b", [0.55, 0.55, 98.0, 0.70, 0.25, 0.03]),
    ("soul", [0.60, 0.52, 100.0, 0.62, 0.35, 0.03]),
    ("reggae", [0.75, 0.60, 90.0, 0.78, 0.20, 0.05]),
    ("indie", [0.45, 0.58, 115.0, 0.52, 0.35, 0.12]),
    ("latin", [0.78, 0.75, 105.0, 0.78, 0.20, 0.02]),
];

const WORDS: [&str; 32] = [
    "Blue",
    "Night",
    "River",
    "Golden",
    "Echo",
    "Silent",
    "Neon",
    "Window",
    "Summer",
    "Paper",
    "Heart",
    "Signal",
    "Velvet",
    "Northern",
    "Glass",
    "Fire",
    "Morning",
    "Static",
    "Wild",
    "Slow",
    "Electric",
    "Ocean",
    "Dream",
    "Satellite",
    "Honey",
    "Shadow",
    "City",
    "Garden",
    "Runaway",
    "Crystal",
    "Midnight",
    "Horizon",
];

/// Tracks per artist, on average.
const TRACKS_PER_ARTIST: usize = 10;

fn name(rng: &mut StdRng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` tracks over `n / 10` artists, each artist in one genre with a sound of its own.
/// Popularity follows a long tail. Stream and art URLs use the given templates.
pub fn tracks(
    n: usize,
    seed: u64,
    stream_url_template: &str,
    art_url_template: Option<&str>,
) -> Vec<Track> {
    each_track(n, seed, stream_url_template, art_url_template).collect()
}

/// The tracks of `tracks`, made one at a time: a catalog of any size is written without
/// being held (only its artists are, about 70 bytes per ten tracks).
pub fn each_track<'a>(
    n: usize,
    seed: u64,
    stream_url_template: &'a str,
    art_url_template: Option<&'a str>,
) -> impl Iterator<Item = Track> + 'a {
    let mut rng = StdRng::seed_from_u64(seed);
    let artists = (n / TRACKS_PER_ARTIST).max(1);
    let artist_info: Vec<(String, usize, [f32; 6], f32)> = (0..artists)
        .map(|a| {
            let genre = rng.random_range(0..GENRES.len());
            let base = GENRES[genre].1;
            let sound = [
                jitter(&mut rng, base[0], 0.12),
                jitter(&mut rng, base[1], 0.12),
                base[2] + rng.random_range(-12.0..12.0),
                jitter(&mut rng, base[3], 0.1),
                jitter(&mut rng, base[4], 0.1),
                jitter(&mut rng, base[5], 0.1),
            ];
            // Artist popularity: a long tail.
            let fame = rng.random::<f32>().powi(3);
            (format!("{} {a}", name(&mut rng, 2)), genre, sound, fame)
        })
        .collect();
    (0..n).map(move |i| {
        let a = i % artists;
        let (artist, genre, sound, fame) = &artist_info[a];
        let id = track_id(i, seed);
        let url = |t: &str| t.replace("{track_id}", &id);
        let popularity = (fame * 70.0 + rng.random::<f32>() * 30.0).clamp(0.0, 100.0) as u8;
        Track {
            stream_url: url(stream_url_template),
            art_url: art_url_template.map(url),
            year: Some(release_year(artist, i / artists)),
            id: TrackId(id.clone()),
            title: name(&mut rng, 2),
            artist: artist.clone(),
            album: name(&mut rng, 2),
            genre: GENRES[*genre].0.to_owned(),
            duration_ms: rng.random_range(120_000..360_000),
            popularity,
            explicit: GENRES[*genre].0 == "hip-hop" && rng.random::<f32>() < 0.4,
            features: AudioFeatures {
                valence: jitter(&mut rng, sound[0], 0.1),
                energy: jitter(&mut rng, sound[1], 0.1),
                tempo: (sound[2] + rng.random_range(-8.0..8.0)).max(40.0),
                danceability: jitter(&mut rng, sound[3], 0.08),
                acousticness: jitter(&mut rng, sound[4], 0.08),
                instrumentalness: jitter(&mut rng, sound[5], 0.08),
            },
        }
    })
}

/// The id of synthetic track `i` of the catalog made with `seed`.
pub fn track_id(i: usize, seed: u64) -> String {
    format!(
        "{:022x}",
        xxhash_rust::xxh3::xxh3_128_with_seed(&(i as u64).to_le_bytes(), seed) >> 38
    )
}

/// The year an artist's `nth` track came out: each artist starts in a year of their own
/// from 1955 to 2019 (a hash of the name, so the other columns' random draws stay as they
/// were) and releases a track a year, up to 2026.
fn release_year(artist: &str, nth: usize) -> u16 {
    let start = 1955 + (xxhash_rust::xxh3::xxh3_64(artist.as_bytes()) % 65) as u16;
    (start + nth as u16).min(2026)
}

fn jitter(rng: &mut StdRng, centre: f32, spread: f32) -> f32 {
    let v = centre + rng.random_range(-spread..spread);
    (v * 1000.0).round().clamp(0.0, 1000.0) / 1000.0
}

/// Listening histories over `tracks`: `users` listeners with about `per_user` plays each
/// (at least 3). Each listener has two favourite genres and three favourite artists; a play
/// is a favourite artist's track (40%), a popular track of a favourite genre (45%) or a
/// popular track of any genre (15%). Timestamps increase through each history.
pub fn interactions(tracks: &[Track], users: usize, per_user: usize, seed: u64) -> Interactions {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut by_genre: Vec<Vec<usize>> = vec![Vec::new(); GENRES.len()];
    let mut by_artist: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, t) in tracks.iter().enumerate() {
        if let Some(g) = GENRES.iter().position(|(name, _)| *name == t.genre) {
            by_genre[g].push(i);
        }
        by_artist.entry(t.artist.as_str()).or_default().push(i);
    }
    for list in &mut by_genre {
        list.sort_by_key(|&i| std::cmp::Reverse(tracks[i].popularity));
    }
    let mut all: Vec<usize> = (0..tracks.len()).collect();
    all.sort_by_key(|&i| std::cmp::Reverse(tracks[i].popularity));
    // A popular-biased pick from a list sorted by popularity.
    let skewed = |rng: &mut StdRng, list: &[usize]| {
        list[((rng.random::<f64>().powi(3)) * list.len() as f64) as usize % list.len()]
    };
    let mut data = Interactions::default();
    let start = 1_700_000_000i64;
    for u in 0..users {
        let user = format!("user{u:07}");
        let genres: Vec<usize> = (0..2)
            .map(|_| rng.random_range(0..GENRES.len()))
            .filter(|&g| !by_genre[g].is_empty())
            .collect();
        if genres.is_empty() {
            continue;
        }
        let artists: Vec<&str> = (0..3)
            .map(|_| {
                let g = genres[rng.random_range(0..genres.len())];
                tracks[skewed(&mut rng, &by_genre[g])].artist.as_str()
            })
            .collect();
        let n = per_user / 2 + rng.random_range(0..=per_user);
        let mut ts = start + rng.random_range(0..86_400);
        for _ in 0..n.max(3) {
            let roll = rng.random::<f32>();
            let track = if roll < 0.40 {
                let list = &by_artist[artists[rng.random_range(0..artists.len())]];
                list[rng.random_range(0..list.len())]
            } else if roll < 0.85 {
                let g = genres[rng.random_range(0..genres.len())];
                skewed(&mut rng, &by_genre[g])
            } else {
                skewed(&mut rng, &all)
            };
            ts += rng.random_range(60..20_000);
            data.push(&user, &tracks[track].id.0, ts, 1.0);
        }
    }
    data
}

/// Writes `data` as a CSV of `user_id,item_id,timestamp,rating`.
pub fn write_interactions(path: &std::path::Path, data: &Interactions) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["user_id", "item_id", "timestamp", "rating"])?;
    for r in &data.rows {
        w.write_record([
            data.users[r.user as usize].as_str(),
            &data.items[r.item as usize],
            &r.ts.to_string(),
            &r.weight.to_string(),
        ])?;
    }
    w.flush()
}
