//! The AWS SDK configuration shared by the DynamoDB store and the Kinesis stream: region and
//! credentials from the standard sources (region `us-east-1` if none), an optional endpoint
//! (a local server), explicit timeouts and the standard retry policy. Built once per client.

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `None`: the regional AWS endpoints.
    pub endpoint: Option<String>,
    pub connect_timeout: Duration,
    /// One attempt of one call.
    pub attempt_timeout: Duration,
    /// One call, retries included.
    pub operation_timeout: Duration,
    /// Attempts per call (the first one included).
    pub max_attempts: u32,
}

impl AwsSettings {
    /// Connect in 500 ms, three attempts each with a third of `operation_timeout`.
    pub fn new(endpoint: Option<String>, operation_timeout: Duration) -> Self {
        AwsSettings {
            endpoint,
            connect_timeout: Duration::from_millis(500),
            attempt_timeout: operation_timeout / 3,
            operation_timeout,
            max_attempts: 3,
        }
    }
}

pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(Duration::from_millis(20));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else("us-east-1"))
        .timeout_config(timeouts)
        .retry_config(retry);
    if let Some(url) = &settings.endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
