//! The `status-reporter.hyperfleet.io/` annotations as the injector reads them
//! (`status_reporter_webhook::annotations`): values parsed and trimmed, the pod template's
//! winning over the Job's, and every denial naming the annotation and what is accepted.

use std::collections::BTreeMap;

use contract::{LogLevel, Setting, SidecarMode};
use status_reporter_webhook::annotations::{Annotations, INJECT, Overrides, STATUS, parse};
use status_reporter_webhook::error::Result;
fn key(setting: Setting) -> &'static str {
    setting.annotation().expect("an annotated setting")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_one(key: &str, value: &str) -> Result<Annotations> {
    parse(Some(&map(&[(key, value)])), None)
}

#[test]
fn good_values_are_parsed_and_trimmed() {
    let job = map(&[
        (INJECT, "true"),
        (key(Setting::AdapterContainer), " adapter "),
        (key(Setting::ConditionType), "DnsReady"),
        (key(Setting::ResultsPath), "/out/r.json"),
        (key(Setting::MaxWait), "60"),
        (key(Setting::PollInterval), " 5"),
        (key(Setting::LogLevel), "DEBUG"),
        (key(Setting::SidecarMode), "classic"),
    ]);
    let a = parse(Some(&job), None).unwrap();
    assert_eq!(a.inject, Some(true));
    assert_eq!(
        a.overrides,
        Overrides {
            adapter_container: Some("adapter".into()),
            condition_type: Some("DnsReady".into()),
            results_path: Some("/out/r.json".into()),
            max_wait_seconds: Some(60),
            poll_interval_seconds: Some(5),
            log_level: Some(LogLevel::Debug),
            sidecar_mode: Some(SidecarMode::Classic),
        }
    );
    assert!(a.unknown.is_empty());
}

#[test]
fn template_wins_over_job() {
    let job = map(&[(INJECT, "true"), (key(Setting::LogLevel), "info")]);
    let tpl = map(&[(INJECT, "false")]);
    let a = parse(Some(&job), Some(&tpl)).unwrap();
    assert_eq!(a.inject, Some(false));
    assert_eq!(a.overrides.log_level, Some(LogLevel::Info));
}

/// Each denial names the annotation and what is accepted, and reads cleanly (issue 11: a
/// run of spaces from the rule's text reached users).
#[test]
fn bad_values_name_the_annotation_and_the_accepted_values() {
    let system_dirs = "/bin, /boot, /dev, /etc, /lib, /lib32, /lib64, /libx32, /proc, /run, /sbin, /sys, /usr, /var/run/secrets";
    let long = "A".repeat(1000);
    let cases = [
        (INJECT, "yes", "\"true\" or \"false\""),
        (key(Setting::AdapterContainer), "  ", "non-empty"),
        (
            key(Setting::AdapterContainer),
            "status-reporter",
            "not the reporter's own (status-reporter)",
        ),
        (key(Setting::ConditionType), "Complete", "Job controller"),
        (key(Setting::ConditionType), "", "non-empty"),
        (key(Setting::ConditionType), "a/b c", "a qualified name"),
        (key(Setting::ConditionType), &long, "a qualified name"),
        (key(Setting::ConditionType), "-x", "a qualified name"),
        (key(Setting::ResultsPath), "results/x.json", "absolute"),
        (key(Setting::ResultsPath), "/results/", "not ending in '/'"),
        (
            key(Setting::ResultsPath),
            "/result.json",
            "inside a directory",
        ),
        (key(Setting::ResultsPath), "/results/../etc/r.json", "'..'"),
        (
            key(Setting::ResultsPath),
            "/results//r.json",
            "empty segments",
        ),
        (
            key(Setting::ResultsPath),
            "/results/r\n.json",
            "control characters",
        ),
        (key(Setting::ResultsPath), "/etc/r.json", system_dirs),
        (key(Setting::ResultsPath), "/proc/self/r.json", system_dirs),
        (
            key(Setting::ResultsPath),
            "/var/run/secrets/kubernetes.io/serviceaccount/r.json",
            system_dirs,
        ),
        (key(Setting::MaxWait), "0", "greater than 0"),
        (key(Setting::MaxWait), "5m", "greater than 0"),
        (
            key(Setting::MaxWait),
            "31536001",
            "at most 31536000 (365 days)",
        ),
        (
            key(Setting::MaxWait),
            "18446744073709551615",
            "at most 31536000",
        ),
        (key(Setting::PollInterval), "-1", "greater than 0"),
        (
            key(Setting::LogLevel),
            "verbose",
            "trace, debug, info, warn, error",
        ),
        (key(Setting::SidecarMode), "sidecar", "classic, native"),
    ];
    for (key, value, accepted) in cases {
        let err = parse_one(key, value).unwrap_err().to_string();
        assert!(err.contains(key), "{key}={value:?}: {err}");
        assert!(err.contains(accepted), "{key}={value:?}: {err}");
        let why = err.split("accepted:").nth(1).unwrap_or_default();
        assert!(!why.contains("  "), "{err:?}");
    }
    for (key, value) in [
        (key(Setting::MaxWait), "31536000"),
        (key(Setting::ResultsPath), "/var/lib/results/r.json"),
        (key(Setting::ConditionType), "example.com/DNSReady"),
    ] {
        assert!(parse_one(key, value).is_ok(), "{key}={value:?}");
    }
}

#[test]
fn poll_must_be_below_max_wait() {
    let a = map(&[
        (key(Setting::MaxWait), "10"),
        (key(Setting::PollInterval), "10"),
    ]);
    let err = parse(Some(&a), None).unwrap_err().to_string();
    assert!(err.contains(key(Setting::PollInterval)), "{err}");
    assert!(err.contains("less than the max wait (10s)"), "{err}");

    // The default poll (2s) also counts.
    let err = parse_one(key(Setting::MaxWait), "2")
        .unwrap_err()
        .to_string();
    assert!(err.contains(key(Setting::MaxWait)), "{err}");
    assert!(parse_one(key(Setting::MaxWait), "3").is_ok());
    assert!(parse_one(key(Setting::PollInterval), "300").is_err());
    assert!(parse_one(key(Setting::PollInterval), "299").is_ok());
}

#[test]
fn unknown_keys_are_reported_and_status_only_counts_on_the_template() {
    let job = map(&[
        (INJECT, "true"),
        ("status-reporter.hyperfleet.io/max-wait", "5"),
        (STATUS, "injected"),
    ]);
    let a = parse(Some(&job), None).unwrap();
    assert_eq!(
        a.unknown,
        vec!["status-reporter.hyperfleet.io/max-wait".to_owned()]
    );
    assert!(!a.injected);
    let tpl = map(&[(STATUS, "injected")]);
    assert!(parse(Some(&job), Some(&tpl)).unwrap().injected);
}
