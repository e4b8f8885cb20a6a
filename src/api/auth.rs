//! Verifying the mobile app's bearer tokens (JWT). The algorithms are pinned (RS256 and
//! ES256; HS256 only when a development secret is configured, never `none`); `exp`, `nbf`,
//! `iss` and `aud` are checked with a small leeway; the user id is `sub`. Keys come from a
//! JWKS URL (fetched with reqwest, cached, fetched again on an unknown `kid` at most once per
//! `refetch_interval`) or from a local JWKS or PEM file. The same verifier maps a linked
//! Alexa account's `accessToken` to the app's user id.

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    JwksUrl(String),
    /// A JWKS document or a PEM public key.
    File(PathBuf),
    /// A shared secret for HS256: development only.
    DevSecret(String),
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
    pub leeway: Duration,
    /// The shortest time between two JWKS fetches caused by unknown `kid`s.
    pub refetch_interval: Duration,
}

/// Why a token was refused. Each answers 401; the label goes into the error body and the
/// `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token's algorithm is not accepted")]
    WrongAlgorithm,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the token has no subject")]
    NoSubject,
}

impl AuthError {
    /// A short machine-readable reason.
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed => "malformed_token",
            AuthError::Expired => "expired_token",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAlgorithm => "wrong_algorithm",
            AuthError::BadSignature => "bad_signature",
            AuthError::UnknownKey => "unknown_key",
            AuthError::NoSubject => "no_subject",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key source (a file or URL) could not be read or parsed.
    #[error("cannot read the keys in {from}")]
    Read {
        from: String,
        #[source]
        source: crate::error::Cause,
    },
    #[error("no usable key in {0}")]
    NoKey(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

/// Keys by `kid` (keys without one under the empty string).
type Keys = HashMap<String, Arc<DecodingKey>>;

pub struct JwtVerifier {
    /// The pinned algorithms, each with its validation (jsonwebtoken wants every algorithm
    /// of a validation to match the key's family, so there is one per algorithm).
    validations: Vec<(Algorithm, Validation)>,
    keys: ArcSwap<Keys>,
    source: KeySource,
    client: reqwest::Client,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    refetch_interval: Duration,
}

impl JwtVerifier {
    /// Builds the verifier and loads its keys (a JWKS URL is fetched now: a server that
    /// cannot get its keys should not start).
    pub async fn new(settings: JwtSettings) -> Result<Self, KeyError> {
        let algorithms = match settings.keys {
            KeySource::DevSecret(_) => vec![Algorithm::HS256],
            _ => vec![Algorithm::RS256, Algorithm::ES256],
        };
        let validations = algorithms
            .into_iter()
            .map(|alg| {
                let mut v = Validation::new(alg);
                v.leeway = settings.leeway.as_secs();
                v.validate_nbf = true;
                v.set_audience(&[&settings.audience]);
                v.set_issuer(&[&settings.issuer]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (alg, v)
            })
            .collect();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client builds");
        let verifier = JwtVerifier {
            validations,
            keys: ArcSwap::from_pointee(Keys::new()),
            source: settings.keys,
            client,
            last_fetch: tokio::sync::Mutex::new(None),
            refetch_interval: settings.refetch_interval,
        };
        let keys = verifier.load_keys().await?;
        verifier.keys.store(Arc::new(keys));
        Ok(verifier)
    }

    async fn load_keys(&self) -> Result<Keys, KeyError> {
        match &self.source {
            KeySource::DevSecret(secret) => Ok(HashMap::from([(
                String::new(),
                Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            )])),
            KeySource::File(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
                    from: name.clone(),
                    source: crate::error::cause(e),
                })?;
                if text.trim_start().starts_with("-----BEGIN") {
                    let key = DecodingKey::from_rsa_pem(text.as_bytes())
                        .or_else(|_| DecodingKey::from_ec_pem(text.as_bytes()))
                        .map_err(|e| KeyError::Read {
                            from: name.clone(),
                            source: crate::error::cause(e),
                        })?;
                    return Ok(HashMap::from([(String::new(), Arc::new(key))]));
                }
                keys_of(&text, &name)
            }
            KeySource::JwksUrl(url) => {
                let text = self
                    .client
                    .get(url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| KeyError::Read {
                        from: url.clone(),
                        source: crate::error::cause(e),
                    })?
                    .text()
                    .await
                    .map_err(|e| KeyError::Read {
                        from: url.clone(),
                        source: crate::error::cause(e),
                    })?;
                keys_of(&text, url)
            }
        }
    }

    /// Fetches the JWKS again unless it was fetched within `refetch_interval`.
    async fn refresh(&self) -> bool {
        if !matches!(self.source, KeySource::JwksUrl(_)) {
            return false;
        }
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.refetch_interval) {
            return false;
        }
        *last = Some(Instant::now());
        match self.load_keys().await {
            Ok(keys) => {
                tracing::info!(
                    keys = keys.len(),
                    "JWKS fetched again for an unknown key id"
                );
                self.keys.store(Arc::new(keys));
                true
            }
            Err(e) => {
                tracing::warn!(error = %crate::error::Chain(&e), "JWKS fetch failed; the known keys stay");
                false
            }
        }
    }

    fn key_for(&self, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
        let keys = self.keys.load();
        match kid {
            // A key file (PEM) has no kid to match: its one key serves tokens that name any.
            Some(kid) => keys
                .get(kid)
                .or_else(|| keys.get("").filter(|_| keys.len() == 1))
                .cloned(),
            // No kid: only unambiguous with a single key.
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// The user id (`sub`) of a valid token.
    pub async fn verify(&self, token: &str) -> Result<String, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` and unknown algorithms fail to parse as a header.
            ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                if token.split('.').next().is_some_and(mentions_none_alg) {
                    AuthError::WrongAlgorithm
                } else {
                    AuthError::Malformed
                }
            }
            _ => AuthError::Malformed,
        })?;
        let Some((_, validation)) = self.validations.iter().find(|(alg, _)| *alg == header.alg)
        else {
            return Err(AuthError::WrongAlgorithm);
        };
        let key = match self.key_for(header.kid.as_deref()) {
            Some(key) => key,
            None if header.kid.is_some() && self.refresh().await => self
                .key_for(header.kid.as_deref())
                .ok_or(AuthError::UnknownKey)?,
            None => return Err(AuthError::UnknownKey),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                AuthError::WrongAlgorithm
            }
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::MissingRequiredClaim(c) if c == "sub" => AuthError::NoSubject,
            _ => AuthError::Malformed,
        })?;
        data.claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::NoSubject)
    }
}

/// Whether a JWT header segment (base64url JSON) names the algorithm `none`.
fn mentions_none_alg(segment: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("alg")
                .and_then(|a| a.as_str())
                .map(|a| a.eq_ignore_ascii_case("none"))
        })
        .unwrap_or(false)
}

fn keys_of(text: &str, name: &str) -> Result<Keys, KeyError> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| KeyError::Read {
        from: name.to_owned(),
        source: crate::error::cause(e),
    })?;
    let keys: Keys = set
        .keys
        .iter()
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((jwk.common.key_id.clone().unwrap_or_default(), Arc::new(key)))
        })
        .collect();
    if keys.is_empty() {
        return Err(KeyError::NoKey(name.to_owned()));
    }
    Ok(keys)
}
