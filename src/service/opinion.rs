//! Likes and dislikes of the current track: the profile, the event, and a disliked track
//! skipped at once.

use super::ctx::Ctx;
use super::{Outcome, Reply};
use crate::feedback::EventKind;

impl Ctx<'_> {
    pub(super) async fn opinion(&self, like: bool) -> Outcome {
        let (mut queue, pos) = match self.current().await {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::ask(Reply::NothingPlaying),
            Err(_) => return Outcome::end(Some(Reply::Trouble)),
        };
        let Some(track) = self.track(&queue, pos) else {
            return Outcome::ask(Reply::NothingPlaying);
        };
        let id = track.id.clone();
        let stored = self
            .update_profile(|p| if like { p.like(&id) } else { p.dislike(&id) })
            .await;
        if let Err(e) = stored {
            tracing::error!(user_id = %self.listener.user_id, error = %crate::error::Chain(&e), "opinion not saved");
            return Outcome::end(Some(Reply::Trouble));
        }
        let kind = if like {
            EventKind::Liked
        } else {
            EventKind::Disliked
        };
        self.emit(Some(&queue), &id, kind, self.player.offset_ms)
            .await;
        super::session::note(&mut queue, &id, kind);
        // Lists ranked before the opinion are stale now.
        self.service
            .recommender
            .forget(&self.listener.user_id)
            .await;
        if like {
            self.save_queue(&queue).await;
            return Outcome::end(Some(Reply::Liked(track)));
        }
        // A disliked track stops at once: the next one starts.
        let mut outcome = self.advance(&mut queue, pos).await;
        outcome.reply = Some(Reply::Disliked(track));
        outcome
    }
}
