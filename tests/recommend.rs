//! The first recommender over the demo catalog: results fit the mood, the genre or the
//! artist asked for, popular first, and respect the listener's filters.

mod common;

use encore::domain::{Mood, Profile, Selection, Track};
use encore::recommend::{
    Catalog, CatalogRecommender, RecommendError, RecommendRequest, Recommender, mood_target,
};
use std::sync::Arc;

fn recommender() -> CatalogRecommender {
    CatalogRecommender::new(Arc::new(
        Catalog::load(&common::repo().join("models")).unwrap(),
    ))
}

async fn pick(
    r: &CatalogRecommender,
    selection: Selection,
    profile: Option<&Profile>,
) -> Vec<Arc<Track>> {
    r.recommend(RecommendRequest {
        selection: &selection,
        profile,
        exclude: &[],
        limit: 25,
    })
    .await
    .unwrap()
    .tracks
}

#[test]
fn the_demo_catalog_has_a_few_thousand_tracks_with_https_streams() {
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    assert!(catalog.len() >= 2000, "{}", catalog.len());
    assert!(catalog.artists().len() >= 200);
}

#[tokio::test]
async fn every_mood_gets_tracks_inside_its_audio_feature_target() {
    let r = recommender();
    for mood in Mood::ALL {
        let tracks = pick(&r, Selection::Mood(mood), None).await;
        assert_eq!(tracks.len(), 25, "{mood}");
        let target = mood_target(mood);
        let outside = tracks
            .iter()
            .filter(|t| target.distance(&t.features) > 0.0)
            .count();
        assert_eq!(
            outside, 0,
            "{mood}: {outside} of 25 tracks outside the mood's ranges"
        );
    }
}

#[tokio::test]
async fn relaxing_is_calmer_than_energetic() {
    let r = recommender();
    let mean_energy =
        |ts: &[Arc<Track>]| ts.iter().map(|t| t.features.energy).sum::<f32>() / ts.len() as f32;
    let relaxing = pick(&r, Selection::Mood(Mood::Relaxing), None).await;
    let energetic = pick(&r, Selection::Mood(Mood::Energetic), None).await;
    assert!(mean_energy(&relaxing) + 0.3 < mean_energy(&energetic));
}

#[tokio::test]
async fn genre_and_artist_requests_return_only_that_genre_or_artist() {
    let r = recommender();
    let jazz = pick(&r, Selection::Genre("jazz".into()), None).await;
    assert!(!jazz.is_empty() && jazz.iter().all(|t| t.genre == "jazz"));
    let pops: Vec<u8> = jazz.iter().map(|t| t.popularity).collect();
    assert!(pops.first() >= pops.last(), "popular first");
    let artist = jazz[0].artist.clone();
    let by_artist = pick(&r, Selection::Artist(artist.to_uppercase()), None).await;
    assert!(!by_artist.is_empty() && by_artist.iter().all(|t| t.artist == artist));
    let err = r
        .recommend(RecommendRequest {
            selection: &Selection::Genre("polka".into()),
            profile: None,
            exclude: &[],
            limit: 5,
        })
        .await;
    assert!(matches!(err, Err(RecommendError::NoMatch(_))));
}

#[tokio::test]
async fn dislikes_recent_plays_and_explicit_tracks_are_filtered_for_the_listener() {
    let r = recommender();
    let cold = pick(&r, Selection::Genre("hip-hop".into()), None).await;
    assert!(
        cold.iter().any(|t| t.explicit),
        "the demo hip-hop has explicit tracks"
    );
    let mut profile = Profile::new("u");
    profile.explicit_allowed = false;
    profile.dislike(&cold[1].id);
    profile.played(&cold[2].id);
    let warm = pick(&r, Selection::Genre("hip-hop".into()), Some(&profile)).await;
    assert!(warm.iter().all(|t| !t.explicit));
    assert!(
        warm.iter()
            .all(|t| t.id != cold[1].id && t.id != cold[2].id)
    );
}

#[tokio::test]
async fn more_like_this_stays_close_to_the_seed() {
    let r = recommender();
    let seed = pick(&r, Selection::Genre("classical".into()), None).await[0].clone();
    let similar = pick(&r, Selection::LikeTrack(seed.id.clone()), None).await;
    assert!(similar.iter().all(|t| t.id != seed.id));
    let same_genre = similar.iter().filter(|t| t.genre == seed.genre).count();
    assert!(
        same_genre >= 15,
        "{same_genre} of 25 share the seed's genre"
    );
}
