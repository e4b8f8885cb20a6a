//! The catalog's tracks held compactly, in columns: what ranking reads per track in dense
//! arrays of a few bytes (popularity, audio features, genre and artist as numbers, year,
//! explicit), and the words only a returned track needs (id, title, album) in one byte
//! arena. A `Track` with its own strings and URLs is made only for the tracks a request
//! returns. One track costs about 40 bytes of columns plus its words, against about 780
//! bytes as one `Arc<Track>` each (ARCHITECTURE.md, "Memory per track").

use crate::domain::{AudioFeatures, Track, TrackId};
use std::collections::HashMap;

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
    features: Vec<AudioFeatures>,
    genre: Vec<u16>,
    genres: Arena,
    artist: Vec<u32>,
    artists: Arena,
    /// Per track: its id, title and album, in that order (three strings a track).
    words: Arena,
    /// Finds a row by its track id without a map of strings.
    by_id: IdIndex,
    stream_url_template: String,
    art_url_template: Option<String>,
}

/// Builds a `TrackTable` one track at a time, then orders it most popular first.
pub struct TableBuilder {
    table: TrackTable,
    genres: Names,
    artists: Names,
}

impl TableBuilder {
    pub fn new(stream_url_template: &str, art_url_template: Option<&str>) -> Self {
        TableBuilder {
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
                words: Arena::default(),
                by_id: IdIndex::default(),
                stream_url_template: stream_url_template.to_owned(),
                art_url_template: art_url_template.map(str::to_owned),
            },
            genres: Names::default(),
            artists: Names::default(),
        }
    }

    pub fn push(&mut self, t: &Track) {
        let table = &mut self.table;
        table.popularity.push(t.popularity);
        table.explicit.push(t.explicit);
        table.year.push(t.year.unwrap_or(0));
        table
            .duration_ms
            .push(t.duration_ms.min(u64::from(u32::MAX)) as u32);
        table.features.push(t.features);
        let genre = self.genres.number(&t.genre);
        table.genre.push(u16::try_from(genre).unwrap_or(u16::MAX));
        table.artist.push(self.artists.number(&t.artist));
        table.words.push(&t.id.0);
        table.words.push(&t.title);
        table.words.push(&t.album);
    }

    /// Whether no track has been pushed.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table, most popular first (ties keep the order pushed), its id order built, and
    /// how many pushed tracks repeated an id pushed before (the first one is kept).
    /// Genres past the 65,535th share the last number: no catalog has that many.
    pub fn finish(self) -> (TrackTable, usize) {
        let TableBuilder {
            table,
            genres,
            artists,
        } = self;
        // A repeated id: a row whose id an earlier row has.
        let first = IdIndex::build(&table);
        let repeated: Vec<bool> = (0..table.len() as TrackIx)
            .map(|i| first.find(&table, table.id(i)) != Some(i))
            .collect();
        drop(first);
        let duplicates = repeated.iter().filter(|&&r| r).count();
        let mut order: Vec<TrackIx> = (0..table.len() as TrackIx)
            .filter(|&i| !repeated[i as usize])
            .collect();
        drop(repeated);
        order.sort_by_key(|&i| std::cmp::Reverse(table.popularity[i as usize]));
        let mut sorted = table.permuted(&order);
        sorted.genres = genres.arena;
        sorted.artists = artists.arena;
        sorted.genres.shrink();
        sorted.artists.shrink();
        sorted.by_id = IdIndex::build(&sorted);
        (sorted, duplicates)
    }
}

impl TrackTable {
    /// The rows in `order` (each row once), one column at a time, so the peak is the table
    /// plus one column.
    fn permuted(mut self, order: &[TrackIx]) -> TrackTable {
        fn take<T: Copy>(column: &mut Vec<T>, order: &[TrackIx]) -> Vec<T> {
            let out: Vec<T> = order.iter().map(|&i| column[i as usize]).collect();
            *column = Vec::new();
            out
        }
        let mut words = Arena::default();
        words.text.reserve_exact(self.words.text.len());
        words.ends.reserve_exact(self.words.ends.len());
        for &i in order {
            for field in 0..3 {
                words.push(self.words.get(3 * i as usize + field));
            }
        }
        TrackTable {
            popularity: take(&mut self.popularity, order),
            explicit: take(&mut self.explicit, order),
            year: take(&mut self.year, order),
            duration_ms: take(&mut self.duration_ms, order),
            features: take(&mut self.features, order),
            genre: take(&mut self.genre, order),
            artist: take(&mut self.artist, order),
            words,
            genres: Arena::default(),
            artists: Arena::default(),
            by_id: IdIndex::default(),
            stream_url_template: self.stream_url_template,
            art_url_template: self.art_url_template,
        }
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

    /// The row of the track with this id.
    pub fn find(&self, id: &str) -> Option<TrackIx> {
        self.by_id.find(self, id)
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
            + std::mem::size_of::<AudioFeatures>() * self.features.capacity()
            + 2 * self.genre.capacity()
            + 4 * self.artist.capacity()
            + self.by_id.heap_bytes()
            + self.genres.heap_bytes()
            + self.artists.heap_bytes()
            + self.words.heap_bytes()
    }
}

/// Track ids to rows: an open-addressing table of 8-byte slots (32 bits of the id's hash
/// and the row), about 1.25 slots a track, so a lookup touches one or two slots and one id.
/// A sorted array of rows would take 4 bytes a track but about 20 cache misses a lookup,
/// and ranking looks up a listener's few hundred tracks per request.
#[derive(Default)]
struct IdIndex {
    slots: Vec<u64>,
}

const EMPTY: u64 = u64::MAX;

impl IdIndex {
    /// The index over the rows of `table`; of rows with one id, the first.
    fn build(table: &TrackTable) -> IdIndex {
        let n = table.len();
        // At least one slot stays empty, so a probe for an id not there always ends.
        let mut index = IdIndex {
            slots: vec![EMPTY; n + n / 4 + 1],
        };
        for ix in 0..n as TrackIx {
            let (hash, mut slot) = index.start(table.id(ix));
            loop {
                match index.slots[slot] {
                    EMPTY => {
                        index.slots[slot] = hash << 32 | u64::from(ix);
                        break;
                    }
                    taken if taken >> 32 == hash && table.id(taken as u32) == table.id(ix) => {
                        break;
                    }
                    _ => slot = (slot + 1) % index.slots.len(),
                }
            }
        }
        index
    }

    /// The id's 32-bit hash and its first slot.
    fn start(&self, id: &str) -> (u64, usize) {
        let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
        let slot = ((h as u128 * self.slots.len() as u128) >> 64) as usize;
        (h >> 32, slot)
    }

    fn find(&self, table: &TrackTable, id: &str) -> Option<TrackIx> {
        if self.slots.is_empty() {
            return None;
        }
        let (hash, mut slot) = self.start(id);
        loop {
            match self.slots[slot] {
                EMPTY => return None,
                taken if taken >> 32 == hash && table.id(taken as u32) == id => {
                    return Some(taken as u32);
                }
                _ => slot = (slot + 1) % self.slots.len(),
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        8 * self.slots.capacity()
    }
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

    pub fn features(&self) -> &'a AudioFeatures {
        &self.table.features[self.ix as usize]
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
            features: *self.features(),
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
    fn a_table_gives_back_every_track_as_it_was_pushed_most_popular_first() {
        let tracks = vec![
            track("b", "Ann", "jazz", 10),
            track("a", "Bob", "rock", 90),
            track("c", "Ann", "jazz", 50),
            track("d", "Émile", "pop", 50),
        ];
        let mut b = TableBuilder::new("https://s/{track_id}.mp3", Some("https://a/{track_id}"));
        for t in &tracks {
            b.push(t);
        }
        // A repeated id keeps the first row pushed.
        b.push(&track("c", "Zed", "metal", 99));
        let (table, duplicates) = b.finish();
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
            let mut b = TableBuilder::new("https://s/{track_id}", None);
            for t in tracks.iter().take(n) {
                b.push(t);
            }
            let (small, _) = b.finish();
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
