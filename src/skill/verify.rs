//! Verifying that a request comes from the voice platform, before anything in it is
//! believed: the signing certificate's URL, the certificate chain (to a trusted root, within
//! its validity dates, issued to `echo-api.amazon.com`), the `Signature-256` over the raw
//! body, the request's age and the skill id.
//!
//! The trusted roots, the clock and the certificate fetcher are injected, so tests sign
//! requests with a CA they make themselves.

use async_trait::async_trait;
use base64::Engine;
use moka::future::Cache;
use reqwest::Url;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, ServerName, TrustAnchor, UnixTime};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The name the signing certificate must carry.
pub const SIGNING_CERT_SAN: &str = "echo-api.amazon.com";
/// How old a request may be.
pub const MAX_REQUEST_AGE: Duration = Duration::from_secs(150);
/// How far ahead of our clock a request's timestamp may be: as far as it may be behind, the
/// way Amazon's own SDKs check it (|now - timestamp| <= 150 s); a device or fleet clock a few
/// seconds fast is not a forged request.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(150);
/// How long a downloaded certificate chain is trusted before it is fetched again.
pub const CERT_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Largest certificate chain we download: the download stops as soon as it is longer.
pub const MAX_CHAIN_BYTES: usize = 64 * 1024;
/// How long a URL whose chain could not be fetched or was refused is refused without
/// fetching it again, so a flood of requests naming it costs one download.
pub const FAILED_CHAIN_TTL: Duration = Duration::from_secs(10);
/// How many chains may be downloading at once; a request that would start another is
/// refused (a real request's chain is already cached).
pub const DOWNLOADS_IN_FLIGHT: usize = 4;

/// Why a request was refused. Its `reason` is what the 400 answer says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("signature certificate URL refused: {0}")]
    CertUrl(&'static str),
    #[error("signing certificate could not be fetched: {0}")]
    CertFetch(String),
    #[error("signing certificate refused: {0}")]
    CertChain(String),
    #[error("signing certificate is outside its validity dates")]
    CertExpired,
    #[error("signing certificate is not issued to {SIGNING_CERT_SAN}")]
    CertName,
    #[error("signature does not match the body")]
    Signature,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request timestamp is too old or in the future")]
    Timestamp,
    #[error("request is for another skill")]
    SkillId,
}

impl Rejection {
    /// A short, stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::CertUrl(_) => "cert_url",
            Rejection::CertFetch(_) => "cert_fetch",
            Rejection::CertChain(_) => "cert_chain",
            Rejection::CertExpired => "cert_expired",
            Rejection::CertName => "cert_name",
            Rejection::Signature => "signature",
            Rejection::Malformed(_) => "malformed",
            Rejection::Timestamp => "timestamp",
            Rejection::SkillId => "skill_id",
        }
    }
}

#[async_trait]
pub trait CertFetcher: Send + Sync {
    /// The PEM chain at `url` (signing certificate first).
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, String>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Downloads certificate chains over HTTPS with reqwest.
pub struct HttpCertFetcher {
    client: reqwest::Client,
}

impl HttpCertFetcher {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(4))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpCertFetcher { client })
    }
}

#[async_trait]
impl CertFetcher for HttpCertFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, String> {
        let too_large = || format!("certificate chain over {MAX_CHAIN_BYTES} bytes");
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CHAIN_BYTES as u64)
        {
            return Err(too_large());
        }
        // Read as it arrives and stop past the cap: a server that sends without end costs
        // 64 KiB, not whatever it sends in the timeout.
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if bytes.len() + chunk.len() > MAX_CHAIN_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// A chain that passed verification, kept until `CERT_CACHE_TTL` or its expiry.
struct SigningCert {
    leaf: CertificateDer<'static>,
    /// The latest `notBefore` and earliest `notAfter` in the chain (seconds since epoch).
    valid_from: i64,
    valid_until: i64,
}

/// Chains are cached in two tiers: `proven`, the chains a request's signature has verified
/// against (the platform's real one), and `certs`, every chain that passed its checks. A
/// flood of requests naming other URLs (S3 serves the same chain for any query string) can
/// only churn `certs`; the real chain stays in `proven` and is not downloaded again.
pub struct Verifier {
    skill_ids: Vec<String>,
    roots: Vec<TrustAnchor<'static>>,
    fetcher: Arc<dyn CertFetcher>,
    clock: Arc<dyn Clock>,
    proven: Cache<String, Arc<SigningCert>>,
    certs: Cache<String, Arc<SigningCert>>,
    failed: Cache<String, Rejection>,
    downloads: tokio::sync::Semaphore,
}

impl Verifier {
    pub fn new(
        skill_ids: Vec<String>,
        roots: Vec<TrustAnchor<'static>>,
        fetcher: Arc<dyn CertFetcher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Verifier {
            skill_ids,
            roots,
            fetcher,
            clock,
            proven: Cache::builder()
                .max_capacity(16)
                .time_to_live(CERT_CACHE_TTL)
                .build(),
            certs: Cache::builder()
                .max_capacity(64)
                .time_to_live(CERT_CACHE_TTL)
                .build(),
            failed: Cache::builder()
                .max_capacity(4096)
                .time_to_live(FAILED_CHAIN_TTL)
                .build(),
            downloads: tokio::sync::Semaphore::new(DOWNLOADS_IN_FLIGHT),
        }
    }

    /// The production verifier: Mozilla's roots, HTTPS fetching, the system clock.
    pub fn production(skill_ids: Vec<String>) -> Result<Self, reqwest::Error> {
        Ok(Self::new(
            skill_ids,
            webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            Arc::new(HttpCertFetcher::new()?),
            Arc::new(SystemClock),
        ))
    }

    fn now_secs(&self) -> i64 {
        match self.clock.now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    /// Checks the certificate URL, the chain and the signature over `body`.
    pub async fn verify_signature(
        &self,
        cert_url: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), Rejection> {
        let cert_url = cert_url.ok_or(Rejection::MissingHeader("SignatureCertChainUrl"))?;
        let signature = signature.ok_or(Rejection::MissingHeader("Signature-256"))?;
        let url = check_cert_url(cert_url)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| Rejection::Signature)?;
        let key = url.to_string();
        let (cert, proven) = match self.proven.get(&key).await {
            Some(cert) => (cert, true),
            None => (self.chain(&url).await?, false),
        };
        let now = self.now_secs();
        if now < cert.valid_from || now > cert.valid_until {
            self.proven.invalidate(&key).await;
            self.certs.invalidate(&key).await;
            return Err(Rejection::CertExpired);
        }
        let leaf = webpki::EndEntityCert::try_from(&cert.leaf)
            .map_err(|e| Rejection::CertChain(e.to_string()))?;
        leaf.verify_signature(
            webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
            body,
            &signature,
        )
        .map_err(|_| Rejection::Signature)?;
        if !proven {
            self.proven.insert(key, cert).await;
        }
        Ok(())
    }

    /// The checked chain at `url`: cached, or downloaded (one download per URL at a time, at
    /// most `DOWNLOADS_IN_FLIGHT` in all), or the failure remembered from a recent try.
    async fn chain(&self, url: &Url) -> Result<Arc<SigningCert>, Rejection> {
        let key = url.to_string();
        if let Some(failure) = self.failed.get(&key).await {
            return Err(failure);
        }
        let fetched = self
            .certs
            .try_get_with(key.clone(), async {
                let _permit = self.downloads.try_acquire().map_err(|_| {
                    Rejection::CertFetch("too many certificate downloads in flight".into())
                })?;
                let checked = self.fetch_and_check(url).await;
                if let Err(e) = &checked {
                    self.failed.insert(key.clone(), e.clone()).await;
                }
                checked
            })
            .await;
        fetched.map_err(|e: Arc<Rejection>| (*e).clone())
    }

    async fn fetch_and_check(&self, url: &Url) -> Result<Arc<SigningCert>, Rejection> {
        let pem = self
            .fetcher
            .fetch(url)
            .await
            .map_err(Rejection::CertFetch)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| Rejection::CertChain(format!("bad PEM: {e}")))?;
        let (leaf_der, intermediates) = chain
            .split_first()
            .ok_or_else(|| Rejection::CertChain("empty chain".into()))?;
        let (valid_from, valid_until) = validity(&chain)?;
        let now = self.now_secs();
        if now < valid_from || now > valid_until {
            return Err(Rejection::CertExpired);
        }
        let leaf = webpki::EndEntityCert::try_from(leaf_der)
            .map_err(|e| Rejection::CertChain(e.to_string()))?;
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.roots,
            intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64)),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                Rejection::CertExpired
            }
            other => Rejection::CertChain(other.to_string()),
        })?;
        let name =
            ServerName::DnsName(DnsName::try_from(SIGNING_CERT_SAN).expect("a valid DNS name"));
        leaf.verify_is_valid_for_subject_name(&name)
            .map_err(|_| Rejection::CertName)?;
        tracing::info!(url = %url, "signing certificate chain verified");
        Ok(Arc::new(SigningCert {
            leaf: leaf_der.clone(),
            valid_from,
            valid_until,
        }))
    }

    /// Checks what only the parsed request can tell: its age and the skill it is for.
    pub fn check_request(
        &self,
        timestamp: &str,
        application_id: Option<&str>,
    ) -> Result<(), Rejection> {
        let ts =
            time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
                .map_err(|_| Rejection::Timestamp)?
                .unix_timestamp();
        let now = self.now_secs();
        if now - ts > MAX_REQUEST_AGE.as_secs() as i64
            || ts - now > MAX_FUTURE_SKEW.as_secs() as i64
        {
            return Err(Rejection::Timestamp);
        }
        match application_id {
            Some(id) if self.skill_ids.iter().any(|s| s == id) => Ok(()),
            _ => Err(Rejection::SkillId),
        }
    }
}

/// The latest `notBefore` and the earliest `notAfter` over the chain.
fn validity(chain: &[CertificateDer<'_>]) -> Result<(i64, i64), Rejection> {
    let mut from = i64::MIN;
    let mut until = i64::MAX;
    for der in chain {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Rejection::CertChain(format!("unreadable certificate: {e}")))?;
        from = from.max(cert.validity().not_before.timestamp());
        until = until.min(cert.validity().not_after.timestamp());
    }
    Ok((from, until))
}

/// The rules for `SignatureCertChainUrl`: https, host s3.amazonaws.com (any case), port 443
/// if any, path under `/echo.api/` once dot segments are resolved.
pub fn check_cert_url(raw: &str) -> Result<Url, Rejection> {
    let url = Url::parse(raw.trim()).map_err(|_| Rejection::CertUrl("not a URL"))?;
    if url.scheme() != "https" {
        return Err(Rejection::CertUrl("scheme is not https"));
    }
    // The parser lowercases the host and drops the default port (443 for https).
    if url.host_str() != Some("s3.amazonaws.com") {
        return Err(Rejection::CertUrl("host is not s3.amazonaws.com"));
    }
    if url.port().is_some() {
        return Err(Rejection::CertUrl("port is not 443"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Rejection::CertUrl("credentials in URL"));
    }
    // The parser has already resolved `.` and `..` segments.
    if !url.path().starts_with("/echo.api/") {
        return Err(Rejection::CertUrl("path is not under /echo.api/"));
    }
    Ok(url)
}
