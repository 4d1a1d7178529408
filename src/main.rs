//! The `hookgate` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookgate::commands::{self, LogOverrides};

#[derive(Parser)]
#[command(name = "hookgate", version, about = "A mutual-TLS gate for webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format, overriding [log] format: json or text
    #[arg(long, global = true, value_name = "json|text")]
    log_format: Option<String>,
    /// Log level, overriding [log] level: trace, debug, info, warn, error
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy
    Run {
        #[arg(long, env = "HOOKGATE_CONFIG", value_name = "FILE")]
        config: PathBuf,
    },
    /// Load and validate everything `run` would, print what is enforced
    Check {
        #[arg(long, env = "HOOKGATE_CONFIG", value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the SHA-1 and SHA-256 thumbprints of certificates (PEM bundles or DER files)
    Thumbprint {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run the gate on proxy.toml.example with the demo certificates and an echo upstream
    Demo {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Store every webhook first (durable delivery); the echo upstream refuses twice
        #[arg(long)]
        store: bool,
    },
    /// Inspect and replay the durable store through the config's admin listener (admin.token)
    Store {
        /// Required (given before or after the store command)
        #[arg(long, env = "HOOKGATE_CONFIG", value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Stored requests, newest first
    List {
        #[arg(long, value_name = "pending|dead|delivered")]
        state: Option<String>,
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
    },
    /// Deliver dead or delivered requests again
    Retry {
        /// Every dead request (of --route, if given)
        #[arg(long)]
        dead: bool,
        #[arg(long, value_name = "ROUTE", requires = "dead")]
        route: Option<String>,
        #[arg(value_name = "ID", required_unless_present = "dead")]
        ids: Vec<String>,
    },
    /// Remove requests from the store
    Purge {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = LogOverrides {
        format: cli.log_format,
        level: cli.log_level,
    };
    match cli.command {
        Command::Run { config } => commands::run(&config, &log),
        Command::Check { config } => commands::check(&config),
        Command::Thumbprint { files } => commands::thumbprint(&files),
        Command::Demo { config, store } => commands::demo(config, store, &log),
        Command::Store { config, action } => {
            let action = match action {
                StoreCommand::List { state, route } => commands::StoreAction::List { state, route },
                StoreCommand::Retry { dead, route, ids } => {
                    commands::StoreAction::Retry { ids, dead, route }
                }
                StoreCommand::Purge { ids } => commands::StoreAction::Purge { ids },
            };
            match config {
                Some(config) => commands::store(&config, action),
                None => {
                    eprintln!("error: hookgate store needs --config FILE (or HOOKGATE_CONFIG)");
                    ExitCode::from(1)
                }
            }
        }
    }
}
