//! `status-reporter-webhook`: `serve`, `inject`, `certs`.
#![forbid(unsafe_code)]

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use contract::LogLevel;
use status_reporter_webhook::logging::{self, LogFormat};
use status_reporter_webhook::{certs, offline, server};

/// Mutating admission webhook that adds the status-reporter sidecar to annotated Jobs.
#[derive(Debug, Parser)]
#[command(name = "status-reporter-webhook", version, about)]
struct Cli {
    /// Log level: trace, debug, info, warn or error (the reporter's LOG_LEVEL); dependencies
    /// log at warn.
    #[arg(long, global = true, env = "LOG_LEVEL", default_value = "info", value_parser = logging::parse_level)]
    log_level: LogLevel,

    /// Log format: json (structured, for clusters) or text.
    #[arg(
        long,
        global = true,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the admission webhook over HTTPS.
    Serve(server::ServeArgs),
    /// Inject the reporter into manifests offline; YAML out on stdout.
    Inject(offline::InjectArgs),
    /// Create the webhook's serving certificate.
    Certs(certs::CertsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = logging::init(cli.log_level, cli.log_format);
    let result = run(cli.command);
    logs.finish();
    result
}

fn run(command: Command) -> anyhow::Result<()> {
    // One crypto provider for the process (ring); a second would make rustls panic at use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match command {
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(server::serve(args))?;
        }
        Command::Inject(args) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let warnings = offline::run(&args, &mut out)?;
            out.flush().context("cannot write to stdout")?;
            for w in warnings {
                eprintln!("Warning: {w}");
            }
        }
        Command::Certs(args) => certs::run(&args)?,
    }
    Ok(())
}
