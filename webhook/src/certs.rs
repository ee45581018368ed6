//! `status-reporter-webhook certs`: creates the webhook's serving certificate without
//! cert-manager or openssl. Owned by the deploy work; see `certs/README.md`.

/// Arguments of the `certs` subcommand.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {}

/// Errors of the `certs` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {}

/// Runs the `certs` subcommand.
pub fn run(_args: &CertsArgs) -> Result<(), CertsError> {
    Ok(())
}
