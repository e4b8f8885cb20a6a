//! Finding a song or an album by what a listener said: an inverted index over the words of
//! titles, albums and artists. The words are kept in an `fst::Map` (a compact sorted
//! dictionary that also answers Levenshtein queries, for misheard words); each word points
//! to its postings, the tracks whose title, album or artist has it, most popular first.
//!
//! A query's words are looked up exactly and, from four letters on, within one edit (two
//! from eight letters); each matched word counts by its rarity (idf), a near word less than
//! an exact one. A track's match is the share of the query it explains times how much of its
//! own title it covers, so "hello" finds "Hello" before "Hello, Goodbye". Titles are read
//! without their decorations ("- Remastered 2011", "(feat. ...)", "(Live)"), which are still
//! searchable; "the", "a" and "an" are no words; "&" is "and".

use super::mapped::{Mapped, Region, as_u32s, pad4, write_u32s};
use super::table::TrackTable;
use crate::domain::Wanted;
use fst::automaton::Levenshtein;
use fst::{IntoStreamer, Map, MapBuilder, Streamer};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// At most this many tracks having a query's rarest word are scored when no track has its
/// two rarest words together: a very common word in a very large catalog must not make one
/// query score millions of tracks.
const MAX_POSTINGS: usize = 50_000;
/// How much a word within one edit counts, and one within two, against an exact word.
const NEAR: f32 = 0.8;
const FAR: f32 = 0.6;
/// The most words of a query that are looked up.
const MAX_QUERY_WORDS: usize = 16;
/// How many dictionary words one query word may stand for by edits.
const MAX_NEAR_WORDS: usize = 16;
/// The least match quality at which a hit is taken to be what the listener asked for.
pub const GOOD_MATCH: f32 = 0.6;

/// Which part of a track a word was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Field {
    Title = 0,
    Album = 1,
    Artist = 2,
}

/// A track's index in the catalog's order (the catalog's `TrackIx`).
type TrackIx = u32;

/// The dictionary words (by number) a query word stands for, each with its weight.
type Matches = Vec<(u64, f32)>;

/// A track found, with how well it matches (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub track: TrackIx,
    pub quality: f32,
}

/// The index, in a mapped file (`mapped.rs`): a header, the word dictionary, then (as
/// `u32`s) where each word's postings start and the postings, then the per-track word
/// counts. About 30 bytes a track that the heap does not hold. Built at load into a
/// temporary file, or saved beside the catalog by the catalog job and mapped from there.
pub struct SearchIndex {
    /// Word -> its number.
    words: Map<Region>,
    file: Arc<Mapped>,
    /// Word number -> where its postings start in `postings` (one more, at the end).
    starts: Range<usize>,
    /// Track index << 2 | field, most popular track first within a word.
    postings: Range<usize>,
    /// Per track: the words of its title without decorations, and of its album.
    title_words: Range<usize>,
    album_words: Range<usize>,
    tracks: usize,
}

impl SearchIndex {
    /// The index over `tracks`, which come most popular first (as the catalog keeps them),
    /// marked as the index of the catalog `fingerprint` names (`TrackTable::fingerprint`).
    /// Fails when its temporary file cannot be written.
    pub fn build(tracks: &TrackTable, fingerprint: u64) -> std::io::Result<SearchIndex> {
        use rayon::prelude::*;
        use std::io::Write as _;
        // Word -> (its number, its postings), numbered in the order first seen.
        let mut numbers: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<u32>> = Vec::new();
        let mut title_words = Vec::with_capacity(tracks.len());
        let mut album_words = Vec::with_capacity(tracks.len());
        // The words of a chunk of tracks are read in parallel, then added in track order so
        // that each word's postings stay sorted (most popular first).
        let all: Vec<TrackIx> = (0..tracks.len() as TrackIx).collect();
        for (c, chunk) in all.chunks(BUILD_CHUNK).enumerate() {
            let read: Vec<TrackWords> = chunk
                .par_iter()
                .map(|&ix| {
                    let t = tracks.at(ix);
                    TrackWords::of(t.title(), t.album(), t.artist())
                })
                .collect();
            for (i, t) in read.into_iter().enumerate() {
                let ix = (c * BUILD_CHUNK + i) as TrackIx;
                title_words.push(t.title_len);
                album_words.push(t.album_len);
                for (w, field) in t.words {
                    let n = *numbers.entry(w).or_insert_with(|| {
                        postings.push(Vec::new());
                        (postings.len() - 1) as u32
                    });
                    postings[n as usize].push(ix << 2 | field as u32);
                }
            }
        }
        let mut sorted: Vec<(String, u32)> = numbers.into_iter().collect();
        sorted.sort_unstable();
        let mut builder = MapBuilder::memory();
        let mut starts = Vec::with_capacity(sorted.len() + 1);
        let mut total = 0u32;
        for (n, (word, first_seen)) in sorted.iter().enumerate() {
            builder
                .insert(word.as_bytes(), n as u64)
                .expect("words come sorted and distinct");
            starts.push(total);
            total += postings[*first_seen as usize].len() as u32;
        }
        starts.push(total);
        let dictionary = builder.into_inner().expect("an in-memory map");
        // Where each part goes, after the header: the dictionary, then (4-aligned) the
        // starts and the postings, then the word counts.
        let mut ranges = [0..0, 0..0, 0..0, 0..0, 0..0];
        let mut at = HEADER;
        for (i, len) in [
            dictionary.len(),
            4 * starts.len(),
            4 * total as usize,
            title_words.len(),
            album_words.len(),
        ]
        .into_iter()
        .enumerate()
        {
            if i == 1 {
                at = at.next_multiple_of(4);
            }
            ranges[i] = at..at + len;
            at += len;
        }
        let file = Arc::new(Mapped::write(|out| {
            out.write_all(MAGIC)?;
            for v in [fingerprint, tracks.len() as u64] {
                out.write_all(&v.to_le_bytes())?;
            }
            for r in &ranges {
                out.write_all(&(r.start as u64).to_le_bytes())?;
                out.write_all(&(r.end as u64).to_le_bytes())?;
            }
            out.write_all(&dictionary)?;
            pad4(out, ranges[0].end)?;
            write_u32s(out, &starts)?;
            for (_, first_seen) in &sorted {
                write_u32s(out, &postings[*first_seen as usize])?;
            }
            out.write_all(&title_words)?;
            out.write_all(&album_words)
        })?);
        Ok(SearchIndex::over(file, ranges, tracks.len()).expect("the index just built"))
    }

    /// The index in `file`, its parts at `ranges`; an error when the dictionary does not
    /// read as one.
    fn over(
        file: Arc<Mapped>,
        ranges: [Range<usize>; 5],
        tracks: usize,
    ) -> Result<SearchIndex, String> {
        let [dictionary, starts, postings, title_words, album_words] = ranges;
        let words = Map::new(Region::new(file.clone(), dictionary.start, dictionary.end))
            .map_err(|e| format!("the word dictionary does not read: {e}"))?;
        Ok(SearchIndex {
            words,
            file,
            starts,
            postings,
            title_words,
            album_words,
            tracks,
        })
    }

    /// Writes the index to `path` (through a new file renamed into place, so a server that
    /// has the old one mapped reads it unchanged): the catalog job's copy, which serving maps
    /// (`open`) instead of building the index again.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, self.file.bytes())?;
        std::fs::rename(&partial, path)
    }

    /// The index saved at `path` for the catalog `fingerprint` names, whose `tracks` it must
    /// index; why not, when the file is not that (another catalog's, another format's, cut
    /// short or damaged), so the caller builds one instead.
    pub fn open(path: &Path, fingerprint: u64, tracks: usize) -> Result<SearchIndex, String> {
        if cfg!(target_endian = "big") {
            return Err("saved indexes are little-endian".into());
        }
        let file = Mapped::open(path).map_err(|e| format!("cannot map it: {e}"))?;
        let bytes = file.bytes();
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not a search index of this format".into());
        }
        let word = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8"));
        if word(1) != fingerprint || word(2) != tracks as u64 {
            return Err("it indexes another catalog".into());
        }
        let mut ranges = [0..0, 0..0, 0..0, 0..0, 0..0];
        let mut at = HEADER;
        for (i, r) in ranges.iter_mut().enumerate() {
            let (start, end) = (word(3 + 2 * i) as usize, word(4 + 2 * i) as usize);
            if start < at || end < start || end > bytes.len() {
                return Err("its parts are not where its header says".into());
            }
            (*r, at) = (start..end, end);
        }
        let [_, starts, postings, titles, albums] = &ranges;
        if starts.start % 4 != 0
            || starts.len() % 4 != 0
            || postings.len() % 4 != 0
            || titles.len() != tracks
            || albums.len() != tracks
        {
            return Err("its parts are not the sizes an index has".into());
        }
        let (s, p) = (
            as_u32s(&bytes[starts.clone()]),
            as_u32s(&bytes[postings.clone()]),
        );
        let ordered = s.first() == Some(&0)
            && s.windows(2).all(|w| w[0] <= w[1])
            && s.last().is_some_and(|&last| last as usize == p.len());
        if !ordered || p.iter().any(|&x| (x >> 2) as usize >= tracks || x & 3 > 2) {
            return Err("its postings point outside the catalog".into());
        }
        SearchIndex::over(Arc::new(file), ranges, tracks)
    }

    /// From now on the index is read at random (`Mapped::read_at_random`).
    pub fn read_at_random(&self) {
        self.file.read_at_random();
    }

    /// Bytes of the index's mapped file, for the benchmarks (resident only as far as read).
    pub fn mapped_bytes(&self) -> usize {
        self.file.bytes().len()
    }

    fn bytes(&self, range: &Range<usize>) -> &[u8] {
        &self.file.bytes()[range.clone()]
    }

    /// The tracks of `tracks` (those the index was built over) that best match `wanted`
    /// called `name` (by `artist`, if said), best first, at most `limit`. Among equal
    /// matches the more popular comes first.
    pub fn search(
        &self,
        tracks: &TrackTable,
        wanted: Wanted,
        name: &str,
        artist: Option<&str>,
        limit: usize,
    ) -> Vec<Hit> {
        let (field, lengths) = match wanted {
            Wanted::Song => (Field::Title, self.bytes(&self.title_words)),
            Wanted::Album => (Field::Album, self.bytes(&self.album_words)),
        };
        let name_words = query_words(name);
        let artist_words = artist.map(query_words).unwrap_or_default();
        if name_words.is_empty() {
            return Vec::new();
        }
        let name = self.weighed(&name_words);
        let by = self.weighed(&artist_words);
        let name_total: f32 = name.iter().map(|(_, idf)| idf).sum();
        let artist_total: f32 = by.iter().map(|(_, idf)| idf).sum();
        // A name word may be the artist ("hello adele") when no artist was said apart.
        let name_fields: &[Field] = match artist_words.is_empty() {
            true => &[field, Field::Artist],
            false => &[field],
        };
        let sources = name
            .iter()
            .map(|(m, _)| (m, name_fields))
            .chain(by.iter().map(|(m, _)| (m, &[Field::Artist][..])));
        let mut hits: Vec<(f32, Hit)> = Vec::new();
        for ix in self.candidates(sources) {
            let (mut in_field, mut count, mut in_artist, mut artist_found) = (0.0, 0.0, 0.0, 0.0);
            for (matches, idf) in &name {
                let w = self.weight_in(matches, ix, field);
                if w > 0.0 {
                    in_field += w * idf;
                    count += 1.0;
                } else if artist_words.is_empty() {
                    in_artist += self.weight_in(matches, ix, Field::Artist) * idf;
                }
            }
            if count == 0.0 {
                continue;
            }
            for (matches, idf) in &by {
                artist_found += self.weight_in(matches, ix, Field::Artist) * idf;
            }
            let explained = (in_field + in_artist).min(name_total) / name_total;
            let own = lengths[ix as usize].max(1) as f32;
            let covered = (count / own).min(1.0);
            let mut quality = explained * (0.6 + 0.4 * covered);
            if artist_total > 0.0 {
                quality *= 0.4 + 0.6 * (artist_found / artist_total).min(1.0);
            }
            let rank = quality + 0.05 * f32::from(tracks.at(ix).popularity()) / 100.0;
            hits.push((rank, Hit { track: ix, quality }));
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.track.cmp(&b.1.track)));
        hits.into_iter().take(limit).map(|(_, h)| h).collect()
    }

    /// The words in the dictionary `w` may stand for: (word number, weight).
    fn lookup(&self, w: &str) -> Matches {
        let mut matches: Matches = self.words.get(w).map(|n| (n, 1.0)).into_iter().collect();
        let chars = w.chars().count();
        for (distance, weight) in [(1, NEAR), (2, FAR)] {
            let reach = match distance {
                1 => chars >= 4,
                _ => chars >= 8,
            };
            if !reach {
                continue;
            }
            // An automaton too large to build is no near word, not an error.
            let Ok(automaton) = Levenshtein::new(w, distance) else {
                continue;
            };
            let mut stream = self.words.search(automaton).into_stream();
            let mut taken = 0;
            while let Some((_, n)) = stream.next() {
                if taken == MAX_NEAR_WORDS {
                    break;
                }
                if !matches.iter().any(|(m, _)| *m == n) {
                    matches.push((n, weight));
                    taken += 1;
                }
            }
        }
        matches
    }

    /// Each word's dictionary matches and how much it counts: how rare the rarest match is
    /// (ln(1 + tracks / tracks having it)). A word the catalog has nowhere, not even within
    /// an edit, counts half as much as the commonest word of the query it does have: an
    /// unknown word ("live", "um", a word misheard beyond two edits) weighs against a match
    /// without outweighing the words that were found.
    fn weighed(&self, words: &[String]) -> Vec<(Matches, f32)> {
        let mut weighed: Vec<(Matches, Option<f32>)> = words
            .iter()
            .map(|w| {
                let matches = self.lookup(w);
                let df = matches
                    .iter()
                    .map(|&(n, _)| self.postings_of(n).len())
                    .min();
                let idf = df.map(|df| (1.0 + self.tracks as f32 / df.max(1) as f32).ln());
                (matches, idf)
            })
            .collect();
        let unknown = 0.5
            * weighed
                .iter()
                .filter_map(|(_, idf)| *idf)
                .fold(f32::INFINITY, f32::min);
        weighed
            .drain(..)
            .filter_map(|(m, idf)| Some((m, idf.or(unknown.is_finite().then_some(unknown))?)))
            .collect()
    }

    fn postings_of(&self, n: u64) -> &[u32] {
        let starts = as_u32s(self.bytes(&self.starts));
        let (a, b) = (starts[n as usize], starts[n as usize + 1]);
        &as_u32s(self.bytes(&self.postings))[a as usize..b as usize]
    }

    /// The tracks worth scoring: those having both of the two rarest words the catalog has
    /// (each word in its fields), or when no track has both, the most popular
    /// `MAX_POSTINGS` having the rarest. Every track that matches a query well has its
    /// rarest words, so this reads two posting lists instead of all of them.
    fn candidates<'q>(
        &self,
        sources: impl Iterator<Item = (&'q Matches, &'q [Field])>,
    ) -> Vec<TrackIx> {
        let mut known: Vec<(usize, &Matches, &[Field])> = sources
            .map(|(m, fields)| {
                let df = m.iter().map(|&(n, _)| self.postings_of(n).len()).sum();
                (df, m, fields)
            })
            .filter(|(df, _, _)| *df > 0)
            .collect();
        known.sort_by_key(|(df, _, _)| *df);
        let Some(&(_, rarest, fields)) = known.first() else {
            return Vec::new();
        };
        let mut tracks = self.tracks_with(rarest, fields);
        if let Some(&(_, next, next_fields)) = known.get(1) {
            let both: Vec<TrackIx> = tracks
                .iter()
                .copied()
                .filter(|&ix| {
                    next_fields
                        .iter()
                        .any(|&f| self.weight_in(next, ix, f) > 0.0)
                })
                .collect();
            if !both.is_empty() {
                return both;
            }
        }
        tracks.truncate(MAX_POSTINGS);
        tracks
    }

    /// The tracks having any of `matches` in any of `fields`, most popular first.
    fn tracks_with(&self, matches: &Matches, fields: &[Field]) -> Vec<TrackIx> {
        let mut out: Vec<TrackIx> = matches
            .iter()
            .flat_map(|&(n, _)| self.postings_of(n))
            .filter(|&&p| fields.iter().any(|&f| p & 3 == f as u32))
            .map(|&p| p >> 2)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The best weight of `matches` found in track `ix`'s `field` (0 when none is).
    fn weight_in(&self, matches: &Matches, ix: TrackIx, field: Field) -> f32 {
        let key = ix << 2 | field as u32;
        matches
            .iter()
            .filter(|&&(n, _)| self.postings_of(n).binary_search(&key).is_ok())
            .map(|&(_, w)| w)
            .fold(0.0, f32::max)
    }
}

/// A saved index starts with these 8 bytes (the format's version in the last).
const MAGIC: &[u8; 8] = b"ENCSRCH1";
/// The header: the magic, the catalog's fingerprint and track count, and where each of the
/// five parts starts and ends (little-endian `u64`s).
const HEADER: usize = 8 * 13;

/// How many tracks' words are read at once while building (in parallel).
const BUILD_CHUNK: usize = 65_536;

/// One track's words for the index: each (word, field) once, and how many words its title
/// (without decorations) and its album have.
struct TrackWords {
    words: Vec<(String, Field)>,
    title_len: u8,
    album_len: u8,
}

impl TrackWords {
    fn of(title: &str, album: &str, artist: &str) -> TrackWords {
        let (core, all) = title_words_of(title);
        let album_len = words(strip_decorations(album)).len().min(255) as u8;
        let mut out = Vec::new();
        for (ws, field) in [
            (all, Field::Title),
            (words(album), Field::Album),
            (words(artist), Field::Artist),
        ] {
            let mut ws = ws;
            ws.sort_unstable();
            ws.dedup();
            out.extend(ws.into_iter().map(|w| (w, field)));
        }
        TrackWords {
            words: out,
            title_len: core.len().min(255) as u8,
            album_len,
        }
    }
}

/// The words of a title: without its decorations, and all of them.
fn title_words_of(title: &str) -> (Vec<String>, Vec<String>) {
    let all = words(title);
    let core = words(strip_decorations(title));
    match core.is_empty() {
        true => (all.clone(), all),
        false => (core, all),
    }
}

/// A title or album name without what is added to it: a " - ..." suffix ("- Remastered
/// 2011", "- Live"), bracketed parts ("(feat. X)", "[Radio Edit]"), a "feat." tail.
fn strip_decorations(s: &str) -> String {
    let s = s.split(" - ").next().unwrap_or(s);
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let lower = out.to_lowercase();
    let cut = [" feat. ", " feat ", " ft. ", " featuring "]
        .iter()
        .filter_map(|m| lower.find(m))
        .min();
    match cut {
        // The markers are ASCII, so byte offsets in the lower-cased copy hold in `out`
        // wherever lower-casing kept lengths; otherwise keep the whole.
        Some(at) if lower.len() == out.len() => out[..at].to_owned(),
        _ => out,
    }
}

/// The words of `s` as the index keeps them: accents folded, lower case, punctuation dropped
/// (so "don't" is "dont"), "&" as "and", without "the", "a" and "an".
pub fn words(s: impl AsRef<str>) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let folded: String = s
        .as_ref()
        .replace('&', " and ")
        .nfkd()
        .filter(|c| !is_combining_mark(*c) && !matches!(c, '\'' | '\u{2019}' | '.'))
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .collect();
    let mut out: Vec<String> = Vec::new();
    // A tens word waiting for a unit ("twenty" "five" is 25).
    let mut tens: Option<u32> = None;
    for w in folded.split_whitespace() {
        if matches!(w, "the" | "a" | "an") {
            continue;
        }
        match (number(w), tens.take()) {
            (Some(unit @ 1..=9), Some(t)) => out.push((t + unit).to_string()),
            (Some(n), pending) => {
                out.extend(pending.map(|t| t.to_string()));
                match n % 10 == 0 && (20..=90).contains(&n) {
                    true => tens = Some(n),
                    false => out.push(n.to_string()),
                }
            }
            (None, pending) => {
                out.extend(pending.map(|t| t.to_string()));
                out.push(w.to_owned());
            }
        }
    }
    out.extend(tens.map(|t| t.to_string()));
    out
}

/// An English number word up to ninety, or a number in digits: spoken "nine to five" and
/// "twenty five" are written "9 to 5" and "25".
fn number(w: &str) -> Option<u32> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(n) = UNITS.iter().position(|u| *u == w) {
        return Some(n as u32);
    }
    if let Some(n) = TENS.iter().position(|t| *t == w) {
        return Some(20 + 10 * n as u32);
    }
    // Digits as written, so "25" and "twenty five" meet; longer numbers stay words.
    w.parse::<u32>().ok().filter(|n| *n < 100)
}

/// The words of what a listener (or the app) asked for, without decorations and without a
/// "featuring ..." tail.
fn query_words(s: &str) -> Vec<String> {
    let mut ws = words(strip_decorations(s));
    // A title is a few words: more is not a title, and each costs a dictionary search.
    ws.truncate(MAX_QUERY_WORDS);
    if let Some(cut) = ws
        .iter()
        .position(|w| matches!(w.as_str(), "feat" | "ft" | "featuring"))
    {
        ws.truncate(cut);
    }
    ws
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Track;
    use crate::recommend::table::TableBuilder;

    fn track(title: &str, artist: &str, album: &str, popularity: u8) -> Track {
        let mut t = Track::sample(title, artist, "pop");
        // Two songs may share a title; never an id.
        t.id = crate::domain::TrackId(format!("{title} / {artist}"));
        t.album = album.to_owned();
        t.popularity = popularity;
        t
    }

    fn first(
        tracks: &TrackTable,
        wanted: Wanted,
        name: &str,
        artist: Option<&str>,
    ) -> Option<String> {
        let hits = SearchIndex::build(tracks, 0)
            .unwrap()
            .search(tracks, wanted, name, artist, 5);
        hits.first()
            .filter(|h| h.quality >= GOOD_MATCH)
            .map(|h| tracks.at(h.track).title().to_owned())
    }

    /// A few real titles, most popular first as the catalog keeps them.
    fn catalog() -> TrackTable {
        let tracks = vec![
            track("Hello", "Adele", "25", 80),
            track(
                "Hello, Goodbye - Remastered 2009",
                "The Beatles",
                "Magical Mystery Tour",
                70,
            ),
            track("Hello", "Lionel Richie", "Can't Slow Down", 60),
            track(
                "Bohemian Rhapsody - Remastered 2011",
                "Queen",
                "A Night at the Opera",
                85,
            ),
            track("Señorita", "Shawn Mendes", "Señorita", 75),
            track("Don't Stop Me Now", "Queen", "Jazz", 65),
            track("Rock & Roll", "Led Zeppelin", "Led Zeppelin IV", 55),
            track(
                "Old Town Road (feat. Billy Ray Cyrus)",
                "Lil Nas X",
                "7 EP",
                72,
            ),
        ];
        let mut b = TableBuilder::new("https://x/{track_id}", None).unwrap();
        for t in &tracks {
            b.push(t);
        }
        b.finish().unwrap().0
    }

    #[test]
    fn a_title_is_found_without_its_decorations() {
        let c = catalog();
        assert_eq!(
            first(&c, Wanted::Song, "bohemian rhapsody", None).unwrap(),
            "Bohemian Rhapsody - Remastered 2011"
        );
        assert_eq!(
            first(&c, Wanted::Song, "old town road", None).unwrap(),
            "Old Town Road (feat. Billy Ray Cyrus)"
        );
        assert_eq!(
            first(
                &c,
                Wanted::Song,
                "old town road featuring billy ray cyrus",
                None
            )
            .unwrap(),
            "Old Town Road (feat. Billy Ray Cyrus)"
        );
    }

    #[test]
    fn the_whole_title_beats_one_that_only_contains_it_and_the_artist_decides() {
        let c = catalog();
        assert_eq!(first(&c, Wanted::Song, "hello", None).unwrap(), "Hello");
        let ix = SearchIndex::build(&c, 0).unwrap();
        let by = |artist| {
            let hits = ix.search(&c, Wanted::Song, "hello", Some(artist), 1);
            c.at(hits[0].track).artist().to_owned()
        };
        assert_eq!(by("lionel richie"), "Lionel Richie");
        assert_eq!(by("adele"), "Adele");
        // The artist said along with the title, without "by".
        let hits = ix.search(&c, Wanted::Song, "hello lionel richie", None, 1);
        assert_eq!(c.at(hits[0].track).artist(), "Lionel Richie");
    }

    #[test]
    fn misheard_words_accents_and_ampersands_still_match() {
        let c = catalog();
        assert_eq!(
            first(&c, Wanted::Song, "bohemian rapsody", None).unwrap(),
            "Bohemian Rhapsody - Remastered 2011"
        );
        assert_eq!(
            first(&c, Wanted::Song, "senorita", None).unwrap(),
            "Señorita"
        );
        assert_eq!(
            first(&c, Wanted::Song, "rock and roll", None).unwrap(),
            "Rock & Roll"
        );
        assert_eq!(
            first(&c, Wanted::Song, "dont stop me now", None).unwrap(),
            "Don't Stop Me Now"
        );
    }

    #[test]
    fn albums_are_found_by_their_own_name() {
        let c = catalog();
        assert_eq!(
            first(&c, Wanted::Album, "night at the opera", None).unwrap(),
            "Bohemian Rhapsody - Remastered 2011"
        );
        assert_eq!(
            first(&c, Wanted::Album, "magical mystery tour", Some("beatles")).unwrap(),
            "Hello, Goodbye - Remastered 2009"
        );
    }

    #[test]
    fn what_is_not_there_is_no_good_match() {
        let c = catalog();
        assert_eq!(first(&c, Wanted::Song, "stairway to heaven", None), None);
        assert_eq!(first(&c, Wanted::Song, "", None), None);
        assert_eq!(first(&c, Wanted::Song, "the", None), None);
        // Known words of another title do not make words the catalog lacks a match.
        assert_eq!(
            first(&c, Wanted::Song, "stairway to heaven now", None),
            None
        );
        assert_eq!(
            first(&c, Wanted::Song, "dont stop me now live", None).unwrap(),
            "Don't Stop Me Now"
        );
    }

    #[test]
    fn words_fold_case_accents_and_articles() {
        assert_eq!(words("The Beatles"), ["beatles"]);
        assert_eq!(words("Beyoncé — Halo!"), ["beyonce", "halo"]);
        assert_eq!(words("Don't"), ["dont"]);
        assert_eq!(words("Simon & Garfunkel"), ["simon", "and", "garfunkel"]);
        assert_eq!(words("nine to five"), words("9 to 5"));
        assert_eq!(words("ninety nine luftballons"), ["99", "luftballons"]);
        assert_eq!(words("twenty"), ["20"]);
        assert_eq!(words("1989"), ["1989"]);
        assert_eq!(strip_decorations("Help! - Remastered 2009"), "Help!");
        assert_eq!(strip_decorations("Song (feat. X) [Radio Edit]"), "Song  ");
        assert_eq!(strip_decorations("Song feat. X"), "Song");
    }
}
