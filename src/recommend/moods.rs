//! The audio-feature target of each mood. A track fits a mood when every feature the mood
//! constrains lies in its range; when too few do, the nearest tracks fill in.

use crate::domain::{AudioFeatures, Mood};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureRange {
    pub lo: f32,
    pub hi: f32,
}

const fn r(lo: f32, hi: f32) -> Option<FeatureRange> {
    Some(FeatureRange { lo, hi })
}

/// Ranges on Spotify's scales (tempo in BPM); `None` leaves a feature free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoodTarget {
    pub valence: Option<FeatureRange>,
    pub energy: Option<FeatureRange>,
    pub tempo: Option<FeatureRange>,
    pub danceability: Option<FeatureRange>,
    pub acousticness: Option<FeatureRange>,
    pub instrumentalness: Option<FeatureRange>,
}

const FREE: MoodTarget = MoodTarget {
    valence: None,
    energy: None,
    tempo: None,
    danceability: None,
    acousticness: None,
    instrumentalness: None,
};

#[rustfmt::skip]
pub fn mood_target(mood: Mood) -> MoodTarget {
    match mood {
        Mood::Relaxing => MoodTarget { valence: r(0.25, 0.75), energy: r(0.0, 0.4), tempo: r(60.0, 110.0), acousticness: r(0.4, 1.0), ..FREE },
        Mood::Energetic => MoodTarget { valence: r(0.4, 1.0), energy: r(0.75, 1.0), tempo: r(118.0, 180.0), ..FREE },
        Mood::Happy => MoodTarget { valence: r(0.65, 1.0), energy: r(0.5, 0.9), danceability: r(0.5, 1.0), ..FREE },
        Mood::Sad => MoodTarget { valence: r(0.0, 0.35), energy: r(0.0, 0.5), ..FREE },
        Mood::Focus => MoodTarget { energy: r(0.15, 0.6), instrumentalness: r(0.5, 1.0), ..FREE },
        Mood::Party => MoodTarget { valence: r(0.5, 1.0), energy: r(0.7, 1.0), danceability: r(0.7, 1.0), ..FREE },
        Mood::Sleep => MoodTarget { energy: r(0.0, 0.25), tempo: r(40.0, 95.0), acousticness: r(0.6, 1.0), instrumentalness: r(0.4, 1.0), ..FREE },
        Mood::Workout => MoodTarget { energy: r(0.7, 1.0), tempo: r(122.0, 180.0), danceability: r(0.5, 1.0), ..FREE },
    }
}

impl MoodTarget {
    /// 0 inside every range; otherwise how far outside, each feature scaled to 0..1.
    pub fn distance(&self, f: &AudioFeatures) -> f32 {
        let gap = |range: Option<FeatureRange>, value: f32, scale: f32| match range {
            Some(r) if value < r.lo => ((r.lo - value) / scale).powi(2),
            Some(r) if value > r.hi => ((value - r.hi) / scale).powi(2),
            _ => 0.0,
        };
        gap(self.valence, f.valence, 1.0)
            + gap(self.energy, f.energy, 1.0)
            + gap(self.tempo, f.tempo, 150.0)
            + gap(self.danceability, f.danceability, 1.0)
            + gap(self.acousticness, f.acousticness, 1.0)
            + gap(self.instrumentalness, f.instrumentalness, 1.0)
    }
}
