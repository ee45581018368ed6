//! `status-reporter-webhook certs`: makes the webhook's serving certificate without
//! cert-manager or openssl (see `certs/README.md` for the rotation procedure).
//!
//! It writes a private CA and a serving certificate for the webhook Service's DNS names,
//! the `kubernetes.io/tls` Secret the Deployment mounts, and the `caBundle` the API server
//! needs to trust the webhook — as a kustomize patch for the MutatingWebhookConfiguration,
//! plus a ready overlay (`kustomization.yaml`) over the manifests, and printed base64 on stdout.
//!
//! Re-running it in the same directory re-issues the serving certificate with the existing
//! CA, so the `caBundle` does not change; `--rotate-ca` makes a new CA and keeps the old one
//! in the bundle (`ca.previous.crt`) until it is deleted.
//!
//! The core ([`issue`] and the `render_*` functions) is pure and takes the clock as an
//! argument; [`run`] is the thin file-system shell around it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

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

impl Default for CertsArgs {
    fn default() -> Self {
        CertsArgs {
            namespace: defaults::NAMESPACE.to_owned(),
            service: defaults::SERVICE.to_owned(),
            secret_name: defaults::SECRET.to_owned(),
            webhook_config: defaults::WEBHOOK_CONFIG.to_owned(),
            webhook_name: defaults::WEBHOOK_NAME.to_owned(),
            cluster_domain: "cluster.local".to_owned(),
            extra_sans: Vec::new(),
            days: 365,
            ca_days: 3650,
            out_dir: PathBuf::from("webhook-certs"),
            rotate_ca: false,
            kustomize_base: None,
        }
    }
}

/// Errors of the `certs` subcommand; each names what was wrong and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A Kubernetes object name or DNS name flag is malformed.
    #[error("--{flag} {value:?} is not valid: {reason}")]
    InvalidName {
        /// The flag, without dashes.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// A validity period is out of range.
    #[error("--{flag} {value} is out of range: accepted 1 to {max} days")]
    InvalidDays {
        /// The flag, without dashes.
        flag: &'static str,
        /// The value given.
        value: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// An `--extra-san` entry is neither an IP address nor a DNS name.
    #[error(
        "--extra-san {value:?} is not valid: expected a DNS name (lowercase labels of letters, digits, '-', optionally starting with '*.') or an IP address"
    )]
    InvalidSan {
        /// The value given.
        value: String,
    },
    /// The out dir could not be created.
    #[error("cannot create the out dir {path}: {source} (choose a writable --out-dir)")]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source} (is the out dir writable?)")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Only one half of an existing CA is present.
    #[error(
        "{present} exists but {missing} does not: restore it, or delete {present} (or pass --rotate-ca) to make a new CA"
    )]
    IncompleteCa {
        /// The file found.
        present: PathBuf,
        /// The file missing.
        missing: PathBuf,
    },
    /// The existing CA files cannot be used.
    #[error(
        "the existing CA in {dir} cannot be used: {reason} (pass --rotate-ca to make a new one)"
    )]
    BadCa {
        /// Out dir holding the CA.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The existing CA would expire before the new serving certificate.
    #[error(
        "the existing CA expires at {ca_not_after}, before the new serving certificate would ({cert_not_after}): pass --rotate-ca, or a smaller --days"
    )]
    CaExpiresTooSoon {
        /// CA expiry (RFC 3339).
        ca_not_after: String,
        /// Serving certificate expiry (RFC 3339).
        cert_not_after: String,
    },
    /// `--kustomize-base` does not point at a kustomization.
    #[error(
        "--kustomize-base {path}: no kustomization.yaml there (expected the manifests/ directory or one of its overlays)"
    )]
    KustomizeBase {
        /// Path given.
        path: PathBuf,
    },
    /// Key or certificate generation failed.
    #[error("generating the certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Rendering a manifest failed.
    #[error("rendering a manifest failed: {0}")]
    Render(#[from] serde_yaml_ng::Error),
}

/// Result alias for this module.
pub type Result<T, E = CertsError> = std::result::Result<T, E>;

/// An existing CA, as PEM text, to sign the serving certificate with.
#[derive(Debug, Clone)]
pub struct CaPem {
    /// Certificate (PEM).
    pub cert: String,
    /// PKCS#8 private key (PEM).
    pub key: String,
}

/// What [`issue`] produced, as PEM text.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The CA that signed the serving certificate (new or reused).
    pub ca: CaPem,
    /// Whether `ca` was made by this call.
    pub new_ca: bool,
    /// Serving certificate (PEM).
    pub tls_cert: String,
    /// Serving key, PKCS#8 (PEM).
    pub tls_key: String,
    /// DNS names and IP addresses the serving certificate is valid for.
    pub sans: Vec<String>,
    /// End of the serving certificate's validity.
    pub not_after: SystemTime,
}

/// How far `notBefore` is back-dated, so nodes with a slightly slow clock accept a fresh cert.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_DAYS: u32 = 3650;
const MAX_CA_DAYS: u32 = 36500;

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

/// Issues a serving certificate for `sans`, signed by `existing_ca` or by a new CA.
///
/// Pure apart from key generation: `now` is the clock.
pub fn issue(
    args: &CertsArgs,
    sans: &[String],
    existing_ca: Option<&CaPem>,
    now: SystemTime,
) -> Result<Issued> {
    let not_before = now - CLOCK_SKEW;
    let not_after = now + DAY * args.days;

    let (ca, new_ca) = match existing_ca {
        Some(ca) => (ca.clone(), false),
        None => (new_ca(args, not_before, now + DAY * args.ca_days)?, true),
    };
    let ca_key = KeyPair::from_pem(&ca.key).map_err(|e| bad_ca(args, format!("ca.key: {e}")))?;
    check_ca(args, &ca, &ca_key, not_after)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, &ca_key)
        .map_err(|e| bad_ca(args, format!("ca.crt: {e}")))?;

    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, sans[0].as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    Ok(Issued {
        ca,
        new_ca,
        tls_cert: cert.pem(),
        tls_key: key.serialize_pem(),
        sans: sans.to_vec(),
        not_after,
    })
}

fn new_ca(args: &CertsArgs, not_before: SystemTime, not_after: SystemTime) -> Result<CaPem> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{} CA ({})", args.service, args.namespace),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "status-reporter");
    // Path length 0: this CA only signs serving certificates, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CaPem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Refuses a CA that is not a CA, does not match its key, or expires before `cert_not_after`.
fn check_ca(args: &CertsArgs, ca: &CaPem, key: &KeyPair, cert_not_after: SystemTime) -> Result<()> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca.cert.as_bytes())
        .map_err(|e| bad_ca(args, format!("ca.crt is not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad_ca(args, format!("ca.crt is not an X.509 certificate: {e}")))?;
    if !cert.is_ca() {
        return Err(bad_ca(
            args,
            "ca.crt is not a CA certificate (basicConstraints CA:FALSE or missing)".to_owned(),
        ));
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(bad_ca(args, "ca.key does not belong to ca.crt".to_owned()));
    }
    let ca_not_after = cert.validity().not_after.timestamp();
    if ca_not_after < unix_seconds(cert_not_after) {
        return Err(CertsError::CaExpiresTooSoon {
            ca_not_after: rfc3339(ca_not_after),
            cert_not_after: rfc3339(unix_seconds(cert_not_after)),
        });
    }
    Ok(())
}

fn bad_ca(args: &CertsArgs, reason: String) -> CertsError {
    CertsError::BadCa {
        dir: args.out_dir.clone(),
        reason,
    }
}

/// The `kubernetes.io/tls` Secret the webhook Deployment mounts (`tls.crt`, `tls.key`, `ca.crt`).
pub fn render_secret(args: &CertsArgs, issued: &Issued) -> Result<String> {
    let data = BTreeMap::from([
        ("ca.crt".to_owned(), bytes(&issued.ca.cert)),
        ("tls.crt".to_owned(), bytes(&issued.tls_cert)),
        ("tls.key".to_owned(), bytes(&issued.tls_key)),
    ]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(args.secret_name.clone()),
            namespace: Some(args.namespace.clone()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/name".to_owned(),
                    "status-reporter-webhook".to_owned(),
                ),
                (
                    "app.kubernetes.io/part-of".to_owned(),
                    "status-reporter".to_owned(),
                ),
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    "status-reporter-webhook-certs".to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    Ok(format!(
        "# Generated by `status-reporter-webhook certs`; contains a private key — do not commit.\n{}",
        serde_yaml_ng::to_string(&secret)?
    ))
}

/// The caBundle: the current CA followed by `previous_ca` (during a CA rotation), base64.
pub fn ca_bundle_base64(issued: &Issued, previous_ca: Option<&str>) -> String {
    base64(&ca_bundle_pem(issued, previous_ca))
}

fn ca_bundle_pem(issued: &Issued, previous_ca: Option<&str>) -> String {
    let mut pem = issued.ca.cert.clone();
    if let Some(prev) = previous_ca {
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(prev);
    }
    pem
}

/// The webhook entry names of `--webhook-name` (comma-separated).
fn webhook_names(args: &CertsArgs) -> impl Iterator<Item = &str> {
    args.webhook_name.split(',').map(str::trim)
}

/// A kustomize strategic-merge patch setting the caBundle of every webhook entry.
pub fn render_ca_bundle_patch(args: &CertsArgs, ca_bundle_base64: &str) -> Result<String> {
    let webhooks: Vec<_> = webhook_names(args)
        .map(|name| {
            serde_json::json!({
                "name": name,
                "clientConfig": { "caBundle": ca_bundle_base64 },
            })
        })
        .collect();
    let patch = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": args.webhook_config },
        "webhooks": webhooks,
    });
    Ok(format!(
        "# Generated by `status-reporter-webhook certs`: the CA(s) the API server trusts for the webhook.\n{}",
        serde_yaml_ng::to_string(&patch)?
    ))
}

/// An overlay: `base` (relative to the out dir) plus the Secret and the caBundle patch.
pub fn render_kustomization(base: &str) -> String {
    let mut out = String::new();
    out.push_str(
        "# Generated by `status-reporter-webhook certs`: apply with `kubectl apply -k <this dir>`.\n",
    );
    out.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
    let _ = write!(
        out,
        "resources:\n- {base}\n- secret.yaml\npatches:\n- path: cabundle-patch.yaml\n"
    );
    out
}

/// Runs the subcommand: writes the files into `--out-dir`, a summary on stderr, and the
/// base64 caBundle on stdout (so `CA_BUNDLE=$(status-reporter-webhook certs)` works).
pub fn run(args: &CertsArgs) -> Result<()> {
    let sans = validate(args)?;
    let dir = &args.out_dir;
    let base = resolve_base(args)?;
    std::fs::create_dir_all(dir).map_err(|source| CertsError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    // Written first: keys must never land in git, even if a later step fails.
    write_file(&dir.join(".gitignore"), "*\n", false)?;

    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let previous_path = dir.join("ca.previous.crt");
    let existing = read_existing_ca(&ca_crt, &ca_key)?;
    let (existing_for_issue, retired) = match existing {
        Some(ca) if args.rotate_ca => (None, Some(ca.cert)),
        other => (other, None),
    };
    let issued = issue(args, &sans, existing_for_issue.as_ref(), SystemTime::now())?;

    if let Some(old) = &retired {
        write_file(&previous_path, old, false)?;
    }
    let previous = read_optional(&previous_path)?;
    if issued.new_ca {
        write_file(&ca_key, &issued.ca.key, true)?;
        write_file(&ca_crt, &issued.ca.cert, false)?;
    }
    write_file(&dir.join("tls.key"), &issued.tls_key, true)?;
    write_file(&dir.join("tls.crt"), &issued.tls_cert, false)?;
    write_file(
        &dir.join("secret.yaml"),
        &render_secret(args, &issued)?,
        true,
    )?;
    let bundle_pem = ca_bundle_pem(&issued, previous.as_deref());
    write_file(&dir.join("ca-bundle.crt"), &bundle_pem, false)?;
    let bundle = base64(&bundle_pem);
    write_file(
        &dir.join("cabundle-patch.yaml"),
        &render_ca_bundle_patch(args, &bundle)?,
        false,
    )?;
    if let Some(base) = &base {
        write_file(
            &dir.join("kustomization.yaml"),
            &render_kustomization(base),
            false,
        )?;
    }

    let mut summary = String::new();
    let _ = writeln!(summary, "wrote {}:", dir.display());
    let ca_note = if issued.new_ca {
        "new CA"
    } else {
        "existing CA reused, caBundle unchanged"
    };
    let _ = writeln!(summary, "  ca.crt, ca.key          ({ca_note})");
    if previous.is_some() {
        let _ = writeln!(
            summary,
            "  ca.previous.crt         (old CA, still in the caBundle: delete it and re-run once every webhook pod serves the new certificate)"
        );
    }
    let _ = writeln!(
        summary,
        "  tls.crt, tls.key        (valid until {}, for {})",
        rfc3339(unix_seconds(issued.not_after)),
        issued.sans.join(", ")
    );
    let _ = writeln!(
        summary,
        "  secret.yaml             (Secret {}/{})",
        args.namespace, args.secret_name
    );
    let _ = writeln!(
        summary,
        "  ca-bundle.crt, cabundle-patch.yaml (caBundle of {} / {})",
        args.webhook_config, args.webhook_name
    );
    match &base {
        Some(base) => {
            let _ = writeln!(
                summary,
                "  kustomization.yaml      ({base} + Secret + caBundle)\nnext: kubectl apply -k {}",
                dir.display()
            );
        }
        None => {
            let _ = writeln!(
                summary,
                "no kustomization.yaml (no --kustomize-base and no ./manifests): apply secret.yaml and patch the caBundle printed on stdout"
            );
        }
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(summary.as_bytes());
    println!("{bundle}");
    Ok(())
}

/// Finds the kustomize base and returns it relative to the out dir, as kustomize wants it.
fn resolve_base(args: &CertsArgs) -> Result<Option<String>> {
    let (base, explicit) = match &args.kustomize_base {
        Some(b) => (b.clone(), true),
        None => (PathBuf::from("manifests"), false),
    };
    if !base.join("kustomization.yaml").is_file() {
        return if explicit {
            Err(CertsError::KustomizeBase { path: base })
        } else {
            Ok(None)
        };
    }
    let base_abs = absolute(&base);
    let out_abs = absolute(&args.out_dir);
    Ok(Some(relative(&out_abs, &base_abs).display().to_string()))
}

fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    // Lexical normalisation: the out dir may not exist yet, so `canonicalize` can't be used.
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `to` expressed relative to the directory `from` (both absolute and normalised).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

fn read_existing_ca(crt: &Path, key: &Path) -> Result<Option<CaPem>> {
    match (read_optional(crt)?, read_optional(key)?) {
        (Some(cert), Some(key)) => Ok(Some(CaPem { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CertsError::IncompleteCa {
            present: crt.to_path_buf(),
            missing: key.to_path_buf(),
        }),
        (None, Some(_)) => Err(CertsError::IncompleteCa {
            present: key.to_path_buf(),
            missing: crt.to_path_buf(),
        }),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes via a temporary file and a rename, so an interrupted run never leaves half a key;
/// `private` files are created owner-only (0600).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    let err = |source| CertsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
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

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

/// Standard base64, as Kubernetes expects in `caBundle` and Secret `data` (k8s-openapi's
/// `ByteString` already encodes exactly that way).
fn base64(s: &str) -> String {
    match serde_json::to_value(bytes(s)) {
        Ok(serde_json::Value::String(encoded)) => encoded,
        // ByteString always serialises to a JSON string.
        _ => String::new(),
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// UTC timestamp as RFC 3339 (`2027-01-31T12:00:00Z`), for messages.
fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant): proleptic Gregorian calendar from days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn relative_paths_walk_up_to_the_common_parent() {
        assert_eq!(
            relative(Path::new("/r/out"), Path::new("/r/manifests")),
            PathBuf::from("../manifests")
        );
        assert_eq!(
            relative(Path::new("/r/a/b"), Path::new("/r/manifests/overlays/x")),
            PathBuf::from("../../manifests/overlays/x")
        );
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r")),
            PathBuf::from(".")
        );
    }

    #[test]
    fn names_are_checked_like_kubernetes_does() {
        assert!(is_label("status-reporter-system"));
        assert!(!is_label("Status"));
        assert!(!is_label("-a"));
        assert!(!is_label(&"a".repeat(64)));
        let args = CertsArgs {
            namespace: "Bad_NS".into(),
            ..CertsArgs::default()
        };
        let err = validate(&args).unwrap_err().to_string();
        assert!(err.contains("--namespace \"Bad_NS\""), "{err}");
        assert!(err.contains("DNS-1123 label"), "{err}");
    }
}
