//! The catalog's tracks held compactly, in columns: what ranking reads per track in dense
//! arrays of a few bytes (popularity, audio features, genre and artist as numbers, year,
//! explicit), and the words only a returned track needs (id, title, album) in a file mapped
//! into memory, so that they cost the heap nothing and the kernel keeps in memory only the
//! pages read lately. A `Track` with its own strings and URLs is made only for the tracks
//! a request returns (ARCHITECTURE.md, "Memory per track").

use super::mapped::{Mapped, as_u64s};
use crate::domain::{AudioFeatures, Track, TrackId};
use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Range;

/// A track's position in the catalog (most popular first): what indexes and models refer to.
pub type TrackIx = u32;

/// Strings laid end to end: string `i` is `text[ends[i - 1]..ends[i]]`. Reading one is a
/// slice of `text` (a boundary check, no validation).
#[derive(Default)]
struct Arena {
    text: String,
    ends: Vec<u64>,
}

impl Arena {
    fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u64);
        (self.ends.len() - 1) as u32
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn heap_bytes(&self) -> usize {
        self.text.capacity() + 8 * self.ends.capacity()
    }

    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// The tracks' words (id, title and album, three a track) in two mapped temporary files
/// (`mapped.rs`): their ends (`u64`, little-endian, one a word) and their text. Nothing of
/// them is on the heap, while the table is built either.
struct Words {
    ends: Mapped,
    text: Mapped,
    count: usize,
}

impl Words {
    fn none() -> Words {
        Words {
            ends: Mapped::empty(),
            text: Mapped::empty(),
            count: 0,
        }
    }

    fn end(&self, i: usize) -> usize {
        let b: [u8; 8] = self.ends.bytes()[8 * i..8 * i + 8]
            .try_into()
            .expect("8 bytes");
        u64::from_le_bytes(b) as usize
    }

    /// Where word `i` is in the text.
    fn span(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        start..self.end(i)
    }

    /// Word `i`'s bytes.
    fn bytes(&self, i: usize) -> &[u8] {
        assert!(i < self.count, "word {i} of {}", self.count);
        &self.text.bytes()[self.span(i)]
    }

    /// Has the kernel read words `which` ahead (`Mapped::prefetch`): their ends first, then
    /// (once those are read) their text.
    fn prefetch(&self, which: impl Iterator<Item = usize> + Clone) {
        let ends: Vec<Range<usize>> = which
            .clone()
            .filter(|&i| i < self.count)
            .map(|i| 8 * i.saturating_sub(1)..8 * (i + 1))
            .collect();
        self.ends.prefetch(&ends);
        let text: Vec<Range<usize>> = which
            .filter(|&i| i < self.count)
            .map(|i| self.span(i))
            .collect();
        self.text.prefetch(&text);
    }

    fn read_at_random(&self) {
        self.ends.read_at_random();
        self.text.read_at_random();
    }

    fn mapped_bytes(&self) -> usize {
        self.ends.bytes().len() + self.text.bytes().len()
    }

    /// Word `i`. Ranking reads a few ids per candidate, some 2,000 a request: checking each
    /// as UTF-8 again cost the mobile endpoint with its cache off about 10% of its
    /// throughput, so it is not checked.
    fn get(&self, i: usize) -> &str {
        // SAFETY: every word was written from a `&str` (`WordsWriter::push`, then copied
        // whole by `permuted`), into unnamed files that nothing else can open or write
        // (`mapped.rs`), and word boundaries are the ends written with them: the bytes are
        // the UTF-8 they were.
        unsafe { std::str::from_utf8_unchecked(self.bytes(i)) }
    }
}

/// How many of the most popular tracks `TrackTable::prefetch_ids` leaves to the page cache.
const OFTEN_READ: usize = 200_000;

/// Writes the words of a table being built, in the order pushed: their text and their
/// ends, each to a temporary file.
struct WordsWriter {
    text: std::io::BufWriter<std::fs::File>,
    ends: std::io::BufWriter<std::fs::File>,
    len: u64,
    count: usize,
    /// The first write that failed: reported when the table is finished.
    failed: Option<std::io::Error>,
}

impl WordsWriter {
    fn new() -> std::io::Result<Self> {
        Ok(WordsWriter {
            text: std::io::BufWriter::with_capacity(1 << 20, tempfile::tempfile()?),
            ends: std::io::BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            len: 0,
            count: 0,
            failed: None,
        })
    }

    fn push(&mut self, s: &str) {
        self.len += s.len() as u64;
        self.count += 1;
        if self.failed.is_none()
            && let Err(e) = self
                .text
                .write_all(s.as_bytes())
                .and_then(|()| self.ends.write_all(&self.len.to_le_bytes()))
        {
            self.failed = Some(e);
        }
    }

    /// The words pushed, mapped.
    fn finish(self) -> std::io::Result<Words> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let text = self.text.into_inner().map_err(|e| e.into_error())?;
        let ends = self.ends.into_inner().map_err(|e| e.into_error())?;
        Ok(Words {
            ends: Mapped::of(&ends)?,
            text: Mapped::of(&text)?,
            count: self.count,
        })
    }
}

/// A track's audio features in fixed point: the five from 0 to 1 in thousandths, the tempo
/// in hundredths of a BPM (up to 655.35). The values of an audio-features export, given to
/// three decimals, read back exactly as they were written; finer ones (some exports give
/// acousticness to four) are rounded to three, a change no mood range can tell.
#[derive(Clone, Copy)]
struct Features([u16; 6]);

impl Features {
    fn of(f: &AudioFeatures) -> Features {
        let unit = |v: f32| (v.clamp(0.0, 1.0) * 1000.0).round() as u16;
        Features([
            unit(f.valence),
            unit(f.energy),
            (f.tempo.clamp(0.0, 655.35) * 100.0).round() as u16,
            unit(f.danceability),
            unit(f.acousticness),
            unit(f.instrumentalness),
        ])
    }

    fn get(self) -> AudioFeatures {
        let [
            valence,
            energy,
            tempo,
            danceability,
            acousticness,
            instrumentalness,
        ] = self.0;
        let unit = |q: u16| f32::from(q) / 1000.0;
        AudioFeatures {
            valence: unit(valence),
            energy: unit(energy),
            tempo: f32::from(tempo) / 100.0,
            danceability: unit(danceability),
            acousticness: unit(acousticness),
            instrumentalness: unit(instrumentalness),
        }
    }
}

/// Names many tracks share (genres, artists), each kept once and referred to by number.
#[derive(Default)]
struct Names {
    arena: Arena,
    numbers: HashMap<Box<str>, u32>,
}

impl Names {
    fn number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = self.arena.push(name);
        self.numbers.insert(name.into(), n);
        n
    }
}

/// The tracks' columns; row `ix` is track `ix` of the catalog (most popular first).
pub struct TrackTable {
    popularity: Vec<u8>,
    explicit: Vec<bool>,
    /// 0 when the catalog gives no year.
    year: Vec<u16>,
    duration_ms: Vec<u32>,
    /// Fixed point (`Features`): 12 bytes a track instead of 24.
    features: Vec<Features>,
    genre: Vec<u16>,
    genres: Arena,
    artist: Vec<u32>,
    artists: Arena,
    /// Per track: its id, title and album, in that order (three words a track).
    words: Words,
    /// Finds a row by its track id without a map of strings.
    by_id: IdIndex,
    stream_url_template: String,
    art_url_template: Option<String>,
}

/// Builds a `TrackTable` one track at a time, then orders it most popular first.
pub struct TableBuilder {
    table: TrackTable,
    words: WordsWriter,
    genres: Names,
    artists: Names,
}

impl TableBuilder {
    /// Fails when the temporary files for the words cannot be made.
    pub fn new(stream_url_template: &str, art_url_template: Option<&str>) -> std::io::Result<Self> {
        Ok(TableBuilder {
            table: TrackTable {
                popularity: Vec::new(),
                explicit: Vec::new(),
                year: Vec::new(),
                duration_ms: Vec::new(),
                features: Vec::new(),
                genre: Vec::new(),
                genres: Arena::default(),
                artist: Vec::new(),
                artists: Arena::default(),
                words: Words::none(),
                by_id: IdIndex::none(),
                stream_url_template: stream_url_template.to_owned(),
                art_url_template: art_url_template.map(str::to_owned),
            },
            words: WordsWriter::new()?,
            genres: Names::default(),
            artists: Names::default(),
        })
    }

    /// Makes room for `tracks` more (when the source says how many it holds), so the columns
    /// never grow by copying: a copy holds the old column and the new at once, which at 10M
    /// tracks is what a catalog swap's heap would peak at. A count too large to reserve
    /// (a file that lies about it) is ignored: columns then grow as pushed.
    pub fn reserve(&mut self, tracks: usize) {
        let table = &mut self.table;
        let _ = table
            .popularity
            .try_reserve_exact(tracks)
            .and_then(|()| table.explicit.try_reserve_exact(tracks))
            .and_then(|()| table.year.try_reserve_exact(tracks))
            .and_then(|()| table.duration_ms.try_reserve_exact(tracks))
            .and_then(|()| table.features.try_reserve_exact(tracks))
            .and_then(|()| table.genre.try_reserve_exact(tracks))
            .and_then(|()| table.artist.try_reserve_exact(tracks));
    }

    pub fn push(&mut self, t: &Track) {
        let table = &mut self.table;
        table.popularity.push(t.popularity);
        table.explicit.push(t.explicit);
        table.year.push(t.year.unwrap_or(0));
        table
            .duration_ms
            .push(t.duration_ms.min(u64::from(u32::MAX)) as u32);
        table.features.push(Features::of(&t.features));
        let genre = self.genres.number(&t.genre);
        table.genre.push(u16::try_from(genre).unwrap_or(u16::MAX));
        table.artist.push(self.artists.number(&t.artist));
        self.words.push(&t.id.0);
        self.words.push(&t.title);
        self.words.push(&t.album);
    }

    /// Whether no track has been pushed.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table, most popular first (ties keep the order pushed), its id order built, and
    /// how many pushed tracks repeated an id pushed before (the first one is kept).
    /// Genres past the 65,535th share the last number: no catalog has that many. Fails
    /// when the words' temporary file cannot be written.
    pub fn finish(self) -> std::io::Result<(TrackTable, usize)> {
        let TableBuilder {
            mut table,
            words,
            genres,
            artists,
        } = self;
        // The names stay; the maps that numbered them go before the ordering's peak.
        let (genres, artists) = (genres.arena, artists.arena);
        table.words = words.finish()?;
        // A repeated id: a row whose id an earlier row has.
        let first = IdIndex::build(&table)?;
        let repeated: Vec<bool> = (0..table.len() as TrackIx)
            .map(|i| first.find(&table, table.id(i)) != Some(i))
            .collect();
        drop(first);
        let duplicates = repeated.iter().filter(|&&r| r).count();
        let rows = 0..table.len() as TrackIx;
        let mut order: Vec<TrackIx> = rows.clone().filter(|&i| !repeated[i as usize]).collect();
        // Most popular first, ties in the order pushed (without a stable sort's buffer).
        order.sort_unstable_by_key(|&i| (std::cmp::Reverse(table.popularity[i as usize]), i));
        let kept = order.len();
        // The repeats after them, so the order moves every row; the table ends at `kept`.
        order.extend(rows.filter(|&i| repeated[i as usize]));
        drop(repeated);
        let mut sorted = table.permuted(&order, kept)?;
        sorted.genres = genres;
        sorted.artists = artists;
        sorted.genres.shrink();
        sorted.artists.shrink();
        sorted.by_id = IdIndex::build(&sorted)?;
        Ok((sorted, duplicates))
    }
}

impl TrackTable {
    /// The first `kept` rows of `order` (every row once), the columns reordered in place
    /// (`permute_in_place`), so the table is never held twice, not even one column of it;
    /// the words go to new files (ends, then text) and the old ones are dropped.
    fn permuted(mut self, order: &[TrackIx], kept: usize) -> std::io::Result<TrackTable> {
        fn take<T: Copy>(column: &mut Vec<T>, kept: usize) -> Vec<T> {
            column.truncate(kept);
            column.shrink_to_fit();
            std::mem::take(column)
        }
        let order_all = order;
        let order = &order_all[..kept];
        let words_of = |i: TrackIx| (0..3).map(move |field| 3 * i as usize + field);
        let ends = Mapped::write(|out| {
            let mut end = 0u64;
            for w in order.iter().flat_map(|&i| words_of(i)) {
                end += self.words.bytes(w).len() as u64;
                out.write_all(&end.to_le_bytes())?;
            }
            Ok(())
        })?;
        let text = Mapped::write(|out| {
            for w in order.iter().flat_map(|&i| words_of(i)) {
                out.write_all(self.words.bytes(w))?;
            }
            Ok(())
        })?;
        let words = Words {
            ends,
            text,
            count: 3 * order.len(),
        };
        permute_in_place(
            &mut Columns {
                popularity: &mut self.popularity,
                explicit: &mut self.explicit,
                year: &mut self.year,
                duration_ms: &mut self.duration_ms,
                features: &mut self.features,
                genre: &mut self.genre,
                artist: &mut self.artist,
            },
            order_all,
        );
        Ok(TrackTable {
            popularity: take(&mut self.popularity, kept),
            explicit: take(&mut self.explicit, kept),
            year: take(&mut self.year, kept),
            duration_ms: take(&mut self.duration_ms, kept),
            features: take(&mut self.features, kept),
            genre: take(&mut self.genre, kept),
            artist: take(&mut self.artist, kept),
            words,
            genres: Arena::default(),
            artists: Arena::default(),
            by_id: IdIndex::none(),
            stream_url_template: self.stream_url_template,
            art_url_template: self.art_url_template,
        })
    }

    pub fn len(&self) -> usize {
        self.popularity.len()
    }

    pub fn is_empty(&self) -> bool {
        self.popularity.is_empty()
    }

    /// Track `ix`, read in place.
    pub fn at(&self, ix: TrackIx) -> TrackRef<'_> {
        assert!((ix as usize) < self.len(), "track {ix} of {}", self.len());
        TrackRef { table: self, ix }
    }

    fn id(&self, ix: TrackIx) -> &str {
        self.words.get(3 * ix as usize)
    }

    /// Track `ix`'s id as bytes (what the id index compares: no UTF-8 check).
    fn id_bytes(&self, ix: TrackIx) -> &[u8] {
        self.words.bytes(3 * ix as usize)
    }

    /// Has the kernel read the ids of `tracks` ahead, for a caller about to read them all
    /// (ranking's candidates): of a catalog larger than memory, most are on disk. The
    /// `OFTEN_READ` most popular tracks are left out: most requests read some of them, so
    /// their pages stay resident, and a request of popular tracks alone (a mood, a genre)
    /// then costs no system call.
    pub fn prefetch_ids(&self, tracks: &[TrackIx]) {
        self.words.prefetch(
            tracks
                .iter()
                .filter(|&&ix| ix as usize >= OFTEN_READ)
                .map(|&ix| 3 * ix as usize),
        );
    }

    /// From now on the words and the id index are read at random, a few bytes at a time
    /// (`Mapped::read_at_random`): for a server, once the catalog and its models are loaded.
    pub fn read_at_random(&self) {
        self.words.read_at_random();
        self.by_id.slots.read_at_random();
    }

    /// The row of the track with this id.
    pub fn find(&self, id: &str) -> Option<TrackIx> {
        self.by_id.find(self, id)
    }

    /// A hash of every track's id, title, album and artist in order: what a search index
    /// saved for this catalog is marked with (`SearchIndex::open`).
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for ix in 0..self.len() as TrackIx {
            let t = self.at(ix);
            for word in [t.id(), t.title(), t.album(), t.artist()] {
                h.update(word.as_bytes());
                h.update(&[0xff]);
            }
        }
        h.digest()
    }

    /// How many artist numbers there are (every artist pushed, a dropped repeat's too).
    pub fn artist_count(&self) -> usize {
        self.artists.len()
    }

    /// The name of artist number `n`.
    pub fn artist_name(&self, n: u32) -> &str {
        self.artists.get(n as usize)
    }

    /// Bytes the table holds, for the benchmarks.
    pub fn heap_bytes(&self) -> usize {
        self.popularity.capacity()
            + self.explicit.capacity()
            + 2 * self.year.capacity()
            + 4 * self.duration_ms.capacity()
            + std::mem::size_of::<Features>() * self.features.capacity()
            + 2 * self.genre.capacity()
            + 4 * self.artist.capacity()
            + self.genres.heap_bytes()
            + self.artists.heap_bytes()
    }

    /// Bytes of the words' mapped file, for the benchmarks: resident only as far as they
    /// are read, and the kernel's to drop.
    pub fn mapped_bytes(&self) -> usize {
        self.words.mapped_bytes() + self.by_id.slots.bytes().len()
    }
}

/// Track ids to rows: an open-addressing table of 8-byte slots (32 bits of the id's hash
/// and the row), about 1.25 slots a track, so a lookup touches one or two slots and one id.
/// A sorted array of rows would take 4 bytes a track but about 20 cache misses a lookup,
/// and ranking looks up a listener's few hundred tracks per request. Built on the heap,
/// then kept in a mapped temporary file (`mapped.rs`).
struct IdIndex {
    slots: Mapped,
}

const EMPTY: u64 = u64::MAX;

impl IdIndex {
    fn none() -> IdIndex {
        IdIndex {
            slots: Mapped::empty(),
        }
    }

    /// The index over the rows of `table`; of rows with one id, the first. Built in place
    /// in its file (`Mapped::fill`): 10 bytes a track that are never on the heap.
    fn build(table: &TrackTable) -> std::io::Result<IdIndex> {
        let n = table.len();
        // At least one slot stays empty, so a probe for an id not there always ends.
        let count = n + n / 4 + 1;
        let slots = Mapped::fill(8 * count, |bytes| {
            fill_slots(table, bytemuck::cast_slice_mut(bytes))
        })?;
        Ok(IdIndex { slots })
    }

    fn find(&self, table: &TrackTable, id: &str) -> Option<TrackIx> {
        let slots = as_u64s(self.slots.bytes());
        if slots.is_empty() {
            return None;
        }
        let (hash, mut slot) = start(id.as_bytes(), slots.len());
        loop {
            match slots[slot] {
                EMPTY => return None,
                taken if taken >> 32 == hash && table.id_bytes(taken as u32) == id.as_bytes() => {
                    return Some(taken as u32);
                }
                _ => slot = (slot + 1) % slots.len(),
            }
        }
    }
}

/// Rows that can be read and written one at a time.
trait Rows {
    type Row: Copy;
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Self::Row;
    fn set(&mut self, i: usize, row: Self::Row);
}

/// A column alone, for the test of `permute_in_place`.
#[cfg(test)]
impl<T: Copy> Rows for Vec<T> {
    type Row = T;
    fn len(&self) -> usize {
        self.len()
    }
    fn get(&self, i: usize) -> T {
        self[i]
    }
    fn set(&mut self, i: usize, row: T) {
        self[i] = row;
    }
}

/// A table's columns, reordered together.
struct Columns<'a> {
    popularity: &'a mut Vec<u8>,
    explicit: &'a mut Vec<bool>,
    year: &'a mut Vec<u16>,
    duration_ms: &'a mut Vec<u32>,
    features: &'a mut Vec<Features>,
    genre: &'a mut Vec<u16>,
    artist: &'a mut Vec<u32>,
}

impl Rows for Columns<'_> {
    type Row = (u8, bool, u16, u32, Features, u16, u32);
    fn len(&self) -> usize {
        self.popularity.len()
    }
    fn get(&self, i: usize) -> Self::Row {
        (
            self.popularity[i],
            self.explicit[i],
            self.year[i],
            self.duration_ms[i],
            self.features[i],
            self.genre[i],
            self.artist[i],
        )
    }
    fn set(&mut self, i: usize, row: Self::Row) {
        self.popularity[i] = row.0;
        self.explicit[i] = row.1;
        self.year[i] = row.2;
        self.duration_ms[i] = row.3;
        self.features[i] = row.4;
        self.genre[i] = row.5;
        self.artist[i] = row.6;
    }
}

/// Reorders `rows` in place so that row `k` holds what row `order[k]` held (`order` a
/// permutation of the rows): each cycle of the permutation is followed once, with a bit
/// per row for the rows done (100M rows: 12.5 MB) instead of a second copy of a column
/// (up to 1.2 GB), all columns in one walk.
fn permute_in_place(rows: &mut impl Rows, order: &[TrackIx]) {
    assert_eq!(rows.len(), order.len(), "a permutation of every row");
    let mut done = vec![0u64; rows.len().div_ceil(64)];
    for start in 0..rows.len() {
        if done[start / 64] >> (start % 64) & 1 == 1 {
            continue;
        }
        let held = rows.get(start);
        let mut at = start;
        loop {
            done[at / 64] |= 1 << (at % 64);
            let from = order[at] as usize;
            if from == start {
                rows.set(at, held);
                break;
            }
            rows.set(at, rows.get(from));
            at = from;
        }
    }
}

/// Puts each row of `table` in `slots` (open addressing, linear probing): its id's hash
/// above its row, at the first empty slot from its start; a repeated id keeps the first.
fn fill_slots(table: &TrackTable, slots: &mut [u64]) {
    slots.fill(EMPTY);
    for ix in 0..table.len() as TrackIx {
        let (hash, mut slot) = start(table.id_bytes(ix), slots.len());
        loop {
            match slots[slot] {
                EMPTY => {
                    slots[slot] = hash << 32 | u64::from(ix);
                    break;
                }
                taken
                    if taken >> 32 == hash
                        && table.id_bytes(taken as u32) == table.id_bytes(ix) =>
                {
                    break;
                }
                _ => slot = (slot + 1) % slots.len(),
            }
        }
    }
}

/// An id's 32-bit hash and its first slot of `slots`.
fn start(id: &[u8], slots: usize) -> (u64, usize) {
    let h = xxhash_rust::xxh3::xxh3_64(id);
    let slot = ((h as u128 * slots as u128) >> 64) as usize;
    (h >> 32, slot)
}

/// One track of a `TrackTable`, read in place: what ranking reads costs no allocation.
#[derive(Clone, Copy)]
pub struct TrackRef<'a> {
    table: &'a TrackTable,
    ix: TrackIx,
}

impl<'a> TrackRef<'a> {
    pub fn ix(&self) -> TrackIx {
        self.ix
    }

    pub fn id(&self) -> &'a str {
        self.table.id(self.ix)
    }

    pub fn title(&self) -> &'a str {
        self.table.words.get(3 * self.ix as usize + 1)
    }

    pub fn album(&self) -> &'a str {
        self.table.words.get(3 * self.ix as usize + 2)
    }

    pub fn genre(&self) -> &'a str {
        self.table
            .genres
            .get(self.table.genre[self.ix as usize] as usize)
    }

    /// The genre's number: equal numbers are equal genres.
    pub fn genre_number(&self) -> u16 {
        self.table.genre[self.ix as usize]
    }

    pub fn artist(&self) -> &'a str {
        self.table
            .artists
            .get(self.table.artist[self.ix as usize] as usize)
    }

    /// The artist's number: equal numbers are equal artists.
    pub fn artist_number(&self) -> u32 {
        self.table.artist[self.ix as usize]
    }

    pub fn popularity(&self) -> u8 {
        self.table.popularity[self.ix as usize]
    }

    pub fn explicit(&self) -> bool {
        self.table.explicit[self.ix as usize]
    }

    pub fn year(&self) -> Option<u16> {
        Some(self.table.year[self.ix as usize]).filter(|&y| y != 0)
    }

    pub fn features(&self) -> AudioFeatures {
        self.table.features[self.ix as usize].get()
    }

    /// The whole track with its own strings and URLs: for the tracks a request returns.
    pub fn to_track(&self) -> Track {
        let id = self.id();
        let url = |template: &str| template.replace("{track_id}", id);
        Track {
            id: TrackId(id.to_owned()),
            title: self.title().to_owned(),
            artist: self.artist().to_owned(),
            album: self.album().to_owned(),
            genre: self.genre().to_owned(),
            duration_ms: u64::from(self.table.duration_ms[self.ix as usize]),
            popularity: self.popularity(),
            explicit: self.explicit(),
            features: self.features(),
            stream_url: url(&self.table.stream_url_template),
            art_url: self.table.art_url_template.as_deref().map(url),
            year: self.year(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, artist: &str, genre: &str, popularity: u8) -> Track {
        let mut t = Track::sample(id, artist, genre);
        t.popularity = popularity;
        t.album = format!("{id} album");
        t.year = popularity.is_multiple_of(2).then_some(1984);
        t
    }

    #[test]
    fn audio_features_read_back_as_an_export_gives_them() {
        let given = AudioFeatures {
            valence: 0.521,
            energy: 1.0,
            tempo: 118.21,
            danceability: 0.0,
            acousticness: 0.0322,
            instrumentalness: 0.000_001,
        };
        let read = Features::of(&given).get();
        assert_eq!(
            (read.valence, read.energy, read.tempo),
            (0.521, 1.0, 118.21)
        );
        assert_eq!(read.danceability, 0.0);
        // Finer than thousandths: the nearest thousandth.
        assert_eq!((read.acousticness, read.instrumentalness), (0.032, 0.0));
        let fast = AudioFeatures {
            tempo: 900.0,
            ..given
        };
        assert_eq!(Features::of(&fast).get().tempo, 655.35);
    }

    #[test]
    fn a_column_reordered_in_place_is_the_column_gathered_in_that_order() {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for n in [0usize, 1, 2, 63, 64, 65, 1000] {
            let column: Vec<u32> = (0..n as u32).map(|i| i * 7 + 1).collect();
            let mut order: Vec<TrackIx> = (0..n as TrackIx).collect();
            order.shuffle(&mut rng);
            let gathered: Vec<u32> = order.iter().map(|&i| column[i as usize]).collect();
            let mut in_place = column.clone();
            permute_in_place(&mut in_place, &order);
            assert_eq!(in_place, gathered, "{n} rows");
        }
    }

    #[test]
    fn a_table_gives_back_every_track_as_it_was_pushed_most_popular_first() {
        let tracks = vec![
            track("b", "Ann", "jazz", 10),
            track("a", "Bob", "rock", 90),
            track("c", "Ann", "jazz", 50),
            track("d", "Émile", "pop", 50),
        ];
        let mut b =
            TableBuilder::new("https://s/{track_id}.mp3", Some("https://a/{track_id}")).unwrap();
        for t in &tracks {
            b.push(t);
        }
        // A repeated id keeps the first row pushed.
        b.push(&track("c", "Zed", "metal", 99));
        let (table, duplicates) = b.finish().unwrap();
        assert_eq!(duplicates, 1);
        assert_eq!(table.len(), 4);
        let order: Vec<&str> = (0..4).map(|i| table.at(i).id()).collect();
        assert_eq!(order, ["a", "c", "d", "b"], "popular first, ties as pushed");
        for t in &tracks {
            let ix = table.find(&t.id.0).unwrap();
            let mut expected = t.clone();
            expected.stream_url = format!("https://s/{}.mp3", t.id.0);
            expected.art_url = Some(format!("https://a/{}", t.id.0));
            assert_eq!(table.at(ix).to_track(), expected);
        }
        assert_eq!(table.find("zz"), None);
        // A table of one to three tracks has room for every id and one empty slot: a
        // lookup of an id not there ends.
        for n in 1..4 {
            let mut b = TableBuilder::new("https://s/{track_id}", None).unwrap();
            for t in tracks.iter().take(n) {
                b.push(t);
            }
            let (small, _) = b.finish().unwrap();
            assert_eq!(small.find("zz"), None, "{n} tracks");
            assert!(small.find(&tracks[0].id.0).is_some());
        }
        assert_eq!(table.find(""), None);
        let (c, b) = (table.at(1), table.at(3));
        assert_eq!(c.artist_number(), b.artist_number(), "one Ann");
        assert_eq!(c.genre_number(), b.genre_number(), "one jazz");
        assert_ne!(c.artist_number(), table.at(0).artist_number());
        assert_eq!(
            table.artist_count(),
            4,
            "Ann, Bob, Émile and the repeat's Zed"
        );
        assert_eq!(table.at(2).artist(), "Émile");
    }
}
