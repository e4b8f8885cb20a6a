//! The `encore` command.

use clap::Parser;
use encore::offline;
use encore::settings::{CatalogCommand, Cli, Command, LogFormat, ModelCommand};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

// mimalloc: fewer cycles in malloc/free than glibc's allocator under the server's many
// small, short-lived allocations (measured with benches/alexa_load.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Say(_) => "warn",
        _ => "info",
    };
    let filter = match &cli.log {
        Some(spec) => EnvFilter::try_new(spec).unwrap_or_else(|e| {
            eprintln!("encore: ignoring --log {spec:?}: {e}");
            EnvFilter::new(default_level)
        }),
        None => EnvFilter::new(default_level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let result = match &cli.command {
        Command::Serve(args) => match encore::app::Application::build(args).await {
            Ok(app) => app.run_until(encore::app::shutdown_signal()).await,
            Err(e) => Err(e),
        },
        Command::Init(args) => encore::app::init(&args.storage)
            .await
            .map(|done| println!("{done}")),
        Command::Consume(args) => encore::app::consume(&args.storage, args.once)
            .await
            .map(|done| println!("{done}")),
        Command::Say(args) => encore::say::run(args).await,
        Command::Catalog(CatalogCommand::Import(args)) => {
            offline::catalog_import(args).map(|done| println!("{done}"))
        }
        Command::Catalog(CatalogCommand::Synth(args)) => {
            offline::catalog_synth(args).map(|done| println!("{done}"))
        }
        Command::Train(args) => offline::train(args).map(|done| println!("{done}")),
        Command::Evaluate(args) => offline::run_evaluate(args).map(|done| println!("{done}")),
        Command::Model(ModelCommand::Import(args)) => {
            offline::model_import(args).map(|done| println!("{done}"))
        }
        Command::BatchRecommend(args) => offline::batch_recommend(args)
            .await
            .map(|done| println!("{done}")),
        Command::Report(args) => encore::report::run(args).await.map(|r| print!("{r}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("encore: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
