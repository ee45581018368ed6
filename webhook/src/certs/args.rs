//! The `certs` command line and its validation: Kubernetes names, SANs, validity periods.

use std::path::PathBuf;

use clap::{Args, FromArgMatches};

use super::{CertsError, Result};

/// Defaults shared with `manifests/` (keep them in step with the kustomize base).
pub mod defaults {
    /// Namespace of the webhook (`manifests/namespace.yaml`).
    pub const NAMESPACE: &str = "status-reporter-system";
    /// Name of the webhook's Service (`manifests/service.yaml`).
    pub const SERVICE: &str = "status-reporter-webhook";
    /// Name of the TLS Secret the webhook Deployment mounts.
    pub const SECRET: &str = "status-reporter-webhook-tls";
    /// Name of the MutatingWebhookConfiguration.
    pub const WEBHOOK_CONFIG: &str = "status-reporter-webhook";
    /// Names of the webhook entries inside the MutatingWebhookConfiguration (annotation
    /// opt-in, namespace opt-in), comma-separated: each gets the caBundle.
    pub const WEBHOOK_NAME: &str =
        "jobs.status-reporter.hyperfleet.io,namespace-jobs.status-reporter.hyperfleet.io";
}

/// Longest accepted `--days`.
const MAX_DAYS: u32 = 3650;
/// Longest accepted `--ca-days`.
const MAX_CA_DAYS: u32 = 36500;

/// Arguments of the `certs` subcommand. Every flag also reads the env var shown.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Namespace the webhook runs in (part of the certificate's DNS names and of the Secret).
    #[arg(long, env = "CERTS_NAMESPACE", default_value = defaults::NAMESPACE)]
    pub namespace: String,

    /// Name of the webhook's Service; the certificate is valid for `<service>`,
    /// `<service>.<namespace>`, `<service>.<namespace>.svc` and
    /// `<service>.<namespace>.svc.<cluster-domain>`.
    #[arg(long, env = "CERTS_SERVICE", default_value = defaults::SERVICE)]
    pub service: String,

    /// Name of the `kubernetes.io/tls` Secret written to `secret.yaml`.
    #[arg(long, env = "CERTS_SECRET_NAME", default_value = defaults::SECRET)]
    pub secret_name: String,

    /// Name of the MutatingWebhookConfiguration that receives the caBundle.
    #[arg(long, env = "CERTS_WEBHOOK_CONFIG", default_value = defaults::WEBHOOK_CONFIG)]
    pub webhook_config: String,

    /// Names of the webhook entries (in that configuration) that receive the caBundle,
    /// comma-separated.
    #[arg(long, env = "CERTS_WEBHOOK_NAME", default_value = defaults::WEBHOOK_NAME)]
    pub webhook_name: String,

    /// Cluster DNS domain, for the fully qualified Service name.
    #[arg(long, env = "CERTS_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Extra subject alternative names (DNS names or IP addresses), comma-separated or repeated,
    /// e.g. `localhost,127.0.0.1` to run the webhook outside the cluster.
    #[arg(long = "extra-san", env = "CERTS_EXTRA_SANS", value_delimiter = ',')]
    pub extra_sans: Vec<String>,

    /// Validity of the serving certificate, in days (1–3650).
    #[arg(long, env = "CERTS_DAYS", default_value_t = 365)]
    pub days: u32,

    /// Validity of a newly created CA, in days (1–36500); must outlast the serving certificate.
    #[arg(long, env = "CERTS_CA_DAYS", default_value_t = 3650)]
    pub ca_days: u32,

    /// Directory to write into (created if missing). An existing `ca.crt` + `ca.key` there is
    /// reused, so re-running only renews the serving certificate.
    #[arg(long, env = "CERTS_OUT_DIR", default_value = "webhook-certs")]
    pub out_dir: PathBuf,

    /// Make a new CA even if the out dir has one; the old CA is kept as `ca.previous.crt` and
    /// stays in the caBundle until that file is deleted and the command re-run.
    #[arg(long, env = "CERTS_ROTATE_CA")]
    pub rotate_ca: bool,

    /// Kustomize base the generated `kustomization.yaml` builds on. Default: `manifests` if that
    /// directory exists here; otherwise no `kustomization.yaml` is written.
    #[arg(long, env = "CERTS_KUSTOMIZE_BASE")]
    pub kustomize_base: Option<PathBuf>,
}

impl CertsArgs {
    /// The arguments `certs FLAGS…` gets, clap's defaults (and `CERTS_*` env vars) filling in
    /// the rest: for callers that build them in code, so the defaults live in one place.
    pub fn from_flags<I, T>(flags: I) -> std::result::Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = CertsArgs::augment_args(clap::Command::new("certs"));
        let matches = command.try_get_matches_from(
            std::iter::once("certs".into()).chain(flags.into_iter().map(Into::into)),
        )?;
        CertsArgs::from_arg_matches(&matches)
    }
}

/// The webhook entry names of `--webhook-name` (comma-separated).
pub fn webhook_names(args: &CertsArgs) -> impl Iterator<Item = &str> {
    args.webhook_name.split(',').map(str::trim)
}

/// Checks the arguments and returns the SANs of the serving certificate, most specific first.
pub fn validate(args: &CertsArgs) -> Result<Vec<String>> {
    check_label("namespace", &args.namespace)?;
    check_label("service", &args.service)?;
    check_subdomain("secret-name", &args.secret_name)?;
    check_subdomain("webhook-config", &args.webhook_config)?;
    for name in webhook_names(args) {
        check_subdomain("webhook-name", name)?;
        if name.split('.').count() < 3 {
            return Err(CertsError::InvalidName {
                flag: "webhook-name",
                value: name.to_owned(),
                reason: "Kubernetes requires a fully qualified name with at least three segments, e.g. jobs.example.com",
            });
        }
    }
    check_subdomain("cluster-domain", &args.cluster_domain)?;
    check_days("days", args.days, MAX_DAYS)?;
    check_days("ca-days", args.ca_days, MAX_CA_DAYS)?;

    let (svc, ns) = (&args.service, &args.namespace);
    let mut sans = vec![
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.{}", args.cluster_domain),
        format!("{svc}.{ns}"),
        svc.clone(),
    ];
    for extra in &args.extra_sans {
        let extra = extra.trim();
        if extra.is_empty() {
            continue;
        }
        let is_dns = extra
            .strip_prefix("*.")
            .unwrap_or(extra)
            .split('.')
            .all(is_label);
        if extra.parse::<std::net::IpAddr>().is_err() && !(is_dns && extra.len() <= 253) {
            return Err(CertsError::InvalidSan {
                value: extra.to_owned(),
            });
        }
        if !sans.iter().any(|s| s == extra) {
            sans.push(extra.to_owned());
        }
    }
    Ok(sans)
}

fn check_label(flag: &'static str, value: &str) -> Result<()> {
    if is_label(value) {
        Ok(())
    } else {
        Err(CertsError::InvalidName {
            flag,
            value: value.to_owned(),
            reason: "expected a DNS-1123 label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        })
    }
}

fn check_subdomain(flag: &'static str, value: &str) -> Result<()> {
    if value.len() <= 253 && value.split('.').all(is_label) {
        Ok(())
    } else {
        Err(CertsError::InvalidName {
            flag,
            value: value.to_owned(),
            reason: "expected a DNS-1123 subdomain: up to 253 characters of dot-separated lowercase labels (letters, digits, '-')",
        })
    }
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn check_days(flag: &'static str, value: u32, max: u32) -> Result<()> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(CertsError::InvalidDays { flag, value, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_kubernetes_does() {
        assert!(is_label("status-reporter-system"));
        assert!(!is_label("Status"));
        assert!(!is_label("-a"));
        assert!(!is_label(&"a".repeat(64)));
        let args = CertsArgs::from_flags(["--namespace", "Bad_NS"]).unwrap();
        let err = validate(&args).unwrap_err().to_string();
        assert!(err.contains("--namespace \"Bad_NS\""), "{err}");
        assert!(err.contains("DNS-1123 label"), "{err}");
    }

    #[test]
    fn flags_left_out_take_the_command_line_defaults() {
        let args = CertsArgs::from_flags(["--days", "30"]).unwrap();
        assert_eq!(args.days, 30);
        assert_eq!(args.ca_days, 3650);
        assert_eq!(args.namespace, defaults::NAMESPACE);
        assert_eq!(args.out_dir, PathBuf::from("webhook-certs"));
        assert!(CertsArgs::from_flags(["--days", "many"]).is_err());
    }
}
