//! Certificates for the webhook's TLS (`status_reporter_webhook::tls`): loading a pair and
//! naming what is wrong with a bad one, validity at a given time, and reload keeping the
//! current pair unless the new one is usable and valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use status_reporter_webhook::error::Error;
use status_reporter_webhook::metrics::Metrics;
use status_reporter_webhook::tls::{
    CertResolver, check_valid_at, load_pair, reload, reload_at, rfc3339, server_config_with,
};
fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    pair_valid(dir, name, None)
}

/// A self-signed pair, valid from `validity.0` to `validity.1` (Unix seconds) if given.
fn pair_valid(dir: &Path, name: &str, validity: Option<(i64, i64)>) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    if let Some((from, to)) = validity {
        let at =
            |unix: i64| std::time::SystemTime::from(jiff::Timestamp::from_second(unix).unwrap());
        params.not_before = at(from).into();
        params.not_after = at(to).into();
    }
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, cert.der().to_vec())
}

#[test]
fn loads_a_pair_and_reads_expiry_and_serial() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k, der) = pair(dir.path(), "a");
    let loaded = load_pair(&c, &k).unwrap();
    assert_eq!(loaded.key.cert[0].as_ref(), der.as_slice());
    assert!(loaded.not_after > 1_700_000_000, "{}", loaded.not_after);
    assert!(!loaded.serial.is_empty());
}

#[test]
fn bad_pairs_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, _, _) = pair(dir.path(), "a");
    let (_, k2, _) = pair(dir.path(), "b");
    let missing = dir.path().join("missing.crt");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem").unwrap();
    for (cert, key, expected) in [
        (&c1, &k2, "do not form a usable pair"),
        (&missing, &k2, "cannot read the certificate"),
        (&garbage, &k2, "no CERTIFICATE block"),
        (&c1, &garbage, "key is not a PEM private key"),
    ] {
        let err = load_pair(cert, key).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        assert!(err.contains(&cert.display().to_string()), "{err}");
    }
}

#[test]
fn reload_swaps_only_for_a_new_usable_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, k1, der1) = pair(dir.path(), "a");
    let (c2, k2, der2) = pair(dir.path(), "b");
    let resolver = CertResolver::new(load_pair(&c1, &k1).unwrap());
    let metrics = Metrics::new();
    reload(&resolver, &c2, &k1, &metrics);
    assert_eq!(resolver.current().key.cert[0].as_ref(), der1.as_slice());
    reload(&resolver, &c2, &k2, &metrics);
    assert_eq!(resolver.current().key.cert[0].as_ref(), der2.as_slice());
    let text = metrics.encode();
    assert!(
        text.contains("certificate_reloads_total{result=\"failure\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("certificate_reloads_total{result=\"success\"} 1"),
        "{text}"
    );
}

const DAY: i64 = 86_400;
/// 2026-11-30T00:00:00Z, the tests' "now".
const NOW: i64 = 1_795_996_800;

#[test]
fn a_pair_outside_its_validity_period_is_refused_naming_not_before_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    for (name, from, to, state) in [
        ("expired", NOW - 30 * DAY, NOW - DAY, "has expired"),
        ("future", NOW + DAY, NOW + 30 * DAY, "is not valid yet"),
    ] {
        let (c, k, _) = pair_valid(dir.path(), name, Some((from, to)));
        let loaded = load_pair(&c, &k).expect("loading does not judge the dates");
        let err = check_valid_at(&loaded, &c, &k, NOW)
            .unwrap_err()
            .to_string();
        for part in [
            state,
            &format!("notBefore {}", rfc3339(from)),
            &format!("notAfter {}", rfc3339(to)),
            "now 2026-11-30T00:00:00Z",
            &c.display().to_string(),
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
    }
    let (c, k, _) = pair_valid(dir.path(), "good", Some((NOW - DAY, NOW + DAY)));
    check_valid_at(&load_pair(&c, &k).unwrap(), &c, &k, NOW).unwrap();
}

#[test]
fn reload_keeps_the_current_pair_when_the_new_one_is_expired_or_not_yet_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, k1, der1) = pair_valid(dir.path(), "a", Some((NOW - DAY, NOW + DAY)));
    let resolver = CertResolver::new(load_pair(&c1, &k1).unwrap());
    let metrics = Metrics::new();
    for (name, from, to) in [
        ("expired", NOW - 30 * DAY, NOW - DAY),
        ("future", NOW + DAY, NOW + 30 * DAY),
    ] {
        let (c, k, _) = pair_valid(dir.path(), name, Some((from, to)));
        reload_at(&resolver, &c, &k, &metrics, NOW);
        assert_eq!(
            resolver.current().key.cert[0].as_ref(),
            der1.as_slice(),
            "{name}"
        );
    }
    assert!(
        metrics
            .encode()
            .contains("certificate_reloads_total{result=\"failure\"} 2"),
        "{}",
        metrics.encode()
    );
}

#[test]
fn a_rustls_setup_error_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k, _) = pair(dir.path(), "a");
    let resolver = Arc::new(CertResolver::new(load_pair(&c, &k).unwrap()));
    // A provider without cipher suites cannot speak TLS 1.2 or 1.3.
    let provider = Arc::new(CryptoProvider {
        cipher_suites: Vec::new(),
        ..rustls::crypto::ring::default_provider()
    });
    let err = server_config_with(provider, resolver).unwrap_err();
    assert!(matches!(err, Error::TlsSetup(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("cannot set up TLS"), "{message}");
    assert!(!message.starts_with("server:"), "{message}");
}
