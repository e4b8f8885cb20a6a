//! The recommender over the demo catalog: results fit the mood, the genre or the artist asked
//! for, popular first for a new listener, personal for a known one, exploring when asked to,
//! and they respect the listener's filters.

use crate::common;

use encore::domain::{Mood, Precomputed, Profile, Reason, Selection, Track};
use encore::recommend::{
    Catalog, CatalogRecommender, Experiment, ModelSet, RankSettings, RecommendError,
    RecommendRequest, Recommender, mood_target,
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
    picks(r, selection, profile)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect()
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
            user_id: "u",
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

fn with_exploration(share: f32) -> CatalogRecommender {
    let catalog = Arc::new(Catalog::load(&common::repo().join("models")).unwrap());
    let models = Arc::new(ModelSet::empty(catalog.clone(), Experiment::default()));
    let settings = RankSettings {
        exploration: share,
        ..RankSettings::default()
    };
    CatalogRecommender::with_models(models, settings)
}

/// A listener who finished many jazz tracks by one artist and liked a few.
fn jazz_fan(r: &CatalogRecommender) -> Profile {
    let mut p = Profile::new("fan");
    let jazz: Vec<Arc<Track>> = r
        .catalog()
        .tracks()
        .iter()
        .filter(|t| t.genre == "jazz")
        .take(30)
        .cloned()
        .collect();
    for t in &jazz {
        p.finishes += 1;
        p.adjust_affinity(&t.genre, &t.artist, 1.0);
        p.add_taste(&t.features, 1.0);
    }
    p
}

#[tokio::test]
async fn a_known_listener_hears_more_of_what_they_finish_than_a_new_one() {
    let r = recommender();
    let fan = jazz_fan(&r);
    for mood in [Mood::Relaxing, Mood::Focus, Mood::Sad] {
        let cold = pick(&r, Selection::Mood(mood), None).await;
        let warm = pick(&r, Selection::Mood(mood), Some(&fan)).await;
        let jazz = |ts: &[Arc<Track>]| ts.iter().filter(|t| t.genre == "jazz").count();
        assert!(
            jazz(&warm) > jazz(&cold),
            "{mood}: {} jazz tracks for the fan, {} for a new listener",
            jazz(&warm),
            jazz(&cold)
        );
        let target = mood_target(mood);
        assert!(
            warm.iter().all(|t| target.distance(&t.features) == 0.0),
            "still the mood"
        );
    }
}

#[tokio::test]
async fn tracks_skipped_in_a_context_sink_and_finished_ones_rise() {
    let r = recommender();
    let mut p = jazz_fan(&r);
    let selection = Selection::Genre("jazz".into());
    let before = pick(&r, selection.clone(), Some(&p)).await;
    let context = selection.context_key();
    let (skipped, finished) = (before[0].id.clone(), before[20].id.clone());
    for _ in 0..6 {
        p.record_outcome(&skipped, &context, false);
        p.record_outcome(&finished, &context, true);
    }
    let after = pick(&r, selection, Some(&p)).await;
    let pos = |id| after.iter().position(|t| &t.id == id);
    assert!(
        pos(&skipped).is_none_or(|i| i > 10),
        "skipped track at {:?}",
        pos(&skipped)
    );
    assert!(
        pos(&finished).is_some_and(|i| i < 20),
        "finished track at {:?}",
        pos(&finished)
    );
}

#[tokio::test]
async fn exploration_gives_cold_tracks_a_chance_but_never_the_first_slot() {
    let exploit = with_exploration(0.0);
    let explore = with_exploration(0.2);
    let selection = Selection::Mood(Mood::Party);
    let top: Vec<_> = pick(&exploit, selection.clone(), None)
        .await
        .iter()
        .map(|t| t.id.clone())
        .collect();
    let mut outside = std::collections::HashSet::new();
    for _ in 0..30 {
        let tracks = pick(&explore, selection.clone(), None).await;
        assert_eq!(tracks[0].id, top[0], "the first track is the best one");
        assert_eq!(tracks.len(), 25);
        outside.extend(
            tracks
                .iter()
                .filter(|t| !top.contains(&t.id))
                .map(|t| t.id.clone()),
        );
    }
    assert!(
        outside.len() >= 20,
        "{} tracks outside the exploit list got a turn",
        outside.len()
    );
    for _ in 0..5 {
        let again: Vec<_> = pick(&exploit, selection.clone(), None)
            .await
            .iter()
            .map(|t| t.id.clone())
            .collect();
        assert_eq!(again, top, "without exploration the list is stable");
    }
}

#[tokio::test]
async fn thompson_sampling_prefers_tracks_that_are_finished_in_the_context() {
    let explore = with_exploration(0.5);
    let selection = Selection::Mood(Mood::Happy);
    let context = selection.context_key();
    let cold = pick(&explore, selection.clone(), None).await;
    let (good, bad) = (cold[5].id.clone(), cold[6].id.clone());
    let mut p = Profile::new("u");
    for _ in 0..20 {
        // As the consumer folds a finished and a skipped play.
        p.finishes += 1;
        p.record_outcome(&good, &context, true);
        p.skips += 1;
        p.record_outcome(&bad, &context, false);
    }
    let (mut good_in, mut bad_in) = (0, 0);
    for _ in 0..20 {
        let ts = pick(&explore, selection.clone(), Some(&p)).await;
        good_in += ts.iter().any(|t| t.id == good) as u32;
        bad_in += ts.iter().any(|t| t.id == bad) as u32;
    }
    assert!(
        good_in >= 15 && bad_in <= 5,
        "finished in {good_in} of 20 lists, skipped in {bad_in}"
    );
}

#[tokio::test]
async fn misheard_artist_names_still_find_the_artist() {
    let r = recommender();
    let artist = r.catalog().tracks()[0].artist.clone();
    // Two letters swapped, and in capitals with punctuation.
    let mut chars: Vec<char> = artist.chars().collect();
    let n = chars.len();
    chars.swap(n - 2, n - 3);
    let misspelled: String = chars.into_iter().collect();
    let shouted = format!("{}!", artist.to_uppercase());
    for said in [misspelled, shouted] {
        let tracks = pick(&r, Selection::Artist(said.clone()), None).await;
        assert!(!tracks.is_empty(), "{said:?}");
        assert!(
            tracks.iter().all(|t| t.artist == artist),
            "{said:?} -> {:?}",
            tracks[0].artist
        );
    }
    let err = r
        .recommend(RecommendRequest {
            user_id: "u",
            selection: &Selection::Artist("zzqx".into()),
            profile: None,
            exclude: &[],
            limit: 5,
        })
        .await;
    assert!(
        matches!(err, Err(RecommendError::NoMatch(_))),
        "nothing close: no match"
    );
}

#[tokio::test]
async fn a_fresh_precomputed_list_joins_the_candidates_and_a_stale_one_does_not() {
    let r = recommender();
    let selection = Selection::Mood(Mood::Relaxing);
    let target = mood_target(Mood::Relaxing);
    let usual = pick(&r, selection.clone(), None).await;
    // Relaxing tracks the popular list does not reach.
    let mut niche: Vec<Arc<Track>> = r
        .catalog()
        .tracks()
        .iter()
        .filter(|t| target.distance(&t.features) == 0.0 && !usual.iter().any(|u| u.id == t.id))
        .cloned()
        .collect();
    // Of distinct popularity, least popular first: the list's order is not popularity's.
    niche.sort_by_key(|t| t.popularity);
    niche.dedup_by_key(|t| t.popularity);
    niche.truncate(5);
    assert_eq!(niche.len(), 5);
    let mut p = Profile::new("u");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    p.precomputed = Some(Precomputed {
        model_version: "m".into(),
        created_at: now,
        tracks: niche.iter().map(|t| t.id.clone()).collect(),
    });
    let fresh = pick(&r, selection.clone(), Some(&p)).await;
    let found = fresh
        .iter()
        .filter(|t| niche.iter().any(|n| n.id == t.id))
        .count();
    assert_eq!(found, 5, "the precomputed tracks are on the list");
    // In the list's own order, although it puts its least popular first.
    let place = |t: &Arc<Track>| fresh.iter().position(|f| f.id == t.id).unwrap();
    assert!(
        place(&niche[0]) < place(&niche[4]),
        "the list's first before its last"
    );
    let reasons: Vec<Reason> = picks(&r, selection.clone(), Some(&p))
        .await
        .into_iter()
        .filter(|(t, _)| niche.iter().any(|n| n.id == t.id))
        .map(|(_, why)| why)
        .collect();
    assert_eq!(reasons, [Reason::Model; 5], "the offline model ranked them");
    p.precomputed.as_mut().unwrap().created_at = now - 3 * 24 * 3600;
    let stale = pick(&r, selection, Some(&p)).await;
    assert!(
        stale.iter().all(|t| !niche.iter().any(|n| n.id == t.id)),
        "a stale list is ignored"
    );
}

async fn picks(
    r: &CatalogRecommender,
    selection: Selection,
    profile: Option<&Profile>,
) -> Vec<(Arc<Track>, Reason)> {
    let rec = r
        .recommend(RecommendRequest {
            user_id: "u",
            selection: &selection,
            profile,
            exclude: &[],
            limit: 25,
        })
        .await
        .unwrap();
    rec.tracks
        .picks()
        .map(|(t, why)| (t.clone(), why))
        .collect()
}

#[tokio::test]
async fn every_track_comes_with_the_reason_that_lifted_it() {
    let r = recommender();
    let relaxing = Selection::Mood(Mood::Relaxing);
    let cold = picks(&r, relaxing.clone(), None).await;
    assert!(
        cold.iter().all(|(_, why)| *why == Reason::Popular),
        "a new listener's list is the popular one: {:?}",
        cold.iter().map(|(_, why)| why).collect::<Vec<_>>()
    );

    // The fan finished 30 jazz tracks: their jazz comes for the genre, the rest at most for
    // its sound.
    let fan = jazz_fan(&r);
    let warm = picks(&r, relaxing.clone(), Some(&fan)).await;
    let jazz: Vec<Reason> = warm
        .iter()
        .filter(|(t, _)| t.genre == "jazz")
        .map(|(_, why)| *why)
        .collect();
    assert!(!jazz.is_empty(), "the fan gets jazz");
    assert!(jazz.iter().all(|why| *why == Reason::Genre), "{jazz:?}");
    assert!(
        warm.iter()
            .filter(|(t, _)| t.genre != "jazz")
            .all(|(_, why)| matches!(why, Reason::Sound | Reason::Popular | Reason::Artist)),
        "{warm:?}"
    );

    // A genre said in the app lifts a new listener's tracks of it.
    let mut says_jazz = Profile::new("u");
    says_jazz.preferred_genres = vec!["jazz".into()];
    let told = picks(&r, relaxing.clone(), Some(&says_jazz)).await;
    assert!(told.iter().any(|(t, _)| t.genre == "jazz"));
    for (t, why) in &told {
        let expected = match t.genre == "jazz" {
            true => Reason::PreferredGenre,
            false => Reason::Popular,
        };
        assert_eq!(*why, expected, "{} ({})", t.title, t.genre);
    }

    // "More like this" is nearness to the seed.
    let seed = cold[0].0.id.clone();
    let similar = picks(&r, Selection::LikeTrack(seed), Some(&fan)).await;
    assert!(similar.iter().all(|(_, why)| *why == Reason::Similar));

    // Explored slots are tracks being tried, and never the first.
    let explore = with_exploration(0.5);
    let mut tried = 0;
    for _ in 0..10 {
        let list = picks(&explore, relaxing.clone(), None).await;
        assert_ne!(list[0].1, Reason::Exploring);
        tried += list
            .iter()
            .filter(|(_, why)| *why == Reason::Exploring)
            .count();
    }
    assert!(
        tried >= 50,
        "{tried} explored slots in 10 lists of 25 at half exploration"
    );
}
