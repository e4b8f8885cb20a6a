//! `encore serve`: the HTTP server. Its arguments are the server's settings
//! (`crate::settings::ServeArgs`), which the composition root builds from.

use crate::app::{Server, shutdown_signal};
use crate::settings::ServeArgs;

pub async fn run(args: &ServeArgs) -> anyhow::Result<()> {
    Server::build(args)
        .await?
        .run_until(shutdown_signal())
        .await
}
