//! The offline commands as an operator runs them: catalog import and synthesis, training,
//! evaluation, model import and batch inference, end to end through the `encore` binary.

use crate::common;

use encore::recommend::model::{ItemFactors, Model};
use encore::recommend::{Catalog, Manifest};
use serde_json::Value;
use std::path::Path;

use common::run_encore as run;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The one model version under `models/versions`.
fn only_version(models: &Path) -> std::path::PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir(models.join("versions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    versions.pop().unwrap()
}

#[test]
fn a_spotify_export_imports_with_bad_rows_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("export.csv");
    // Header with an extra column and without several optional ones; line 3 has energy out
    // of range, line 4 a non-numeric popularity, line 5 repeats line 2's id, line 6 has a
    // ':' in its id (it would break playback tokens).
    std::fs::write(
        &csv,
        "track_id,artists,album_name,track_name,popularity,duration_ms,explicit,energy,valence,track_genre,extra\n\
         t1,Ana Lima;Guest,Album,Song One,61,200000,False,0.4,0.5,Jazz,x\n\
         t2,Ana Lima,Album,Song Two,40,180000,True,1.7,0.5,jazz,x\n\
         t3,Bo Ek,Album,Song Three,lots,180000,False,0.5,0.5,pop,x\n\
         t1,Ana Lima,Album,Again,10,1000,False,0.5,0.5,pop,x\n\
         bad:id,Bo Ek,Album,Song Four,10,1000,False,0.5,0.5,pop,x\n\
         t5,Bo Ek,,Song Five,,,,,,,\n",
    )
    .unwrap();
    let out = dir.path().join("models");
    let (ok, stdout, stderr) = run(&[
        "catalog",
        "import",
        path(&csv),
        "--out",
        path(&out),
        "--stream-url-template",
        "https://cdn.example/{track_id}.mp3",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("imported 2 tracks"), "{stdout}");
    assert!(
        stdout.contains("3 bad rows skipped, 1 repeated"),
        "{stdout}"
    );
    for line in [":3:", ":4:", ":6:"] {
        assert!(stderr.contains(line), "line {line} reported: {stderr}");
    }
    assert!(stderr.contains("energy 1.7"), "{stderr}");
    let catalog = Catalog::load(&out).unwrap();
    assert_eq!(catalog.len(), 2);
    let t1 = catalog
        .track(&encore::domain::TrackId("t1".into()))
        .unwrap();
    assert_eq!(
        (t1.artist.as_str(), t1.genre.as_str(), t1.title.as_str()),
        ("Ana Lima", "jazz", "Song One")
    );
    assert_eq!(t1.stream_url, "https://cdn.example/t1.mp3");
    let t5 = catalog
        .track(&encore::domain::TrackId("t5".into()))
        .unwrap();
    assert_eq!(
        (t5.duration_ms, t5.popularity, t5.genre.as_str()),
        (200_000, 0, "unknown"),
        "defaults"
    );
    assert_eq!(Manifest::read(&out).unwrap().extra["tracks"], 2);
    // The catalog is written as Parquet, and exports back to CSV for tools without it.
    assert_eq!(
        Manifest::read(&out).unwrap().catalog,
        std::path::PathBuf::from("catalog.parquet")
    );
    assert!(!out.join("catalog.csv").exists());
    // The catalog job saves the song search index beside the catalog, for serving to map.
    assert!(
        stdout.contains("saved the search index of 2 tracks"),
        "{stdout}"
    );
    assert_eq!(
        Manifest::read(&out).unwrap().search_index,
        Some(std::path::PathBuf::from("catalog.search"))
    );
    assert!(out.join("catalog.search").is_file());
    let (ok, stdout, stderr) = run(&["catalog", "index", "--models", path(&out)]);
    assert!(
        ok && stdout.contains("saved the search index of 2 tracks"),
        "{stdout}{stderr}"
    );
    let exported = dir.path().join("exported.csv");
    let (ok, stdout, stderr) = run(&[
        "catalog",
        "export",
        "--models",
        path(&out),
        "--out",
        path(&exported),
    ]);
    assert!(ok && stdout.contains("wrote 2 tracks"), "{stdout}{stderr}");
    let back =
        encore::recommend::read_tracks_csv(&exported, "https://cdn.example/{track_id}.mp3", None)
            .unwrap();
    assert_eq!(back.tracks.len(), 2);
    assert!(
        back.tracks
            .iter()
            .any(|t| t.id.0 == "t1" && t.title == "Song One")
    );

    let (ok, _, stderr) = run(&[
        "catalog",
        "import",
        path(&dir.path().join("missing.csv")),
        "--out",
        path(&out),
    ]);
    assert!(!ok && stderr.contains("missing.csv"), "{stderr}");
}

#[test]
fn release_years_come_from_a_year_or_a_release_date_and_survive_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("export.csv");
    // Exports name the column differently, and some have two: `year` wins. "0" and blank
    // are unknown; a two-digit year and one before 1900 are refused with their line.
    std::fs::write(
        &csv,
        "track_id,artists,track_name,year,release_date,album_release_date\n\
         a,Ana,One,1985,,\n\
         b,Ana,Two,,1991-06-01,\n\
         c,Ana,Three,,,2003\n\
         d,Ana,Four,1979.0,2011-01-01,\n\
         e,Ana,Five,0,,\n\
         f,Ana,Six,,,\n\
         g,Ana,Seven,85,,\n\
         h,Ana,Eight,1850,,\n",
    )
    .unwrap();
    let out = dir.path().join("models");
    let (ok, stdout, stderr) = run(&["catalog", "import", path(&csv), "--out", path(&out)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("imported 6 tracks"), "{stdout}");
    for line in [":8:", ":9:"] {
        assert!(stderr.contains(line), "line {line} reported: {stderr}");
    }
    assert!(stderr.contains("\"85\" is not a year"), "{stderr}");
    let catalog = Catalog::load(&out).unwrap();
    let year = |id: &str| {
        catalog
            .track(&encore::domain::TrackId(id.into()))
            .unwrap()
            .year
    };
    assert_eq!(
        ["a", "b", "c", "d", "e", "f"].map(year),
        [Some(1985), Some(1991), Some(2003), Some(1979), None, None]
    );
}

#[test]
fn train_evaluate_and_batch_recommend_on_planted_structure() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let (ok, stdout, stderr) = run(&[
        "catalog",
        "synth",
        "--tracks",
        "1200",
        "--users",
        "1500",
        "--plays-per-user",
        "16",
        "--out",
        path(&models),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("wrote 1200 synthetic tracks"), "{stdout}");
    let interactions = models.join("interactions.csv");
    let fast = ["--factors", "24", "--iterations", "6"];

    // Evaluation: the model finds held-out plays that popularity does not.
    let mut args = vec![
        "evaluate",
        "--interactions",
        path(&interactions),
        "--k",
        "10",
        "--json",
    ];
    args.extend(fast);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let methods = &report["methods"];
    let pop = &methods["popularity"];
    for kind in ["als", "ease", "item-knn"] {
        for m in ["precision", "recall", "ndcg", "coverage", "novelty"] {
            assert!(
                methods[kind][m].as_f64().unwrap() > pop[m].as_f64().unwrap(),
                "{kind} {m}: {report}"
            );
        }
        let diversity = methods[kind]["diversity"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&diversity), "{report}");
    }
    // The serving path's own ranking (profiles folded from the training part, the best
    // single model served, the default's lists precomputed), scored on the same users,
    // finds more than popularity does.
    let serving = &methods["serving"];
    assert!(
        serving["ndcg"].as_f64().unwrap() > 1.5 * pop["ndcg"].as_f64().unwrap(),
        "{report}"
    );
    assert_eq!(serving["users"], pop["users"], "{report}");
    // The default is what validation chose, scored like the rest; validation saw every
    // candidate on both of its parts.
    let default = report["default"].as_str().unwrap();
    assert!(methods[default]["ndcg"].as_f64().unwrap() > pop["ndcg"].as_f64().unwrap());
    for tried in report["validation"].as_array().unwrap() {
        assert_eq!(tried["ndcg"].as_array().unwrap().len(), 2, "{tried}");
    }
    assert!(
        report["evaluated_users"].as_u64().unwrap() > 1000,
        "{report}"
    );

    // Training writes a version the server can load, with its metrics.
    let mut args = vec![
        "train",
        "--interactions",
        path(&interactions),
        "--out",
        path(&models),
        "--kind",
        "als",
    ];
    args.extend(fast);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ndcg@10"), "{stdout}");
    let version = only_version(&models);
    let model = ItemFactors::load(&version).unwrap();
    assert_eq!(model.manifest.kind, "als");
    assert_eq!(model.dim(), 24);
    assert!(model.manifest.metrics["als"]["ndcg@10"].as_f64().unwrap() > 0.0);
    // The settings validation chose are the ones trained, and the manifest says so.
    let chosen = &model.manifest.metrics["validation"]["chosen"];
    assert_eq!(
        chosen["settings"]["regularization"].as_f64().unwrap() as f32,
        model.manifest.parameters["regularization"]
            .as_f64()
            .unwrap() as f32,
        "{chosen}"
    );
    assert!(
        model.manifest.metrics["validation"]["tried"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    assert!(model.manifest.data["interactions"].as_u64().unwrap() > 15_000);
    assert_eq!(model.manifest.parameters["factors"], 24);

    // Batch inference from that model: k new items per user, none from their history.
    let out = dir.path().join("top.csv");
    let (ok, stdout, stderr) = run(&[
        "batch-recommend",
        "--interactions",
        path(&interactions),
        "--k",
        "5",
        "--model",
        path(&version),
        "--out",
        path(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1500 users"), "{stdout}");
    let mut history: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    for r in csv::Reader::from_path(&interactions).unwrap().records() {
        let r = r.unwrap();
        history
            .entry(r[0].to_owned())
            .or_default()
            .insert(r[1].to_owned());
    }
    let mut per_user: std::collections::HashMap<String, Vec<(u32, String)>> = Default::default();
    for r in csv::Reader::from_path(&out).unwrap().records() {
        let r = r.unwrap();
        assert!(
            !history[&r[0]].contains(&r[2]),
            "{} already had {}",
            &r[0],
            &r[2]
        );
        per_user
            .entry(r[0].to_owned())
            .or_default()
            .push((r[1].parse().unwrap(), r[2].to_owned()));
    }
    assert_eq!(per_user.len(), 1500);
    for (user, list) in &per_user {
        let ranks: Vec<u32> = list.iter().map(|l| l.0).collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5], "{user}");
    }

    // With the kind left to validation, the version is what it chose, and every kind it
    // tried is on record.
    let auto = dir.path().join("auto");
    let mut args = vec![
        "train",
        "--interactions",
        path(&interactions),
        "--out",
        path(&auto),
        "--no-metrics",
    ];
    args.extend(fast);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let manifest = Model::load(&only_version(&auto))
        .unwrap()
        .manifest()
        .clone();
    let validation = &manifest.metrics["validation"];
    assert_eq!(
        validation["chosen"]["kind"],
        manifest.kind.as_str(),
        "{stdout}"
    );
    let kinds: std::collections::HashSet<&str> = validation["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["als", "ease", "item-knn"].into(), "{validation}");

    // An item-item version: every item's neighbours, strongest first, and batch lists
    // from it hold none of a user's own items.
    let ease = dir.path().join("ease");
    let (ok, _, stderr) = run(&[
        "train",
        "--interactions",
        path(&interactions),
        "--out",
        path(&ease),
        "--kind",
        "ease",
        "--no-metrics",
    ]);
    assert!(ok, "{stderr}");
    let version = only_version(&ease);
    let Model::Neighbours(n) = Model::load(&version).unwrap() else {
        panic!("EASE trains an item-item version");
    };
    assert_eq!(n.manifest.kind, "ease");
    assert_eq!(n.ids.len(), n.manifest.items);
    let (to, w) = n.row(0);
    assert!(
        !to.is_empty() && w.windows(2).all(|p| p[0] >= p[1]),
        "{w:?}"
    );
    let from_ease = dir.path().join("ease.csv");
    let (ok, _, stderr) = run(&[
        "batch-recommend",
        "--interactions",
        path(&interactions),
        "--k",
        "5",
        "--model",
        path(&version),
        "--out",
        path(&from_ease),
    ]);
    assert!(ok, "{stderr}");
    let mut listed = 0;
    for r in csv::Reader::from_path(&from_ease).unwrap().records() {
        let r = r.unwrap();
        assert!(!history[&r[0]].contains(&r[2]), "{} had {}", &r[0], &r[2]);
        listed += 1;
    }
    assert!(listed > 1500 * 4, "{listed} rows");

    // With no model given, validation chooses one and it ranks every user, none of what
    // they had.
    let chosen = dir.path().join("chosen.csv");
    let mut args = vec![
        "batch-recommend",
        "--interactions",
        path(&interactions),
        "--k",
        "5",
        "--out",
        path(&chosen),
    ];
    args.extend(fast);
    let (ok, _, stderr) = run(&args);
    assert!(ok && stderr.contains("chose "), "{stderr}");
    let mut users = std::collections::HashSet::new();
    for r in csv::Reader::from_path(&chosen).unwrap().records() {
        let r = r.unwrap();
        assert!(!history[&r[0]].contains(&r[2]), "{} had {}", &r[0], &r[2]);
        users.insert(r[0].to_owned());
    }
    assert_eq!(users.len(), 1500);
}

/// `encore model import FILE --out MODELS --version VERSION`.
fn import(file: &Path, models: &Path, version: &str) -> (bool, String, String) {
    run(&[
        "model",
        "import",
        path(file),
        "--out",
        path(models),
        "--version",
        version,
    ])
}

#[test]
fn factors_trained_elsewhere_import_as_a_model_version() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    // Spark MLlib's itemFactors as JSON lines.
    let spark = dir.path().join("spark.json");
    std::fs::write(
        &spark,
        "{\"id\":7,\"features\":[0.1,0.2,0.3]}\n{\"id\":8,\"features\":[0.3,0.2,0.1]}\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = import(spark.as_path(), &models, "spark-1");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 item vectors of 3 dimensions"),
        "{stdout}"
    );
    let m = ItemFactors::load(&models.join("versions/spark-1")).unwrap();
    assert_eq!(m.ids, ["7", "8"]);
    assert_eq!(m.vector(m.row_of("8").unwrap()), [0.3, 0.2, 0.1]);
    assert_eq!(m.manifest.kind, "imported");

    // An id column plus a list column, and an id column plus one column per dimension.
    let listed = dir.path().join("listed.csv");
    std::fs::write(
        &listed,
        "item_id,factors\na,\"[1.0, 0.0]\"\nb,\"[0.0, 1.0]\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = import(listed.as_path(), &models, "csv-1");
    assert!(ok, "{stderr}");
    let wide = dir.path().join("wide.csv");
    std::fs::write(&wide, "item_id,f0,f1\na,1.0,0.0\nb,0.5\n").unwrap();
    let (ok, _, stderr) = import(wide.as_path(), &models, "csv-2");
    assert!(
        !ok && stderr.contains("has 1 values, the first had 2"),
        "{stderr}"
    );
    let (ok, _, stderr) = import(listed.as_path(), &models, "csv-1");
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
}

#[test]
fn bad_interaction_rows_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("i.csv");
    let mut text = String::from("user_id,item_id,timestamp,rating\n");
    for u in 0..40 {
        for i in 0..6 {
            text += &format!("u{u},i{},{},1\n", (u % 4) * 6 + i, 1000 + i);
        }
    }
    text += "u1,i1,yesterday,1\nu2,i2,5,lots\n";
    std::fs::write(&csv, text).unwrap();
    let (ok, stdout, stderr) = run(&[
        "evaluate",
        "--interactions",
        path(&csv),
        "--k",
        "3",
        "--factors",
        "4",
        "--iterations",
        "3",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("2 bad rows skipped (first at line 242"),
        "{stderr}"
    );
    assert!(
        stdout.contains("precision@3") && stdout.contains("popularity"),
        "{stdout}"
    );
}

#[tokio::test]
async fn batch_lists_stored_in_profiles_are_served_while_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("i.csv");
    let mut text = String::from("user_id,item_id,timestamp\n");
    // Demo catalog tracks: two groups of listeners with their own tracks.
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let ids: Vec<&str> = catalog.ids().take(40).collect();
    for u in 0..30 {
        for (n, id) in ids
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 2 == u % 2 && (n + u) % 5 != 0)
        {
            text += &format!("u{u},{id},{n}\n");
        }
    }
    std::fs::write(&csv, text).unwrap();
    let data = dir.path().join("data");
    let (ok, stdout, stderr) = run(&[
        "batch-recommend",
        "--interactions",
        path(&csv),
        "--k",
        "4",
        "--to-profiles",
        "--store",
        "embedded",
        "--data-dir",
        path(&data),
        "--factors",
        "4",
        "--iterations",
        "5",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("stored the lists of 30 users"), "{stdout}");
    use encore::store::ProfileStore;
    let store = encore::store::EmbeddedStore::open(&data).unwrap();
    let p = store
        .profile("u3")
        .await
        .unwrap()
        .expect("a profile was made");
    let list = p.precomputed.expect("the list is stored");
    assert_eq!(list.tracks.len(), 4);
    for t in &list.tracks {
        let n = ids
            .iter()
            .position(|id| *id == t.0)
            .expect("a catalog track");
        assert_eq!(
            n % 2,
            1,
            "u3 listens to odd tracks: {n} is what they missed"
        );
    }
}

#[tokio::test]
async fn train_reads_the_feedback_log_while_a_server_keeps_writing_it() {
    use encore::domain::{Source, TrackId};
    use encore::feedback::{EventContext, EventKind, FeedbackEvent, FeedbackSink, LocalLog};
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("feedback");
    // Held open (and locked) the way a running `encore serve` holds it.
    let log = LocalLog::open(&log_dir).unwrap();
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let ids: Vec<TrackId> = catalog
        .tracks()
        .iter()
        .take(30)
        .map(|t| t.id.clone())
        .collect();
    let ended = |user: usize, track: &TrackId, kind: EventKind| {
        FeedbackEvent::new(
            &format!("listener-{user}"),
            "echo",
            track,
            kind,
            200_000,
            EventContext::default(),
            Source::Alexa,
        )
    };
    let event = |user: usize, track: &TrackId| ended(user, track, EventKind::PlayFinished);
    // Each listener finishes eight tracks and skips the next.
    let mut played = std::collections::HashSet::new();
    for user in 0..40 {
        for track in ids.iter().skip(user % 20).take(8) {
            log.send(event(user, track)).durable().await.unwrap();
            played.insert(track.clone());
        }
        let skipped = &ids[user % 20 + 8];
        log.send(ended(user, skipped, EventKind::Skipped))
            .durable()
            .await
            .unwrap();
        played.insert(skipped.clone());
    }
    let models = dir.path().join("models");
    let (ok, stdout, stderr) = run(&[
        "train",
        "--interactions",
        path(&log_dir),
        "--out",
        path(&models),
        "--no-metrics",
        "--factors",
        "8",
        "--iterations",
        "3",
    ]);
    assert!(ok, "train beside a live log: {stderr}");
    assert!(stdout.contains(" model "), "{stdout}");
    let model = Model::load(&only_version(&models)).unwrap();
    assert_eq!(
        model.ids().len(),
        played.len(),
        "every played track is in the model"
    );
    // With skips in the log, validation also tried ALS with them as evidence against.
    let tried = model.manifest().metrics["validation"]["tried"].to_string();
    assert!(tried.contains(r#""strength":"signed""#), "{tried}");
    // The server's log still takes events.
    log.send(event(99, &ids[0])).durable().await.unwrap();
}
