//! `status-reporter`: the sidecar (no subcommand), `check-result FILE` or `wait job/NAME`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use status_reporter::config::{Cli, Command, Config, WaitConfig};
use status_reporter::{check_result, job_status, logging, run, shutdown, wait};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckResult { file }) = &cli.command {
        let code = check_result::run(file, &mut std::io::stdout(), &mut std::io::stderr());
        return ExitCode::from(code as u8);
    }
    if let Some(Command::Wait(args)) = &cli.command {
        let code = match WaitConfig::from_args(args) {
            Ok(cfg) => wait_within_timeout(cfg),
            Err(e) => {
                let _ = check_result::write_line(
                    &mut std::io::stderr(),
                    &format!("status-reporter wait: {e}"),
                );
                wait::EXIT_ERROR
            }
        };
        return ExitCode::from(code as u8);
    }
    let cfg = match Config::from_raw(&cli.raw) {
        Ok(c) => c,
        Err(e) => {
            let _ =
                check_result::write_line(&mut std::io::stderr(), &format!("status-reporter: {e}"));
            return ExitCode::from(run::EXIT_CONFIG as u8);
        }
    };
    logging::init(cfg.log_level, cfg.log_format);
    match sidecar(cfg) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "status reporter failed");
            ExitCode::from(1)
        }
    }
}

/// `wait`, bounded by its `--timeout` whatever it is doing: kube runs a kubeconfig's credential
/// plugin as a blocking child process, which no timer inside the runtime can interrupt, so the
/// wait runs on a thread of its own and this one keeps the time. Its own timer (with the last
/// progress in its message) fires first; this one is the backstop.
fn wait_within_timeout(cfg: WaitConfig) -> i32 {
    const BACKSTOP_GRACE: std::time::Duration = std::time::Duration::from_millis(250);
    let timeout = cfg.timeout;
    let target = format!("job {}", cfg.job);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let code = match wait_for(&cfg) {
            Ok(code) => code,
            Err(e) => {
                let _ = check_result::write_line(
                    &mut std::io::stderr(),
                    &format!("status-reporter wait: {e:#}"),
                );
                wait::EXIT_ERROR
            }
        };
        let _ = tx.send(code);
    });
    match rx.recv_timeout(timeout + BACKSTOP_GRACE) {
        Ok(code) => code,
        Err(_) => {
            let _ = check_result::write_line(
                &mut std::io::stderr(),
                &format!(
                    "status-reporter wait: timed out after {} waiting for {target} (the kubeconfig's credential plugin or the API server did not answer)",
                    status_reporter::go_duration::format(timeout)
                ),
            );
            wait::EXIT_TIMEOUT
        }
    }
}

fn wait_for(cfg: &WaitConfig) -> anyhow::Result<i32> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let config = kube::Config::infer()
            .await
            .map_err(|e| status_reporter::Error::KubeConfig(e.to_string()))?;
        // The context's namespace reaches request paths as `-n` does: held to the same rule.
        let namespace = config.default_namespace.clone();
        if cfg.namespace.is_none() {
            contract::validate::job_namespace(Some(&namespace)).map_err(|why| {
                status_reporter::Error::KubeConfig(format!(
                    "the kubeconfig context's namespace must be {}, got: {namespace:?}; pass -n NAMESPACE",
                    why.accepted()
                ))
            })?;
        }
        let client = status_reporter::client::build(config)?;
        Ok(wait::run(
            cfg,
            client,
            &namespace,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
        .await)
    })
}

fn sidecar(cfg: Config) -> anyhow::Result<i32> {
    // One TLS crypto provider for the whole process (ring); ignore "already installed".
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A sidecar in every adapter pod: one thread is plenty and keeps memory small.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let signals = shutdown::Signals::install();
        let client = status_reporter::client::connect().await?;
        Ok(run::run(
            cfg,
            client,
            signals,
            job_status::system_clock(),
            run::Timing::default(),
        )
        .await)
    })
}
