//! Encore: the backend of a voice-assistant music skill.
//!
//! # Layout
//! - [`http`]: the axum router and handlers (transport only).
//! - [`skill`]: the Alexa wire format, request verification, rendering of responses.
//! - [`api`]: the mobile API's wire types (`/v1`) and its bearer-token (JWT) verifier.
//! - [`interaction`]: the interaction model in `intents/`, slot resolution, the text parser.
//! - [`service`]: the use cases: command in, outcome out.
//! - [`domain`]: tracks, moods, profiles, queues.
//! - [`store`]: `ProfileStore`, its embedded (redb) and DynamoDB implementations, the profile cache.
//! - [`feedback`]: feedback events (a public contract), `FeedbackSink` and the local log.
//! - [`recommend`]: `Recommender`, the catalog and model versions in `models/`, ranking,
//!   the bandit, the recommendation cache, the remote endpoint; training and evaluation.
//! - [`offline`]: the offline commands (catalog import, train, evaluate, batch-recommend).
//! - [`report`]: `encore report`, the A/B read-out of the feedback events.
//! - [`observe`]: Prometheus metrics and per-route request accounting.
//! - [`app`], [`settings`], [`say`]: start-up, configuration, the `say` command.
//!
//! See `ARCHITECTURE.md` for one request's walk through these parts.

pub mod api;
pub mod app;
pub mod aws;
pub mod domain;
pub mod feedback;
pub mod http;
pub mod interaction;
pub mod observe;
pub mod offline;
pub mod recommend;
pub mod report;
pub mod say;
pub mod service;
pub mod settings;
pub mod skill;
pub mod store;
