//! Fixture-driven tests of the pure core: every Job under `tests/data/jobs/` and every
//! AdmissionReview under `tests/data/admission/` gets its expected answer; injected Jobs
//! are compared with reviewed goldens under `tests/data/golden/` (full batch/v1 Jobs).
//! `UPDATE_GOLDEN=1 cargo nextest run -p status-reporter-webhook` rewrites the goldens.

use std::path::{Path, PathBuf};

use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;
use status_reporter_webhook::admission::{Outcome, review, review_as};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, OptIn, SkipReason, apply, inject};
use status_reporter_webhook::offline::inject_manifests;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn config() -> InjectConfig {
    InjectConfig {
        // Fixed so goldens do not change with every release.
        reporter_image: "ghcr.io/openshift-hyperfleet/status-reporter:0.1.0".into(),
        ..InjectConfig::default()
    }
}

/// Compares `actual` with the golden file, or rewrites it when `UPDATE_GOLDEN=1`.
fn check_golden(name: &str, actual: &str) {
    let path = data(&format!("golden/{name}"));
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "{name} differs from its golden (UPDATE_GOLDEN=1 rewrites it; review the diff)"
    );
}

/// The patched document must be a Job k8s-openapi reads without losing a field.
fn as_job(patched: &Value, what: &str) -> Job {
    let job: Job = serde_json::from_value(patched.clone())
        .unwrap_or_else(|e| panic!("{what}: patched object is not a Job: {e}"));
    assert_eq!(
        &serde_json::to_value(&job).unwrap(),
        patched,
        "{what}: patched object has fields a batch/v1 Job does not have, or wrong types"
    );
    job
}

enum Expect {
    Injected(&'static [&'static str]),
    Skipped(SkipReason),
    Denied(&'static [&'static str]),
}

const JOB_CASES: &[(&str, Expect)] = &[
    ("minimal", Expect::Injected(&[])),
    ("generate-name", Expect::Injected(&[])),
    ("multi-container-annotated", Expect::Injected(&[])),
    ("multi-container-first", Expect::Injected(&[])),
    ("existing-mounts", Expect::Injected(&[])),
    ("existing-env-volumes", Expect::Injected(&[])),
    ("init-containers", Expect::Injected(&[])),
    ("no-automount-token", Expect::Injected(&[])),
    ("cronjob-made", Expect::Injected(&[])),
    (
        "all-annotations",
        Expect::Injected(&[
            "spec.activeDeadlineSeconds (60s) is shorter than the reporter's max wait (120s)",
            "restartPolicy OnFailure",
        ]),
    ),
    ("classic-mode", Expect::Injected(&[])),
    (
        "parallel-nonindexed",
        Expect::Injected(&[
            "completions 3 with completionMode NonIndexed: the reporter can only count the pods' results",
        ]),
    ),
    ("indexed-shards", Expect::Injected(&[])),
    (
        "work-queue",
        Expect::Injected(&["parallelism 4 (a work queue) with completionMode NonIndexed"]),
    ),
    (
        "already-injected",
        Expect::Skipped(SkipReason::AlreadyInjected),
    ),
    ("opted-out", Expect::Skipped(SkipReason::OptedOut)),
    ("not-annotated", Expect::Skipped(SkipReason::NotOptedIn)),
    (
        "excluded-namespace",
        Expect::Skipped(SkipReason::ExcludedNamespace(String::new())),
    ),
    (
        "bad-adapter-container",
        Expect::Denied(&[
            "status-reporter.hyperfleet.io/adapter-container=\"adaptor\"",
            "one of [adapter, proxy]",
        ]),
    ),
];

#[test]
fn every_job_fixture_has_a_case() {
    let mut on_disk: Vec<String> = std::fs::read_dir(data("jobs"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".yaml").map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let mut covered: Vec<String> = JOB_CASES.iter().map(|(n, _)| (*n).to_owned()).collect();
    covered.sort();
    assert_eq!(on_disk, covered);
}

#[test]
fn job_fixtures_match_goldens_and_are_idempotent() {
    let config = config();
    for (name, expect) in JOB_CASES {
        let text = read(&format!("jobs/{name}.yaml"));
        let original: Value = serde_yaml_ng::from_str(&text).unwrap();
        let job: Job = serde_json::from_value(original.clone()).unwrap();
        let result = inject(&job, None, &config);
        match (expect, result) {
            (Expect::Injected(expected_warnings), Ok(Injection::Injected { patch, warnings })) => {
                assert_eq!(
                    warnings.len(),
                    expected_warnings.len(),
                    "{name}: warnings {warnings:?}"
                );
                for (w, e) in warnings.iter().zip(expected_warnings.iter()) {
                    assert!(w.contains(e), "{name}: warning {w:?} lacks {e:?}");
                }
                let mut patched = original.clone();
                apply(&mut patched, &patch).unwrap_or_else(|e| panic!("{name}: {e}"));
                let injected = as_job(&patched, name);
                check_golden(
                    &format!("{name}.yaml"),
                    &serde_yaml_ng::to_string(&injected).unwrap(),
                );
                // Reinvocation (or a second webhook pass) changes nothing.
                let again = inject(&injected, None, &config).unwrap();
                assert_eq!(
                    again,
                    Injection::Skipped(SkipReason::AlreadyInjected),
                    "{name}: not idempotent"
                );
                assert!(again.patch().0.is_empty());
            }
            (Expect::Skipped(reason), Ok(Injection::Skipped(got))) => match reason {
                SkipReason::ExcludedNamespace(_) => {
                    assert!(
                        matches!(got, SkipReason::ExcludedNamespace(_)),
                        "{name}: {got:?}"
                    )
                }
                _ => assert_eq!(&got, reason, "{name}"),
            },
            (Expect::Denied(parts), Err(e)) => {
                let msg = e.to_string();
                for p in *parts {
                    assert!(msg.contains(p), "{name}: {msg:?} lacks {p:?}");
                }
            }
            (_, other) => panic!("{name}: unexpected result {other:?}"),
        }
    }
}

/// A review answered by the webhook, with the patch applied to the request's object.
fn answer(fixture: &str) -> (Value, Value) {
    let body = read(&format!("admission/{fixture}.json"));
    let reviewed = review(body.as_bytes(), &config());
    let response: Value = serde_json::from_slice(reviewed.json().unwrap()).unwrap();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    (request, response)
}

#[test]
fn create_reviews_are_patched_and_the_uid_echoed() {
    for (fixture, golden) in [
        ("create-job", "admission-create-job.yaml"),
        (
            "create-job-generate-name",
            "admission-create-job-generate-name.yaml",
        ),
    ] {
        let (request, response) = answer(fixture);
        assert_eq!(response["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(response["kind"], "AdmissionReview");
        let r = &response["response"];
        assert_eq!(r["uid"], request["request"]["uid"], "{fixture}");
        assert_eq!(r["allowed"], true, "{fixture}");
        assert_eq!(r["patchType"], "JSONPatch", "{fixture}");
        // base64, as the apiserver reads a `[]byte`.
        let patch_bytes = serde_json::from_value::<k8s_openapi::ByteString>(r["patch"].clone())
            .unwrap()
            .0;
        let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
        let mut object = request["request"]["object"].clone();
        json_patch::patch(&mut object, &patch).unwrap();
        // The apiserver's view includes status and a null creationTimestamp; drop
        // those so the golden is a manifest `kubernetes-validate --strict` accepts.
        object.as_object_mut().unwrap().remove("status");
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("creationTimestamp");
        let job = as_job(&object, fixture);
        check_golden(golden, &serde_yaml_ng::to_string(&job).unwrap());
    }
}

#[test]
fn other_reviews_get_the_right_answer() {
    // (fixture, allowed, has patch, message part)
    let cases: &[(&str, bool, bool, &str)] = &[
        ("update-job", true, false, ""),
        ("update-job-status", true, false, ""),
        ("delete-job", true, false, ""),
        ("create-pod", true, false, ""),
        ("create-cronjob", true, false, ""),
        ("create-job-not-opted-in", true, false, ""),
        (
            "create-job-bad-annotation",
            false,
            false,
            "status-reporter.hyperfleet.io/max-wait-seconds=\"5m\" is invalid; accepted: an integer number of seconds greater than 0",
        ),
        (
            "create-job-bad-adapter",
            false,
            false,
            "names no container of the pod template; accepted: one of [adapter, proxy]",
        ),
        (
            "not-a-review",
            false,
            false,
            "expected kind AdmissionReview",
        ),
        (
            "v1beta1-review",
            false,
            false,
            "apiVersion \"admission.k8s.io/v1beta1\"",
        ),
        ("malformed", false, false, "malformed AdmissionReview"),
    ];
    for (fixture, allowed, has_patch, message) in cases {
        let (request, response) = answer(fixture);
        let r = &response["response"];
        assert_eq!(r["allowed"], *allowed, "{fixture}: {r}");
        assert_eq!(r.get("patch").is_some(), *has_patch, "{fixture}: {r}");
        let uid = request
            .pointer("/request/uid")
            .cloned()
            .unwrap_or(Value::Null);
        if !uid.is_null() {
            assert_eq!(r["uid"], uid, "{fixture}");
        }
        if !allowed {
            let got = r["status"]["message"].as_str().unwrap_or_default();
            assert!(
                got.contains(message),
                "{fixture}: {got:?} lacks {message:?}"
            );
        }
    }
}

#[test]
fn outcomes_are_classified() {
    let c = config();
    let outcome = |f: &str| review(read(&format!("admission/{f}.json")).as_bytes(), &c).outcome;
    assert_eq!(outcome("create-job"), Outcome::Injected);
    assert_eq!(outcome("update-job"), Outcome::Skipped);
    assert_eq!(outcome("create-job-bad-annotation"), Outcome::Denied);
    assert_eq!(outcome("malformed"), Outcome::Invalid);
    assert_eq!(outcome("not-a-review"), Outcome::Invalid);
}

#[test]
fn denial_for_every_bad_annotation_names_it() {
    let base: Value = serde_json::from_str(&read("admission/create-job.json")).unwrap();
    let bad = [
        ("inject", "yes"),
        ("adapter-container", "missing"),
        ("condition-type", "Failed"),
        ("results-path", "relative/result.json"),
        ("results-path", "/result.json"),
        (
            "results-path",
            "/var/run/secrets/kubernetes.io/serviceaccount/result.json",
        ),
        ("results-path", "/results/../result.json"),
        ("max-wait-seconds", "0"),
        ("poll-interval-seconds", "600"),
        ("log-level", "loud"),
        ("sidecar-mode", "ambient"),
    ];
    for (key, value) in bad {
        let mut r = base.clone();
        let full = format!("status-reporter.hyperfleet.io/{key}");
        r["request"]["object"]["metadata"]["annotations"][&full] = Value::String(value.into());
        let reviewed = review(&serde_json::to_vec(&r).unwrap(), &config());
        assert_eq!(reviewed.outcome, Outcome::Denied, "{full}={value}");
        let out: Value = serde_json::from_slice(reviewed.json().unwrap()).unwrap();
        let msg = out["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains(&full), "{full}={value}: {msg}");
        assert!(msg.contains("accepted"), "{full}={value}: {msg}");
        assert_eq!(out["response"]["status"]["code"], 400);
    }
}

#[test]
fn offline_bundle_injects_jobs_and_cronjobs_and_passes_the_rest_through() {
    let input = read("jobs/offline/bundle.yaml");
    let rendered = inject_manifests(&input, "bundle.yaml", &config()).unwrap();
    assert_eq!(rendered.injected, 3, "Job, CronJob template, listed Job");
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    // Untouched documents come back byte for byte, comments included.
    assert!(
        rendered
            .yaml
            .contains("name: dns-adapter   # comments in untouched documents survive")
    );
    assert!(rendered.yaml.contains("name: unrelated\n"));
    check_golden("offline-bundle.yaml", &rendered.yaml);

    // The Job rendered offline is exactly what the webhook path produces.
    let docs = |text: &str| -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect()
    };
    let mut webhook_job = docs(&input)[1].clone();
    let job: Job = serde_json::from_value(webhook_job.clone()).unwrap();
    apply(
        &mut webhook_job,
        &inject(&job, None, &config()).unwrap().patch(),
    )
    .unwrap();
    assert_eq!(docs(&rendered.yaml)[1], webhook_job);

    // A second pass is a no-op.
    let again = inject_manifests(&rendered.yaml, "again", &config()).unwrap();
    assert_eq!(again.injected, 0);
}

/// Issue 23, item 10: what the webhook reads, `inject -f` reads: a JSON Job with an emoji
/// written as an escaped surrogate pair (which YAML parsers refuse) is injected both ways.
#[test]
fn offline_reads_the_json_the_webhook_reads() {
    let mut job: Value = serde_json::from_str(&read("jobs/offline/job.json")).unwrap();
    job["metadata"]["annotations"]["example.com/note"] = "ready \u{1f600}".into();
    let text = serde_json::to_string_pretty(&job)
        .unwrap()
        .replace('\u{1f600}', "\\ud83d\\ude00");
    assert!(text.contains(r"\ud83d\ude00"), "{text}");

    let review = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"batch","version":"v1","kind":"Job"}},"resource":{{"group":"batch","version":"v1","resource":"jobs"}},"operation":"CREATE","userInfo":{{}},"object":{text}}}}}"#
    );
    let online = review_as(review.as_bytes(), &config(), OptIn::Annotation);
    assert_eq!(online.outcome, Outcome::Injected, "{}", online.detail);

    let offline = inject_manifests(&text, "job.json", &config()).unwrap();
    assert_eq!(offline.injected, 1);
    assert!(offline.yaml.contains("ready \u{1f600}"), "{}", offline.yaml);
}

#[test]
fn offline_reads_json_and_refuses_bad_input_naming_the_document() {
    let rendered = inject_manifests(&read("jobs/offline/job.json"), "job.json", &config()).unwrap();
    assert_eq!(rendered.injected, 1);
    assert!(rendered.yaml.contains("name: status-reporter"));

    let err = inject_manifests("a: [1, 2\n", "broken.yaml", &config())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("broken.yaml") && err.contains("document 1"),
        "{err}"
    );

    let bad = read("jobs/bad-adapter-container.yaml");
    let err = inject_manifests(
        &format!("kind: Namespace\n---\n{bad}"),
        "jobs.yaml",
        &config(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("document 2 (job/typo-check)"), "{err}");
    assert!(err.contains("adapter-container"), "{err}");
}
