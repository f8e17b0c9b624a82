//! The `sessiond` binary: CLI, configuration, wiring of the concrete store, and the server.
//!
//! # Layout
//! - `cli`: the command-line surface (clap).
//! - `config`: layered settings and their validation; `config example`.
//! - `runtime`: opening the store, the master keyring and the vault.
//! - `server`: `serve`, with metrics, jobs and graceful shutdown.
//! - `listener`: the accept loop: connection limit, header and idle timeouts, descriptor limit.
//! - `scheduler`: timing of background jobs.
//! - `admin`: offline commands (apps, keys, users, webhooks, migrate, healthcheck).
//! - `webhooks`: webhook delivery on this node: the HTTP transport (timeouts, no redirects,
//!   the private-address rule) and the loop that runs the core's dispatcher.
//! - `telemetry`: logging.

mod admin;
mod cli;
mod config;
mod listener;
mod runtime;
mod scheduler;
mod server;
mod telemetry;
mod webhooks;

use std::process::ExitCode;

/// Requests allocate and free many small buffers; mimalloc's thread-local free lists serve them
/// at a fraction of glibc malloc's cost (measured in bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::FlagOverrides;

fn main() -> ExitCode {
    // Everything sessiond creates — the database and its WAL and shared-memory files, the key
    // file, temporary files — is for its own user only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::example_toml());
        return ExitCode::SUCCESS;
    }
    let mut flags = FlagOverrides {
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        log_format: cli.global.log_format.map(Into::into),
        ..FlagOverrides::default()
    };
    if let Command::Serve {
        listen,
        equisoft_trusted_listen,
        equisoft_application,
        public_url,
        console_listen,
        no_console,
    } = &cli.command
    {
        flags.console = match (console_listen, no_console) {
            (Some(addr), _) => Some(addr.clone()),
            (None, true) => Some("off".into()),
            (None, false) => None,
        };
        flags.public_url = public_url.clone();
        flags.listen = listen.clone();
        flags.equisoft_trusted_listen = equisoft_trusted_listen.clone();
        flags.equisoft_application = equisoft_application.clone();
    }
    let file = match &cli.command {
        Command::Config(ConfigCommand::Check { file: Some(f) }) => Some(f.clone()),
        _ => cli.global.config.clone(),
    };
    let cfg = match config::load(file.as_deref(), &flags).and_then(config::Settings::validate) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sessiond: {e}");
            return ExitCode::from(2);
        }
    };
    let unknown = config::unknown_env_vars();

    if let Command::Config(ConfigCommand::Check { .. }) = cli.command {
        for v in &unknown {
            eprintln!("sessiond: warning: unknown environment variable {v} is ignored");
        }
        println!(
            "configuration is valid (listen {}, database {})",
            cfg.listen,
            if cfg.uses_sqlite() {
                "sqlite"
            } else {
                "postgres"
            }
        );
        return ExitCode::SUCCESS;
    }

    let is_server = matches!(cli.command, Command::Serve { .. });
    // Commands other than `serve` only report problems; their output is the answer.
    let level = if is_server {
        cfg.log_level.as_str()
    } else {
        "warn"
    };
    telemetry::init(cfg.log_format, level, is_server);
    for v in &unknown {
        tracing::warn!(variable = %v, "unknown SESSIOND_ environment variable is ignored");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sessiond: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve { .. } => server::serve(cfg).await.map(|()| true),
            Command::Migrate => admin::migrate(&cfg).await.map(|()| true),
            Command::Apps(c) => admin::apps(&cfg, c).await.map(|()| true),
            Command::Keys(c) => admin::keys(&cfg, c).await.map(|()| true),
            Command::Webhooks(c) => admin::webhooks(&cfg, c).await.map(|()| true),
            Command::Users(c) => admin::users(&cfg, c).await.map(|()| true),
            Command::Operators(c) => admin::operators(&cfg, c).await.map(|()| true),
            Command::Healthcheck { url, live, timeout } => {
                admin::healthcheck(&cfg, url, live, timeout).await
            }
            Command::Config(_) => Ok(true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "command failed");
            eprintln!("sessiond: {e:#}");
            ExitCode::FAILURE
        }
    }
}
