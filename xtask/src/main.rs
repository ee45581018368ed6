//! `cargo xtask`: see the library's documentation.

#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use xtask::images_json::Record;
use xtask::workspace::Workspace;

/// Repository automation: OCI image archives written without a container engine.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build the release binaries (as the Dockerfiles do) and write
    /// <target>/images/status-reporter.oci.tar and status-reporter-webhook.oci.tar
    Images {
        /// Registry and optional path the image names start with
        #[arg(long, default_value = "localhost", value_name = "REGISTRY[/PATH]")]
        registry: String,
        /// The tag [default: the package version]
        #[arg(long)]
        tag: Option<String>,
        /// The org.opencontainers.image.revision label, e.g. "$(git rev-parse HEAD)"
        #[arg(long, default_value = "unknown")]
        revision: String,
        /// Package the binaries already in <target>/release instead of building them
        #[arg(long)]
        skip_build: bool,
    },
    /// Write the real-node tests' images: <target>/images/test/pause.oci.tar
    /// (localhost/test/pause:0.1) and adapter.oci.tar (localhost/test/adapter:0.1)
    TestImages,
    /// Read back every archive in <target>/images/images.json, check its layout, and run each
    /// image's binary from its unpacked layer (needs `unshare`, user namespaces)
    CheckImages,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let workspace = Workspace::current().context("reading the workspace")?;
    match cli.task {
        Task::Images {
            registry,
            tag,
            revision,
            skip_build,
        } => {
            let options = xtask::ProductOptions {
                registry,
                tag,
                revision,
                skip_build,
            };
            let records = xtask::product_images(&workspace, &options)?;
            print(&workspace, &records);
        }
        Task::TestImages => {
            let records = xtask::test_images(&workspace)?;
            print(&workspace, &records);
        }
        Task::CheckImages => {
            for line in xtask::check_images(&workspace)? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// One line per image: name, digest, sizes, archive.
fn print(workspace: &Workspace, records: &[Record]) {
    let images_dir = workspace.images_dir();
    for Record { archive, summary } in records {
        println!(
            "{}  {}  {:.2} MB compressed ({} bytes), {:.2} MB unpacked  {}",
            summary.name,
            summary.digest,
            summary.compressed_size as f64 / 1e6,
            summary.compressed_size,
            summary.uncompressed_size as f64 / 1e6,
            images_dir.join(archive).display(),
        );
    }
    println!(
        "recorded in {}",
        xtask::images_json::path(&images_dir).display()
    );
}
