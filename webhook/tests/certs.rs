//! The `certs` subcommand end to end on a real directory: the files it writes are a working
//! serving pair for the webhook Service, the Secret and caBundle patch are valid manifests,
//! re-running keeps the CA, and `--rotate-ca` keeps both CAs trusted during the overlap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use status_reporter_webhook::certs::{self, CertsArgs, CertsError};

const SERVICE_FQDN: &str = "status-reporter-webhook.status-reporter-system.svc";
const DAY: u64 = 24 * 60 * 60;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The arguments of a bare `certs` (clap's defaults).
fn defaults() -> CertsArgs {
    CertsArgs::from_flags(Vec::<String>::new()).expect("defaults parse")
}

fn args_in(dir: &Path) -> CertsArgs {
    CertsArgs {
        out_dir: dir.join("out"),
        ..defaults()
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

fn certs_in(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

fn roots(pem: &str) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in certs_in(pem) {
        store
            .add(cert)
            .expect("CA certificate is a usable trust anchor");
    }
    Arc::new(store)
}

fn server_config(out: &Path) -> Arc<ServerConfig> {
    let chain = certs_in(&read(out, "tls.crt"));
    let key = PrivateKeyDer::from_pem_slice(read(out, "tls.key").as_bytes()).expect("PEM key");
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("tls.crt and tls.key form a pair rustls accepts"),
    )
}

/// A full TLS handshake in memory: the client trusts `ca_pem` and connects to `name`.
fn handshake(server: Arc<ServerConfig>, ca_pem: &str, name: &str) -> Result<(), rustls::Error> {
    let client_config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem))
        .with_no_client_auth();
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut client = ClientConnection::new(Arc::new(client_config), name)?;
    let mut server = ServerConnection::new(server)?;
    // Bounded: a TLS 1.3 handshake needs two flights each way.
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        let mut buf = Vec::new();
        client.write_tls(&mut buf).expect("in-memory write");
        server
            .read_tls(&mut buf.as_slice())
            .expect("in-memory read");
        server.process_new_packets()?;
        let mut buf = Vec::new();
        server.write_tls(&mut buf).expect("in-memory write");
        client
            .read_tls(&mut buf.as_slice())
            .expect("in-memory read");
        client.process_new_packets()?;
    }
    panic!("handshake did not finish in 10 rounds");
}

fn verify_at(
    ca_pem: &str,
    leaf_pem: &str,
    name: &str,
    at: SystemTime,
) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_pem), provider())
        .build()
        .expect("verifier");
    let leaf = certs_in(leaf_pem).remove(0);
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let now = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).expect("after 1970"));
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], now)
        .map(|_| ())
}

fn parse_cert(pem: &str) -> (Vec<String>, i64, i64, bool) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    let sans = cert
        .subject_alternative_name()
        .expect("SAN extension parses")
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => (*d).to_owned(),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => {
                        match <[u8; 4]>::try_from(*ip) {
                            Ok(v4) => format!("ip:{}", std::net::Ipv4Addr::from(v4)),
                            Err(_) => format!("ip:{ip:?}"),
                        }
                    }
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .unwrap_or_default();
    let v = cert.validity();
    (
        sans,
        v.not_before.timestamp(),
        v.not_after.timestamp(),
        cert.is_ca(),
    )
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?} is not standard base64: {e}"))
}

fn now_unix() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[test]
fn serving_cert_names_every_form_of_the_service_dns_name() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    certs::run(&args).unwrap();

    let (mut sans, _, _, is_ca) = parse_cert(&read(&args.out_dir, "tls.crt"));
    sans.sort();
    assert_eq!(
        sans,
        [
            "status-reporter-webhook",
            "status-reporter-webhook.status-reporter-system",
            "status-reporter-webhook.status-reporter-system.svc",
            "status-reporter-webhook.status-reporter-system.svc.cluster.local",
        ]
    );
    assert!(!is_ca, "the serving certificate must not be a CA");
    assert!(
        parse_cert(&read(&args.out_dir, "ca.crt")).3,
        "ca.crt must be a CA"
    );
}

#[test]
fn custom_names_and_extra_sans_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    let args = CertsArgs {
        namespace: "hooks".into(),
        service: "reporter-injector".into(),
        cluster_domain: "corp.example".into(),
        extra_sans: vec!["localhost".into(), " 127.0.0.1 ".into()],
        ..args_in(tmp.path())
    };
    certs::run(&args).unwrap();
    let (sans, ..) = parse_cert(&read(&args.out_dir, "tls.crt"));
    for want in [
        "reporter-injector.hooks.svc",
        "reporter-injector.hooks.svc.corp.example",
        "localhost",
        "ip:127.0.0.1",
    ] {
        assert!(
            sans.iter().any(|s| s == want),
            "{want} missing from {sans:?}"
        );
    }
    let server = server_config(&args.out_dir);
    handshake(server, &read(&args.out_dir, "ca.crt"), "127.0.0.1").expect("IP SAN verifies");
}

#[test]
fn validity_follows_days_and_ca_days() {
    let tmp = tempfile::tempdir().unwrap();
    let args = CertsArgs {
        days: 30,
        ca_days: 400,
        ..args_in(tmp.path())
    };
    let before = now_unix();
    certs::run(&args).unwrap();
    let after = now_unix();

    let (_, nb, na, _) = parse_cert(&read(&args.out_dir, "tls.crt"));
    let days = 30 * i64::try_from(DAY).unwrap();
    assert!(
        nb <= before && nb >= before - 600,
        "notBefore {nb} is a few minutes back from {before}"
    );
    assert!(
        (before + days..=after + days).contains(&na),
        "notAfter {na} is 30 days out"
    );
    let (_, _, ca_na, _) = parse_cert(&read(&args.out_dir, "ca.crt"));
    assert!((before + 400 * 86_400..=after + 400 * 86_400).contains(&ca_na));

    // The same bounds, as a TLS client sees them.
    let (ca, leaf) = (
        read(&args.out_dir, "ca.crt"),
        read(&args.out_dir, "tls.crt"),
    );
    let now = SystemTime::now();
    verify_at(
        &ca,
        &leaf,
        SERVICE_FQDN,
        now + Duration::from_secs(29 * DAY),
    )
    .expect("valid on day 29");
    let expired = verify_at(
        &ca,
        &leaf,
        SERVICE_FQDN,
        now + Duration::from_secs(31 * DAY),
    );
    assert!(
        matches!(
            expired,
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
            ))
        ),
        "{expired:?}"
    );
}

#[test]
fn pair_loads_into_rustls_and_a_client_trusting_ca_crt_verifies_the_service_name() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    certs::run(&args).unwrap();
    let ca = read(&args.out_dir, "ca.crt");
    let server = server_config(&args.out_dir);

    for name in [
        SERVICE_FQDN,
        "status-reporter-webhook.status-reporter-system.svc.cluster.local",
    ] {
        handshake(server.clone(), &ca, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = handshake(server.clone(), &ca, "other.status-reporter-system.svc");
    assert!(wrong.is_err(), "a name outside the SANs must fail");

    // A client trusting some other CA must refuse the certificate.
    let other = tempfile::tempdir().unwrap();
    let other_args = args_in(other.path());
    certs::run(&other_args).unwrap();
    let foreign = handshake(server, &read(&other_args.out_dir, "ca.crt"), SERVICE_FQDN);
    assert!(foreign.is_err(), "unknown CA must fail");
}

#[test]
fn secret_manifest_parses_and_carries_the_written_files() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    certs::run(&args).unwrap();
    let out = &args.out_dir;

    let secret: Secret = serde_yaml_ng::from_str(&read(out, "secret.yaml")).expect("Secret YAML");
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some("status-reporter-webhook-tls")
    );
    assert_eq!(
        secret.metadata.namespace.as_deref(),
        Some("status-reporter-system")
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.expect("data");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert_eq!(
            data[key].0,
            read(out, key).into_bytes(),
            "{key} in the Secret"
        );
    }
    let raw: serde_json::Value = serde_yaml_ng::from_str(&read(out, "secret.yaml")).unwrap();
    assert_eq!(raw["apiVersion"], "v1");
    assert_eq!(raw["kind"], "Secret");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for key in ["tls.key", "ca.key", "secret.yaml"] {
            let mode = std::fs::metadata(out.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{key} must be owner-only, is {mode:o}");
        }
    }
    assert_eq!(
        read(out, ".gitignore"),
        "*\n",
        "keys must never be committed"
    );
}

#[test]
fn cabundle_patch_targets_the_webhook_and_holds_ca_crt() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    certs::run(&args).unwrap();
    let out = &args.out_dir;

    let patch: serde_json::Value =
        serde_yaml_ng::from_str(&read(out, "cabundle-patch.yaml")).expect("patch YAML");
    assert_eq!(patch["kind"], "MutatingWebhookConfiguration");
    assert_eq!(patch["metadata"]["name"], "status-reporter-webhook");
    assert_eq!(
        patch["webhooks"][0]["name"],
        "jobs.status-reporter.hyperfleet.io"
    );
    let bundle = base64_decode(
        patch["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()
            .expect("caBundle is a string"),
    );
    assert_eq!(bundle, read(out, "ca.crt").into_bytes());
    assert_eq!(read(out, "ca-bundle.crt"), read(out, "ca.crt"));
}

#[test]
fn kustomization_points_at_the_base_relative_to_the_out_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("repo/manifests");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("kustomization.yaml"), "resources: []\n").unwrap();
    let args = CertsArgs {
        out_dir: tmp.path().join("repo/certs/out"),
        kustomize_base: Some(base),
        ..defaults()
    };
    certs::run(&args).unwrap();
    let k: serde_json::Value =
        serde_yaml_ng::from_str(&read(&args.out_dir, "kustomization.yaml")).unwrap();
    assert_eq!(
        k["resources"],
        serde_json::json!(["../../manifests", "secret.yaml"])
    );
    assert_eq!(k["patches"][0]["path"], "cabundle-patch.yaml");
}

#[test]
fn rerun_renews_the_serving_cert_with_the_same_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    certs::run(&args).unwrap();
    let (ca1, tls1, patch1) = (
        read(&args.out_dir, "ca.crt"),
        read(&args.out_dir, "tls.crt"),
        read(&args.out_dir, "cabundle-patch.yaml"),
    );
    certs::run(&args).unwrap();
    assert_eq!(read(&args.out_dir, "ca.crt"), ca1, "CA reused");
    assert_eq!(
        read(&args.out_dir, "cabundle-patch.yaml"),
        patch1,
        "caBundle unchanged"
    );
    assert_ne!(
        read(&args.out_dir, "tls.crt"),
        tls1,
        "serving certificate renewed"
    );
    handshake(server_config(&args.out_dir), &ca1, SERVICE_FQDN)
        .expect("old caBundle trusts the new cert");
}

#[test]
fn rotate_ca_keeps_both_cas_in_the_bundle_until_the_old_one_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    let out = args.out_dir.clone();
    certs::run(&args).unwrap();
    let (old_ca, old_tls) = (read(&out, "ca.crt"), read(&out, "tls.crt"));

    certs::run(&CertsArgs {
        rotate_ca: true,
        ..args.clone()
    })
    .unwrap();
    let new_ca = read(&out, "ca.crt");
    assert_ne!(new_ca, old_ca);
    assert_eq!(read(&out, "ca.previous.crt"), old_ca);
    let bundle = read(&out, "ca-bundle.crt");
    assert_eq!(certs_in(&bundle).len(), 2, "both CAs during the overlap");
    // Pods still serving the old certificate and pods already on the new one both verify.
    verify_at(&bundle, &old_tls, SERVICE_FQDN, SystemTime::now()).expect("old cert trusted");
    verify_at(
        &bundle,
        &read(&out, "tls.crt"),
        SERVICE_FQDN,
        SystemTime::now(),
    )
    .expect("new cert trusted");
    assert!(
        verify_at(
            &old_ca,
            &read(&out, "tls.crt"),
            SERVICE_FQDN,
            SystemTime::now()
        )
        .is_err()
    );

    std::fs::remove_file(out.join("ca.previous.crt")).unwrap();
    certs::run(&args).unwrap();
    assert_eq!(
        read(&out, "ca-bundle.crt"),
        new_ca,
        "only the new CA after the overlap"
    );
}

#[test]
fn bad_input_is_refused_with_a_message_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let base = args_in(tmp.path());
    let cases: Vec<(CertsArgs, &str)> = vec![
        (
            CertsArgs {
                namespace: "Prod_NS".into(),
                ..base.clone()
            },
            "--namespace \"Prod_NS\"",
        ),
        (
            CertsArgs {
                service: String::new(),
                ..base.clone()
            },
            "--service \"\"",
        ),
        (
            CertsArgs {
                days: 0,
                ..base.clone()
            },
            "--days 0 is out of range: accepted 1 to 3650",
        ),
        (
            CertsArgs {
                ca_days: 40_000,
                ..base.clone()
            },
            "--ca-days 40000",
        ),
        (
            CertsArgs {
                webhook_name: "jobs.example".into(),
                ..base.clone()
            },
            "at least three segments",
        ),
        (
            CertsArgs {
                extra_sans: vec!["bad name".into()],
                ..base.clone()
            },
            "--extra-san \"bad name\"",
        ),
        (
            CertsArgs {
                kustomize_base: Some(tmp.path().join("nowhere")),
                ..base.clone()
            },
            "no kustomization.yaml there",
        ),
    ];
    for (args, want) in cases {
        let err = certs::run(&args).expect_err(want).to_string();
        assert!(err.contains(want), "error {err:?} should contain {want:?}");
    }
    assert!(!base.out_dir.exists(), "nothing written for bad input");
}

#[test]
fn unwritable_out_dir_is_reported_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    // A regular file in the way fails for root too, unlike permission bits.
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let args = CertsArgs {
        out_dir: blocker.join("certs"),
        ..defaults()
    };
    let err = certs::run(&args).unwrap_err();
    assert!(matches!(err, CertsError::CreateDir { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&blocker.join("certs").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("--out-dir"), "{msg}");
}

#[test]
fn half_a_ca_or_a_foreign_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let args = args_in(tmp.path());
    certs::run(&args).unwrap();
    let out: PathBuf = args.out_dir.clone();

    // ca.key from another run: does not match ca.crt.
    let other = tempfile::tempdir().unwrap();
    let other_args = args_in(other.path());
    certs::run(&other_args).unwrap();
    std::fs::copy(other_args.out_dir.join("ca.key"), out.join("ca.key")).unwrap();
    let err = certs::run(&args).unwrap_err().to_string();
    assert!(err.contains("ca.key does not belong to ca.crt"), "{err}");

    std::fs::remove_file(out.join("ca.key")).unwrap();
    let err = certs::run(&args).unwrap_err().to_string();
    assert!(
        err.contains("ca.crt") && err.contains("ca.key does not"),
        "{err}"
    );
}

#[test]
fn a_ca_expiring_before_the_serving_cert_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let args = CertsArgs {
        ca_days: 10,
        days: 5,
        ..args_in(tmp.path())
    };
    certs::run(&args).unwrap();
    let err = certs::run(&CertsArgs { days: 30, ..args }).unwrap_err();
    assert!(
        matches!(err, CertsError::CaExpiresTooSoon { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--rotate-ca"), "{err}");
}

/// The command line as users run it: flags and env reach [`CertsArgs`], stdout is exactly
/// the base64 caBundle, and a bad flag exits non-zero with the message and writes nothing.
#[test]
fn cli_prints_the_ca_bundle_on_stdout_and_reads_env() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_status-reporter-webhook"))
        .args(["certs", "--days", "10", "--out-dir"])
        .arg(&out)
        .env("CERTS_NAMESPACE", "hooks")
        .current_dir(tmp.path())
        .output()
        .expect("run status-reporter-webhook certs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = base64_decode(String::from_utf8(run.stdout).unwrap().trim());
    assert_eq!(printed, read(&out, "ca.crt").into_bytes());
    let (sans, nb, na, _) = parse_cert(&read(&out, "tls.crt"));
    assert!(
        sans.iter()
            .any(|s| s == "status-reporter-webhook.hooks.svc"),
        "{sans:?}"
    );
    assert!(
        (na - nb - 10 * 86_400 - 300).abs() < 5,
        "10 days (+5 min back-dating)"
    );

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_status-reporter-webhook"))
        .args(["certs", "--days", "0", "--out-dir"])
        .arg(tmp.path().join("never"))
        .output()
        .expect("run status-reporter-webhook certs");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--days 0 is out of range"), "{stderr}");
    assert!(!tmp.path().join("never").exists());
}
