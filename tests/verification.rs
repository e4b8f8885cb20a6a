//! Request verification against a real listener, with requests signed by a PKI made at
//! test time: every way a request can be forged or stale is refused with HTTP 400.

use crate::common;

use common::{TestServer, fetcher, fixture, pki, post_raw, post_signed, verifier};
use serde_json::Value;
use std::sync::atomic::Ordering;

const GOOD_URL: &str = "https://s3.amazonaws.com/echo.api/good.pem";

async fn server() -> (
    TestServer,
    std::sync::Arc<common::StaticFetcher>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let f = fetcher();
    let s = TestServer::start(dir.path(), Some(verifier(f.clone()))).await;
    (s, f, dir)
}

async fn refused(response: reqwest::Response, reason: &str) {
    assert_eq!(response.status(), 400, "expected a refusal for {reason}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(reason),
        "expected {reason:?} in {message:?}"
    );
}

#[tokio::test]
async fn a_correctly_signed_request_is_answered() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    let r = post_signed(&client, &s, &fixture("launch", ""), &pki().good, "good").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["response"]["outputSpeech"]["ssml"]
            .as_str()
            .unwrap()
            .contains("Welcome")
    );
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    // Signed by the untrusted chain's key, but pointing at the good chain.
    let r = post_signed(
        &client,
        &s,
        &fixture("launch", ""),
        &pki().untrusted,
        "good",
    )
    .await;
    refused(r, "signature does not match").await;
}

#[tokio::test]
async fn a_body_changed_after_signing_is_refused() {
    let (s, _, _d) = server().await;
    let body = serde_json::to_vec(&fixture("launch", "")).unwrap();
    let signature = pki().good.sign(&body);
    let mut tampered = body.clone();
    let at = tampered.windows(6).position(|w| w == b"Launch").unwrap();
    tampered[at] = b'l';
    let r = post_raw(
        &reqwest::Client::new(),
        &s,
        Some(GOOD_URL),
        Some(&signature),
        tampered,
    )
    .await;
    refused(r, "signature does not match").await;
}

#[tokio::test]
async fn missing_headers_and_garbage_signatures_are_refused() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&fixture("launch", "")).unwrap();
    let r = post_raw(&client, &s, None, None, body.clone()).await;
    refused(r, "missing header SignatureCertChainUrl").await;
    let r = post_raw(&client, &s, Some(GOOD_URL), None, body.clone()).await;
    refused(r, "missing header Signature-256").await;
    let r = post_raw(&client, &s, Some(GOOD_URL), Some("!!not base64!!"), body).await;
    refused(r, "signature does not match").await;
}

#[tokio::test]
async fn wrong_certificate_urls_are_refused_without_downloading_anything() {
    let (s, f, _d) = server().await;
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&fixture("launch", "")).unwrap();
    let signature = pki().good.sign(&body);
    let urls = [
        (
            "http://s3.amazonaws.com/echo.api/good.pem",
            "scheme is not https",
        ),
        (
            "https://notamazon.com/echo.api/good.pem",
            "host is not s3.amazonaws.com",
        ),
        (
            "https://s3.amazonaws.com.evil.example/echo.api/good.pem",
            "host is not s3.amazonaws.com",
        ),
        (
            "https://s3.amazonaws.com/EcHo.aPi/good.pem",
            "path is not under /echo.api/",
        ),
        (
            "https://s3.amazonaws.com/invalid.path/good.pem",
            "path is not under /echo.api/",
        ),
        (
            "https://s3.amazonaws.com/echo.api/../invalid.path/good.pem",
            "path is not under /echo.api/",
        ),
        (
            "https://s3.amazonaws.com:563/echo.api/good.pem",
            "port is not 443",
        ),
        (
            "https://evil@s3.amazonaws.com/echo.api/good.pem",
            "credentials in URL",
        ),
        ("not a url", "not a URL"),
    ];
    for (url, reason) in urls {
        let r = post_raw(&client, &s, Some(url), Some(&signature), body.clone()).await;
        refused(r, reason).await;
    }
    assert_eq!(
        f.fetches.load(Ordering::SeqCst),
        0,
        "no refused URL is fetched"
    );
}

#[tokio::test]
async fn equivalent_certificate_urls_are_accepted() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&fixture("launch", "")).unwrap();
    let signature = pki().good.sign(&body);
    for url in [
        "https://S3.AMAZONAWS.COM/echo.api/good.pem",
        "https://s3.amazonaws.com:443/echo.api/good.pem",
        "https://s3.amazonaws.com/echo.api/../echo.api/good.pem",
    ] {
        let r = post_raw(&client, &s, Some(url), Some(&signature), body.clone()).await;
        assert_eq!(r.status(), 200, "{url}");
    }
}

#[tokio::test]
async fn bad_certificates_are_refused() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    let launch = fixture("launch", "");
    refused(
        post_signed(&client, &s, &launch, &pki().expired, "expired").await,
        "outside its validity dates",
    )
    .await;
    refused(
        post_signed(&client, &s, &launch, &pki().wrong_name, "wrong-name").await,
        "not issued to echo-api.amazon.com",
    )
    .await;
    refused(
        post_signed(&client, &s, &launch, &pki().untrusted, "untrusted").await,
        "signing certificate refused",
    )
    .await;
    refused(
        post_signed(&client, &s, &launch, &pki().good, "missing").await,
        "could not be fetched",
    )
    .await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused_but_small_skew_is_allowed() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    // Within 150 s either way, as Amazon's SDKs allow (5 s ahead used to be the limit).
    for (offset, ok) in [
        (-200, false),
        (-140, true),
        (60, true),
        (140, true),
        (200, false),
        (3, true),
    ] {
        let mut request = fixture("launch", "");
        request["request"]["timestamp"] = common::now_timestamp(offset).into();
        let r = post_signed(&client, &s, &request, &pki().good, "good").await;
        if ok {
            assert_eq!(r.status(), 200, "offset {offset}s should pass");
        } else {
            refused(r, "timestamp").await;
        }
    }
    let mut request = fixture("launch", "");
    request["request"]["timestamp"] = "yesterday".into();
    refused(
        post_signed(&client, &s, &request, &pki().good, "good").await,
        "timestamp",
    )
    .await;
}

#[tokio::test]
async fn a_request_for_another_skill_is_refused() {
    let (s, _, _d) = server().await;
    let client = reqwest::Client::new();
    let mut request = fixture("launch", "");
    request["context"]["System"]["application"]["applicationId"] =
        "amzn1.ask.skill.somebody-else".into();
    refused(
        post_signed(&client, &s, &request, &pki().good, "good").await,
        "another skill",
    )
    .await;
}

#[tokio::test]
async fn a_verified_chain_is_downloaded_once_and_reused() {
    let (s, f, _d) = server().await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let r = post_signed(&client, &s, &fixture("launch", ""), &pki().good, "good").await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cached_certificate_is_refused_once_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let f = fetcher();
    let clock = std::sync::Arc::new(common::MovableClock::default());
    let s = TestServer::start(
        dir.path(),
        Some(common::verifier_with_clock(f.clone(), clock.clone())),
    )
    .await;
    let client = reqwest::Client::new();
    let r = post_signed(&client, &s, &fixture("launch", ""), &pki().good, "good").await;
    assert_eq!(r.status(), 200);
    // 31 days later the test certificate (valid for 30) has expired, though it is cached.
    let month = 31 * 24 * 3600;
    clock.offset_secs.store(month, Ordering::SeqCst);
    let mut request = fixture("launch", "");
    request["request"]["timestamp"] = common::now_timestamp(month).into();
    refused(
        post_signed(&client, &s, &request, &pki().good, "good").await,
        "outside its validity dates",
    )
    .await;
}

#[tokio::test]
async fn a_flood_of_other_certificate_urls_cannot_evict_the_real_chain() {
    let (s, f, _d) = server().await;
    let client = reqwest::Client::new();
    let launch = || serde_json::to_vec(&fixture("launch", "")).unwrap();
    let r = post_signed(&client, &s, &fixture("launch", ""), &pki().good, "good").await;
    assert_eq!(r.status(), 200);
    // The same real chain under 500 other accepted URLs (S3 ignores a query string), each
    // with a forged signature.
    for i in 0..500 {
        let url = format!("{GOOD_URL}?flood={i}");
        let forged = common::post_raw(&client, &s, Some(&url), Some("AAAA"), launch()).await;
        assert_eq!(forged.status(), 400);
    }
    let r = post_signed(&client, &s, &fixture("launch", ""), &pki().good, "good").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        f.fetches_of(GOOD_URL),
        1,
        "the real chain was downloaded again after the flood"
    );
}

#[tokio::test]
async fn a_chain_that_could_not_be_fetched_is_not_fetched_again_at_once() {
    let (s, f, _d) = server().await;
    let client = reqwest::Client::new();
    let missing = "https://s3.amazonaws.com/echo.api/missing.pem";
    let body = serde_json::to_vec(&fixture("launch", "")).unwrap();
    let signature = pki().good.sign(&body);
    for _ in 0..20 {
        let r = common::post_raw(&client, &s, Some(missing), Some(&signature), body.clone()).await;
        refused(r, "could not be fetched").await;
    }
    assert_eq!(f.fetches_of(missing), 1, "20 requests, one download");
}

#[tokio::test]
async fn a_certificate_download_that_never_ends_is_cut_at_its_cap() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Answers one request with a chunked body of up to 256 MiB, and says how much it sent
    // before the client hung up.
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await.unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-pem-file\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "A".repeat(64 * 1024));
        let mut sent = 0usize;
        for _ in 0..4096 {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 64 * 1024;
        }
        sent
    });
    let fetcher = encore::skill::verify::HttpCertFetcher::new().unwrap();
    let url = reqwest::Url::parse(&format!("http://{addr}/echo.api/endless.pem")).unwrap();
    let err = encore::skill::verify::CertFetcher::fetch(&fetcher, &url)
        .await
        .expect_err("an endless chain is refused");
    assert!(err.contains("over 65536 bytes"), "{err}");
    let sent = server.await.unwrap();
    assert!(
        sent < 16 * 1024 * 1024,
        "the fetcher kept reading: {} MiB sent before it hung up",
        sent / (1024 * 1024)
    );
}
