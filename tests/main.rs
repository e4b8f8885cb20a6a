//! Every integration test in one binary, so the suite links once: one module per file
//! beside this one, and `common` (the harness: storage and server settings, fixtures, the
//! in-process router call, a server on a real listener, the local AWS server's address).
//! Tests that need the local DynamoDB/Kinesis server (`dynamo`, `kinesis`, `drills`, parts of
//! `report`) read its address from `ENCORE_TEST_AWS_ENDPOINT`, which `infra/local/run-tests.sh`
//! sets.

mod common;

mod api;
mod bounds;
mod cli;
mod consumer;
mod conversation;
mod dashboard;
mod drills;
mod dynamo;
mod feedback;
mod image;
mod kinesis;
mod model_loop;
mod nlu;
mod offline;
mod openapi;
mod operations;
mod package;
mod properties;
mod protocol;
mod recommend;
mod report;
mod serving;
mod spark;
mod store;
mod verification;
