//! `control-plane`: the real Kubernetes control plane of the end-to-end suites, for tests,
//! scripts and people.
//!
//! ```text
//! control-plane run [--release current|oldest] -- CMD [ARGS…]   # CMD with KUBECONFIG set, then stop
//! control-plane up [--release current|oldest]                   # until Enter or Ctrl-C
//! control-plane serve --release R --bin-dir D --state-dir S     # the supervisor (started by the harness)
//! ```
//! `run` and `up` join (or start) the control plane the suites share, which stops a few seconds
//! after its last user; `CMD` finds the pinned `kubectl` and `helm` first on `PATH`. The
//! current release comes with its node (pods with `nodeName: localhost`, images `localhost/`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::control_plane::{Cluster, Release, path_with, supervisor};

#[derive(Parser)]
#[command(
    name = "control-plane",
    about = "The pinned Kubernetes control plane of the end-to-end suites"
)]
struct Cli {
    #[arg(long, global = true, value_enum, default_value_t = Release::Current)]
    release: Release,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command against the control plane (KUBECONFIG set, the release's kubectl first on
    /// PATH); exits with its exit code.
    Run {
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Start (or join) the control plane and keep it up until Enter or Ctrl-C.
    Up,
    /// The supervisor process (started by the test harness).
    Serve {
        #[arg(long)]
        bin_dir: PathBuf,
        #[arg(long)]
        state_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Cli { release, command } = Cli::parse();
    match command {
        Cmd::Serve { bin_dir, state_dir } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let code = runtime.block_on(supervisor::serve(release, &bin_dir, &state_dir));
            ExitCode::from(code as u8)
        }
        Cmd::Run { command } => {
            let cluster = join(release);
            let status = std::process::Command::new(&command[0])
                .args(&command[1..])
                .env("KUBECONFIG", &cluster.kubeconfig)
                .env("PATH", path_with(&cluster.bin_dir))
                .status();
            match status {
                Ok(s) => ExitCode::from(s.code().unwrap_or(1) as u8),
                Err(e) => {
                    eprintln!("control-plane: cannot run {}: {e}", command[0]);
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Up => {
            let cluster = join(release);
            println!("KUBECONFIG={}", cluster.kubeconfig.display());
            println!("kubectl: {}", cluster.bin_dir.join("kubectl").display());
            eprintln!("control-plane: up; press Enter (or Ctrl-C) to leave it");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            ExitCode::SUCCESS
        }
    }
}

fn join(release: Release) -> Cluster {
    let cluster = Cluster::connect(release, "shared").unwrap_or_else(|e| {
        eprintln!("control-plane: {e}");
        std::process::exit(1)
    });
    if release == Release::Current {
        // The images under test on the node, for pods run by hand.
        cluster.node();
    }
    cluster
}
