//! The `encore` binary as an operator uses it: --help, `say`, and `serve` starting on a real
//! port, answering, and stopping cleanly on SIGTERM.

use crate::common;

use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{run_encore as run, spawn_serve};

#[test]
fn help_explains_each_command_and_setting() {
    let (ok, out, _) = run(&["--help"]);
    assert!(ok && out.contains("serve") && out.contains("say"), "{out}");
    let (ok, out, _) = run(&["serve", "--help"]);
    assert!(ok);
    for flag in [
        "--addr",
        "--data-dir",
        "--models",
        "--skill-id",
        "--no-verify",
        "ENCORE_ADDR",
        "ENCORE_DATA_DIR",
        "ENCORE_MODELS",
        "ENCORE_SKILL_ID",
        "ENCORE_NO_VERIFY",
        "--jwt-issuer",
        "--jwt-audience",
        "--jwks-url",
        "--jwks-file",
        "ENCORE_JWT_ISSUER",
        "ENCORE_JWKS_URL",
        "--exploration",
        "--variant",
        "--model-endpoint",
    ] {
        assert!(out.contains(flag), "serve --help lacks {flag}:\n{out}");
    }
    let (ok, out, _) = run(&["--help"]);
    assert!(ok);
    for command in ["catalog", "train", "evaluate", "model", "batch-recommend"] {
        assert!(out.contains(command), "--help lacks {command}:\n{out}");
    }
    let (ok, out, _) = run(&["say", "--help"]);
    assert!(ok);
    for flag in ["--user", "--locale", "--json", "--data-dir", "--models"] {
        assert!(out.contains(flag), "say --help lacks {flag}:\n{out}");
    }
}

/// `encore say --data-dir DATA --user u1 ARGS...`, which must succeed; its stdout.
fn say(data: &str, args: &[&str]) -> String {
    let mut all = vec!["say", "--data-dir", data, "--user", "u1"];
    all.extend_from_slice(args);
    let (ok, out, err) = run(&all);
    assert!(ok, "say {args:?} failed: {err}");
    out
}

#[test]
fn say_answers_plays_and_remembers_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = say(data, &["play something relaxing"]);
    assert!(out.starts_with("Playing relaxing music. Here's "), "{out}");
    assert!(
        out.lines().filter(|l| l.contains(" — ")).count() >= 5,
        "lists the tracks it would play:\n{out}"
    );

    let v: Value = serde_json::from_str(&say(data, &["--json", "what's playing"])).unwrap();
    assert_eq!(v["intent"]["name"], "WhatIsPlayingIntent");
    let now = v["speech"].as_str().unwrap().to_owned();

    let v: Value = serde_json::from_str(&say(data, &["--json", "skip this song"])).unwrap();
    assert_eq!(v["playback"]["behavior"], "REPLACE_ALL");
    let next = v["playback"]["track"]["title"].as_str().unwrap();
    assert!(
        !now.contains(next),
        "next plays another track ({now} / {next})"
    );

    let out = say(data, &["--locale", "de-DE", "spiel etwas fröhliches"]);
    assert!(out.starts_with("Ich spiele fröhliche Musik"), "{out}");
    let out = say(data, &["order me a pizza"]);
    assert!(out.contains("didn't catch that"), "{out}");
}

#[test]
fn serve_refuses_to_start_verified_without_a_skill_id() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("--skill-id") && err.contains("--no-verify"),
        "{err}"
    );
}

#[test]
fn serve_starts_on_a_free_port_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, before, addr) = spawn_serve(dir.path(), "json", &[]);
    let warned = before.iter().any(|line| {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        v["level"] == "WARN" && line.contains("verification is OFF")
    });
    assert!(warned, "turning verification off is logged as a warning");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let health = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let r = reqwest::Client::new()
            .post(format!("http://{addr}/alexa"))
            .json(&common::fixture("play_mood_er", ""))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["response"]["directives"][0]["type"], "AudioPlayer.Play");
    });
    // While the server holds the data file, `say` still answers, from a temporary store.
    let (ok, out, err) = run(&[
        "say",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "play jazz",
    ]);
    assert!(ok && out.starts_with("Playing jazz."), "{out}{err}");
    assert!(err.contains("temporary store"), "{err}");

    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn a_listener_id_holding_a_newline_cannot_forge_a_text_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, _, addr) = spawn_serve(dir.path(), "text", &[]);
    // Whatever happens below, the server does not outlive the test.
    struct Killed(u32);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _guard = Killed(child.id());
    let forged = "2026-12-01T00:00:00.000000Z ERROR encore: forged line";
    let user = format!("amzn1.ask.account.evil\n{forged}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let post = |name: &str, token: &str| {
            let mut request = common::fixture(name, token);
            request["context"]["System"]["user"]["userId"] = user.clone().into();
            if request.get("session").is_some() {
                request["session"]["user"]["userId"] = user.clone().into();
            }
            client
                .post(format!("http://{addr}/alexa"))
                .json(&request)
                .send()
        };
        let played: Value = post("play_mood_er", "")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = played["response"]["directives"][0]["audioItem"]["stream"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        // A failed stream is logged as a warning with the listener's id.
        assert_eq!(post("playback_failed", &token).await.unwrap().status(), 200);
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = child.wait();
    assert!(
        rest.iter().any(|l| l.contains("playback failed")),
        "the warning was logged: {rest:?}"
    );
    assert!(
        !rest.iter().any(|l| l.starts_with(forged)),
        "a forged line: {rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("evil\\n2026-12-01")),
        "the id, escaped: {rest:?}"
    );
}

#[test]
fn with_an_admin_address_readiness_and_metrics_are_served_there_and_not_on_the_service_address() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _lines, before, addr) =
        spawn_serve(dir.path(), "json", &["--admin-addr", "127.0.0.1:0"]);
    let admin = before
        .iter()
        .find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            v["fields"]["admin_addr"].as_str().map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no admin address logged in {before:?}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses = rt.block_on(async {
        let get = async |base: &str, path: &str| {
            reqwest::get(format!("http://{base}{path}"))
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        let voice = reqwest::Client::new()
            .post(format!("http://{admin}/alexa"))
            .json(&common::fixture("launch", ""))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        [
            get(&addr, "/healthz").await,
            get(&addr, "/readyz").await,
            get(&addr, "/metrics").await,
            get(&admin, "/healthz").await,
            get(&admin, "/readyz").await,
            get(&admin, "/metrics").await,
            voice,
        ]
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        statuses,
        [200, 404, 404, 200, 200, 200, 404],
        "service: healthz, readyz, metrics; admin: healthz, readyz, metrics, alexa"
    );
}
