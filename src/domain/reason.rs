//! Why a track was recommended: the strongest term of its score, kept with the queue so
//! "why did you play this?" is answered from the recommendation's own record.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The strongest reason a track was picked for a listener's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nothing personal stood out: it is among the most popular tracks that fit the request.
    Popular,
    /// The listener's affinity for the track's artist (their likes and finished plays).
    Artist,
    /// The listener's affinity for the track's genre (their likes and finished plays).
    Genre,
    /// A genre the listener said in the app they prefer.
    PreferredGenre,
    /// Its sound is close to the audio features of what the listener finishes.
    Sound,
    /// The listener finished this very track before for the same kind of request.
    FinishedBefore,
    /// The served model ranked it high for the listener (its embeddings, its precomputed
    /// list, or a remote model endpoint).
    Model,
    /// A track being tried: the bandit's exploration slot, to learn the listener's taste.
    Exploring,
    /// For "more like this": it is among the tracks nearest the seed.
    Similar,
    /// The listener asked for it by name (a song, or a track of an album).
    Requested,
    /// Not recorded (a queue stored before reasons were kept).
    Unrecorded,
}

impl Reason {
    /// One letter per reason, so a queue's reasons cost a byte a track when stored.
    fn code(self) -> char {
        match self {
            Reason::Popular => 'p',
            Reason::Artist => 'a',
            Reason::Genre => 'g',
            Reason::PreferredGenre => 'f',
            Reason::Sound => 's',
            Reason::FinishedBefore => 'b',
            Reason::Model => 'm',
            Reason::Exploring => 'x',
            Reason::Similar => 'l',
            Reason::Requested => 'q',
            Reason::Unrecorded => '-',
        }
    }

    fn from_code(c: char) -> Reason {
        match c {
            'p' => Reason::Popular,
            'a' => Reason::Artist,
            'g' => Reason::Genre,
            'f' => Reason::PreferredGenre,
            's' => Reason::Sound,
            'b' => Reason::FinishedBefore,
            'm' => Reason::Model,
            'x' => Reason::Exploring,
            'l' => Reason::Similar,
            'q' => Reason::Requested,
            // A letter a later version wrote: not known here, not an error.
            _ => Reason::Unrecorded,
        }
    }
}

/// A list of reasons, stored as one letter each (`"pgas"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasons(pub Vec<Reason>);

impl Reasons {
    /// The reason at `index`, `Unrecorded` past the end.
    pub fn get(&self, index: usize) -> Reason {
        self.0.get(index).copied().unwrap_or(Reason::Unrecorded)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Serialize for Reasons {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let codes: String = self.0.iter().map(|r| r.code()).collect();
        s.serialize_str(&codes)
    }
}

impl<'de> Deserialize<'de> for Reasons {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let codes = String::deserialize(d)?;
        Ok(Reasons(codes.chars().map(Reason::from_code).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_as_one_letter_each_and_unknown_letters_are_unrecorded() {
        let all = Reasons(vec![
            Reason::Popular,
            Reason::Artist,
            Reason::Genre,
            Reason::PreferredGenre,
            Reason::Sound,
            Reason::FinishedBefore,
            Reason::Model,
            Reason::Exploring,
            Reason::Similar,
            Reason::Unrecorded,
        ]);
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(json, r#""pagfsbmxl-""#);
        assert_eq!(serde_json::from_str::<Reasons>(&json).unwrap(), all);
        let later: Reasons = serde_json::from_str(r#""pZ""#).unwrap();
        assert_eq!(later.0, [Reason::Popular, Reason::Unrecorded]);
        assert_eq!(later.get(7), Reason::Unrecorded);
    }
}
