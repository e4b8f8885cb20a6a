//! The `encore` command: parses the command line and runs the subcommand (`src/cli/`).

use clap::Parser;
use encore::cli::Cli;

// mimalloc: fewer cycles in malloc/free than glibc's allocator under the server's many
// small, short-lived allocations (measured with benches/alexa_load.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli.init_logging();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("encore: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
