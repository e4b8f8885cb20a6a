//! The OpenAPI document is exact: schemathesis (from PyPI, installed by the test command)
//! runs against a live server's own `/v1/openapi.json` with a valid token, with every check
//! (no 5xx, every status and body as documented, every schema-valid request accepted and
//! every schema-violating one refused, the playlist link followed), and finds nothing.
//! Fixed seed and a bounded number of cases per operation: the same run every time.

use crate::common;

use common::TestServer;
use encore::settings::ApiArgs;
use std::time::Duration;

const ISSUER: &str = "encore-openapi-test";
const AUDIENCE: &str = "encore";
const SECRET: &str = "openapi-test-secret";

/// A valid token for `serve_with_the_api`'s server, as user `sub`.
pub fn token_for(sub: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A server on a real listener with the mobile API on (HS256 tokens from `token_for`),
/// request verification off.
pub async fn serve_with_the_api(data_dir: &std::path::Path) -> TestServer {
    let mut args = common::serve_args(true, data_dir);
    args.api = api_args();
    TestServer::start_with(args, None).await
}

/// The mobile API on, taking `token_for`'s tokens.
pub fn api_args() -> ApiArgs {
    ApiArgs {
        jwt_issuer: Some(ISSUER.into()),
        jwt_audience: Some(AUDIENCE.into()),
        jwt_dev_secret: Some(SECRET.into()),
        // Thousands of requests from one user: the rate limit is not what is tested here.
        rate_limit_per_minute: 1_000_000,
        rate_limit_burst: 100_000,
        ..ApiArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_document_and_the_server_disagree_on() {
    let schemathesis = std::env::var("ENCORE_TEST_SCHEMATHESIS").expect(
        "ENCORE_TEST_SCHEMATHESIS names the schemathesis binary: run the suite with infra/local/run-tests.sh",
    );
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_the_api(dir.path()).await;
    let config = common::repo().join("tests/schemathesis/schemathesis.toml");
    let run = tokio::process::Command::new(schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(server.url("/v1/openapi.json"))
        .args([
            "--header",
            &format!("Authorization: Bearer {}", token_for("schemathesis")),
        ])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "20261201",
        ])
        .args(["--workers", "2", "--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String = {
        let chars: Vec<char> = stdout.chars().collect();
        chars[chars.len().saturating_sub(20_000)..].iter().collect()
    };
    assert!(
        out.status.success(),
        "schemathesis found a disagreement:\n{tail}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{tail}");
    server.stop().await;
}
