//! A listener's saved playlist.

use super::{Selection, TrackId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playlist {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// What the playlist was built from, if it was built from a request.
    pub selection: Option<Selection>,
    pub tracks: Vec<TrackId>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}
