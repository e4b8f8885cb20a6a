//! The listener's own music by voice: a playlist they saved in the app (matched loosely on
//! their own playlists' names, never another listener's) and their favourites (the tracks
//! they liked, shuffled). Either plays first, and more like its first track follows.

use super::ctx::Ctx;
use super::{Outcome, QUEUE_LENGTH, Reply};
use crate::domain::{Playlist, Track};
use crate::recommend::normalize;
use rand::seq::SliceRandom;
use std::sync::Arc;

/// The least Jaro-Winkler similarity at which a spoken name is taken to mean a playlist.
const PLAYLIST_MATCH: f64 = 0.85;

impl Ctx<'_> {
    pub(super) async fn play_playlist(&self, name: String) -> Outcome {
        let playlists = self
            .within(
                "playlists_read",
                self.store().playlists(&self.listener.user_id),
            )
            .await;
        let Ok(playlists) = playlists else {
            return Outcome::end(Some(Reply::Trouble));
        };
        // A playlist whose tracks have all left the catalog is as good as none.
        let found = best_named(&playlists, &name)
            .map(|p| (p, self.tracks_of(&p.tracks)))
            .filter(|(_, lead)| !lead.is_empty());
        let Some((playlist, lead)) = found else {
            return Outcome::ask(Reply::NoPlaylist {
                name,
                saved: playlists.len(),
            });
        };
        let reply = Reply::PlayingPlaylist {
            name: playlist.name.clone(),
            track: lead[0].clone(),
        };
        let replaced = self.replaced().await;
        self.play_lead(lead, replaced, reply).await
    }

    pub(super) async fn play_favourites(&self) -> Outcome {
        let liked = self.profile().await.map(|p| p.liked).unwrap_or_default();
        let mut lead = self.tracks_of(&liked);
        if lead.is_empty() {
            return Outcome::ask(Reply::NoFavourites);
        }
        lead.shuffle(&mut rand::rng());
        lead.truncate(QUEUE_LENGTH);
        let reply = Reply::PlayingFavourites(lead[0].clone());
        let replaced = self.replaced().await;
        self.play_lead(lead, replaced, reply).await
    }

    /// The catalog's tracks of `ids`, in order (those no longer in the catalog left out).
    fn tracks_of(&self, ids: &[crate::domain::TrackId]) -> Vec<Arc<Track>> {
        ids.iter()
            .filter_map(|id| self.service.recommender.track(id))
            .collect()
    }
}

/// The playlist of `playlists` named `name`: the same name after folding case and
/// punctuation, else one whose name contains it, else the most similar name by
/// Jaro-Winkler, if similar enough.
fn best_named<'a>(playlists: &'a [Playlist], name: &str) -> Option<&'a Playlist> {
    let wanted = normalize(name);
    if wanted.is_empty() {
        return None;
    }
    let score = |p: &Playlist| {
        let have = normalize(&p.name);
        match (have == wanted, have.contains(&wanted)) {
            (true, _) => 2.0,
            (false, true) => 1.5,
            _ => strsim::jaro_winkler(&wanted, &have),
        }
    };
    playlists
        .iter()
        .map(|p| (score(p), p))
        .filter(|(s, _)| *s >= PLAYLIST_MATCH)
        .max_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(b.1.created_at.cmp(&a.1.created_at))
        })
        .map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist(name: &str, created_at: i64) -> Playlist {
        Playlist {
            id: name.into(),
            user_id: "u".into(),
            name: name.into(),
            selection: None,
            tracks: Vec::new(),
            created_at,
        }
    }

    #[test]
    fn a_playlist_is_found_by_its_name_said_loosely() {
        let lists = [
            playlist("Road Trip 2026", 1),
            playlist("Sunday Morning", 2),
            playlist("Workout!", 3),
        ];
        let found = |said| best_named(&lists, said).map(|p| p.name.as_str());
        assert_eq!(found("workout"), Some("Workout!"));
        assert_eq!(found("road trip"), Some("Road Trip 2026"));
        assert_eq!(found("sunday mornings"), Some("Sunday Morning"));
        assert_eq!(found("dinner party"), None);
        assert_eq!(found(""), None);
    }
}
