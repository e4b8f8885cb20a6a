//! Encore: the backend of a voice-assistant music skill.
//!
//! # Layout
//! Each module may use only the ones below it in this list (`src/architecture.rs`, a test,
//! holds the code to that):
//! - [`cli`]: one file per `encore` subcommand: its arguments and its `run`.
//! - [`offline`]: training, evaluation, synthesis, the A/B report; events through one source.
//! - [`app`]: the composition root: settings -> parts -> bound server -> shutdown.
//! - [`settings`]: the server's typed settings (flags with environment variables).
//! - [`http`]: the axum router and handlers (transport only).
//! - [`skill`]: the Alexa wire format, request verification, rendering of responses.
//! - [`api`]: the mobile API's wire types (`/v1`), the text voice answer, the JWT verifier.
//! - [`interaction`]: the interaction model in `intents/`, the text parser, the spoken words.
//! - [`service`]: the use cases: command in, outcome out.
//! - [`feedback`]: feedback events (a public contract), `FeedbackSink`, the log, Kinesis.
//! - [`recommend`]: serving only: `Recommender`, the catalog, model versions, ranking.
//! - [`store`]: `ProfileStore`, its embedded (redb) and DynamoDB implementations, the cache.
//! - [`objects`]: object storage (a directory or S3) for model versions and the archive.
//! - [`aws`], [`observe`], [`error`]: the shared AWS SDK configuration; Prometheus metrics;
//!   error causes and chains.
//! - [`domain`]: tracks, moods, profiles, queues: pure types and rules.
//!
//! See `ARCHITECTURE.md` for one request's walk through these parts.

pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod domain;
pub mod error;
pub mod feedback;
pub mod http;
pub mod interaction;
pub mod objects;
pub mod observe;
pub mod offline;
pub mod recommend;
pub mod service;
pub mod settings;
pub mod skill;
pub mod store;

#[cfg(test)]
mod architecture;
