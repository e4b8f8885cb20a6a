//! The Spark training job (`infra/spark/train_als.py`, MLlib's implicit ALS) in Spark's
//! local mode: it reads an archive Encore wrote, counts each event once, and writes a
//! version in the open model format that a server loads and serves. Needs a Python with
//! pyspark and Java (`ENCORE_TEST_SPARK_PYTHON`, set by `infra/local/run-tests.sh`).

use crate::common;

use encore::app::Components;
use encore::domain::{Source, TrackId};
use encore::feedback::{Archive, EventContext, EventKind, FeedbackEvent};
use encore::objects::DirStore;
use encore::recommend::Catalog;
use encore::recommend::model::Model;
use std::sync::Arc;

fn spark_python() -> String {
    std::env::var("ENCORE_TEST_SPARK_PYTHON").expect(
        "ENCORE_TEST_SPARK_PYTHON is not set: run the suite with infra/local/run-tests.sh, \
         which installs pyspark",
    )
}

#[tokio::test]
async fn the_spark_job_trains_on_the_archive_and_the_server_serves_its_version() {
    let dir = tempfile::tempdir().unwrap();
    // Two taste groups over the demo catalog's first 30 tracks, one page archived twice.
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let tracks: Vec<TrackId> = catalog
        .tracks()
        .iter()
        .take(30)
        .map(|t| t.id.clone())
        .collect();
    let mut events = Vec::new();
    for u in 0..40 {
        let group = u % 2;
        for t in tracks.iter().skip(group * 15).take(15).step_by(1 + u % 3) {
            events.push(FeedbackEvent::new(
                &format!("spark-user-{u}"),
                "device",
                t,
                EventKind::PlayFinished,
                200_000,
                EventContext::default(),
                Source::Alexa,
            ));
        }
    }
    let archive = Archive::new(Arc::new(DirStore::new(&dir.path().join("archive"))));
    archive.write(&events).await.unwrap();
    archive.write(&events[..5]).await.unwrap();

    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for f in ["manifest.json", "catalog.csv"] {
        std::fs::copy(common::repo().join("models").join(f), models.join(f)).unwrap();
    }
    let out = std::process::Command::new(spark_python())
        .arg(common::repo().join("infra/spark/train_als.py"))
        .args([
            "--master",
            "local[2]",
            "--factors",
            "8",
            "--iterations",
            "5",
        ])
        .args(["--version", "spark-v1"])
        .args(["--encore", env!("CARGO_BIN_EXE_encore")])
        .arg("--archive")
        .arg(dir.path().join("archive"))
        .arg("--out")
        .arg(&models)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} events read, {} after counting each event id once",
            events.len() + 5,
            events.len()
        )),
        "{stderr}"
    );

    // The open format, read back whole: every track listened to has a vector.
    let Model::Factors(factors) = Model::load(&models.join("versions/spark-v1")).unwrap() else {
        panic!("Spark writes item factors");
    };
    assert_eq!((factors.ids.len(), factors.dim()), (30, 8));
    // With its ANN index, built before model.json.
    assert!(
        models
            .join("versions/spark-v1")
            .join(encore::recommend::model::ANN_FILE)
            .is_file(),
        "{stderr}"
    );

    // And a server on that models directory serves it.
    let mut storage = common::storage(&dir.path().join("data"));
    storage.models = encore::objects::Location::Dir(models);
    let parts = Components::load(&storage).await.unwrap();
    assert_eq!(parts.models.current_version().as_deref(), Some("spark-v1"));
    let model = parts.models.assign("spark-user-1").model;
    assert_eq!(
        model.as_ref().map(|m| m.known),
        Some(30),
        "the catalog's tracks matched"
    );
    assert!(
        model
            .and_then(|m| m.factors().map(|f| f.has_index()))
            .unwrap_or(false),
        "more like this searches the whole catalog through the job's index"
    );
}
