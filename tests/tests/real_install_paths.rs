//! Every install path on the real API server (issue 12): the MutatingAdmissionPolicy
//! (`manifests/overlays/admission-policy`) stores the same Job as the webhook for every fixture
//! it claims to cover; the guard refuses what no injector handled; the Helm chart stores the
//! same objects as the kustomize directories and injects through its policy. Each test has the
//! admission control plane to itself (`Cluster::admission`) and leaves its admission chain as
//! it found it: plain.

use std::path::{Path, PathBuf};

use harness::control_plane::admission_chain::{Admission, InstalledAdmission};
use harness::control_plane::helm::{self, HelmRelease};
use harness::control_plane::objects::{differences, json_objects, object_differences};
use harness::control_plane::objects::{list, yaml_docs};
use harness::control_plane::webhook::{InstalledWebhook, manifests};
use harness::control_plane::{AdmissionGuard, Cluster, Release};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

const INJECT: &str = "status-reporter.hyperfleet.io/inject";
const STATUS: &str = "status-reporter.hyperfleet.io/status";
/// Where the shipped manifests and the chart install the webhook and the policy's settings.
const SYSTEM: &str = "status-reporter-system";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn policy_overlay() -> PathBuf {
    manifests().join("overlays/admission-policy")
}

// ---------------------------------------------------------------------------------------------
// The fixtures and what each install path must do with them.

/// Where a case's Job is created.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// A namespace of its own.
    Namespace,
    /// A namespace labelled `status-reporter.hyperfleet.io/inject=enabled`.
    LabelledNamespace,
    /// `kube-system`, which every path excludes.
    KubeSystem,
}

/// What the case's stored Job must show, beyond being the same on both paths.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Injected once: one reporter, the status annotation.
    Injected,
    /// Arrived with the reporter (rendered by `inject -f`): still exactly one.
    AlreadyInjected,
    /// Left alone: nothing of the injection on it.
    Unchanged,
}

struct Case {
    /// `tests/data/jobs/<fixture>.yaml`.
    fixture: &'static str,
    place: Place,
    /// The fixture without its inject annotations (opted in by its namespace only).
    strip_inject: bool,
    expect: Expect,
}

const fn case(fixture: &'static str, expect: Expect) -> Case {
    Case {
        fixture,
        place: Place::Namespace,
        strip_inject: false,
        expect,
    }
}

/// Every fixture the policy claims to cover, and the namespace opt-in on two of them.
const CASES: &[Case] = &[
    case("all-annotations", Expect::Injected),
    case("already-injected", Expect::AlreadyInjected),
    case("classic-mode", Expect::Injected),
    case("cronjob-made", Expect::Injected),
    case("existing-env-volumes", Expect::Injected),
    case("existing-mounts", Expect::Injected),
    case("generate-name", Expect::Injected),
    // Multi-pod shapes: injected alike (the webhook's admission warning for a NonIndexed
    // multi-pod Job is what a MutatingAdmissionPolicy cannot give; docs/install.md says so).
    case("indexed-shards", Expect::Injected),
    case("parallel-nonindexed", Expect::Injected),
    case("work-queue", Expect::Injected),
    case("init-containers", Expect::Injected),
    case("minimal", Expect::Injected),
    case("multi-container-annotated", Expect::Injected),
    case("multi-container-first", Expect::Injected),
    case("no-automount-token", Expect::Injected),
    case("not-annotated", Expect::Unchanged),
    case("opted-out", Expect::Unchanged),
    Case {
        place: Place::KubeSystem,
        ..case("excluded-namespace", Expect::Unchanged)
    },
    Case {
        place: Place::LabelledNamespace,
        strip_inject: true,
        ..case("minimal", Expect::Injected)
    },
    Case {
        place: Place::LabelledNamespace,
        ..case("opted-out", Expect::Unchanged)
    },
];

/// Fixtures the policy does not cover, each listed in docs/install.md with the webhook as the
/// answer: the webhook refuses them with a message naming the annotation; the policy leaves
/// them alone and the guard refuses them with a general one.
const NOT_COVERED: &[&str] = &["bad-adapter-container"];

fn fixture_path(name: &str) -> PathBuf {
    root().join(format!("tests/data/jobs/{name}.yaml"))
}

fn fixture(name: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_docs(&text, &path.display().to_string()).remove(0)
}

impl Case {
    fn label(&self) -> String {
        let mut label = format!("{}.yaml", self.fixture);
        if self.strip_inject {
            label.push_str(" without its inject annotation");
        }
        match self.place {
            Place::Namespace => {}
            Place::LabelledNamespace => label.push_str(" in a labelled namespace"),
            Place::KubeSystem => label.push_str(" in kube-system"),
        }
        label
    }

    /// The Job to create on the path named `path` (`webhook`, `policy`) in `namespaces`.
    fn job(&self, path: &str, namespaces: &Namespaces) -> Value {
        let mut job = fixture(self.fixture);
        let meta = job["metadata"].as_object_mut().expect("metadata");
        // The fixtures name their Job's CronJob; here there is none, and the garbage
        // collector would delete the Job for it.
        meta.remove("ownerReferences");
        meta.insert(
            "namespace".into(),
            json!(match self.place {
                Place::Namespace => namespaces.plain.as_str(),
                Place::LabelledNamespace => namespaces.labelled.as_str(),
                Place::KubeSystem => "kube-system",
            }),
        );
        // Fixtures share Job names; a generateName stays as it is.
        if meta.contains_key("name") {
            let name = match self.place {
                // One namespace for both paths: one name each.
                Place::KubeSystem => format!("{}-{path}", self.fixture),
                _ => self.fixture.to_owned(),
            };
            meta.insert("name".into(), json!(name));
        }
        if self.strip_inject {
            for at in [
                "/metadata/annotations",
                "/spec/template/metadata/annotations",
            ] {
                if let Some(a) = job.pointer_mut(at).and_then(Value::as_object_mut) {
                    a.remove(INJECT);
                }
            }
        }
        job
    }
}

// ---------------------------------------------------------------------------------------------
// Creating Jobs and reading what was stored.

/// A test's namespaces (one plain, one labelled for injection) and a client that creates Jobs
/// through the API server's admission chain.
struct Namespaces {
    client: kube::Client,
    plain: String,
    labelled: String,
}

async fn namespaces(cluster: &Cluster, path: &str) -> Namespaces {
    let client = cluster.client().await;
    let plain = cluster.namespace(&client, path, &[]).await;
    let labelled = cluster
        .namespace(&client, &format!("{path}-labelled"), &[(INJECT, "enabled")])
        .await;
    Namespaces {
        client,
        plain,
        labelled,
    }
}

impl Namespaces {
    fn jobs(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            namespace,
            &ApiResource::erase::<Job>(&()),
        )
    }

    /// Creates `job` (in the namespace it names): the Job as stored — the answer to the
    /// create is what admission let through — or the API server's refusal message.
    async fn create(&self, job: &Value) -> Result<Value, String> {
        let namespace = job["metadata"]["namespace"].as_str().expect("namespace");
        let object: DynamicObject = serde_json::from_value(job.clone()).expect("a Job");
        match self
            .jobs(namespace)
            .create(&PostParams::default(), &object)
            .await
        {
            Ok(stored) => Ok(serde_json::to_value(stored).expect("json")),
            Err(kube::Error::Api(status)) => Err(status.message),
            Err(e) => panic!("create Job in {namespace}: {e}"),
        }
    }

    /// Deletes a stored Job (its Pods follow in the background).
    async fn delete(&self, stored: &Value) {
        let meta = &stored["metadata"];
        let (namespace, name) = (meta["namespace"].as_str(), meta["name"].as_str());
        let (namespace, name) = (namespace.expect("namespace"), name.expect("name"));
        self.jobs(namespace)
            .delete(name, &DeleteParams::background())
            .await
            .unwrap_or_else(|e| panic!("delete Job {namespace}/{name}: {e}"));
    }

    /// Creates `job` and returns its stored `spec.template` (see [`template_of`]); panics
    /// with the refusal, naming `what`.
    async fn create_template(&self, job: &Value, what: &str) -> Value {
        let stored = self
            .create(job)
            .await
            .unwrap_or_else(|e| panic!("{what}: refused: {e}"));
        template_of(&stored)
    }
}

/// A stored Job's `spec.template`, without what the API server's defaulting adds for this
/// one Job (its uid and name labels): the rest must not depend on the install path.
fn template_of(job: &Value) -> Value {
    let mut template = job["spec"]["template"].clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        for key in [
            "batch.kubernetes.io/controller-uid",
            "controller-uid",
            "batch.kubernetes.io/job-name",
            "job-name",
        ] {
            labels.remove(key);
        }
        if labels.is_empty() {
            template["metadata"]
                .as_object_mut()
                .expect("metadata")
                .remove("labels");
        }
    }
    template
}

/// Creates every case's Job on the path named `path`; the stored template of each (or
/// the refusal).
async fn create_cases(cluster: &Cluster, path: &str) -> Vec<Result<Value, String>> {
    let namespaces = namespaces(cluster, path).await;
    let mut out = Vec::new();
    for case in CASES {
        let stored = namespaces.create(&case.job(path, &namespaces)).await;
        if let (Ok(job), Place::KubeSystem) = (&stored, case.place) {
            namespaces.delete(job).await;
        }
        out.push(stored.map(|job| template_of(&job)));
    }
    out
}

/// What of the injection a pod template carries: each reporter container, the status
/// annotation, our volumes, each `RESULTS_PATH`.
fn injection_marks(template: &Value) -> Vec<String> {
    let spec = &template["spec"];
    let mut marks = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            if c["name"] == "status-reporter" {
                marks.push(format!("{list}: status-reporter"));
            }
            for e in c["env"].as_array().into_iter().flatten() {
                if e["name"] == "RESULTS_PATH" {
                    marks.push(format!("{}: env RESULTS_PATH", c["name"]));
                }
            }
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if v["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("status-reporter-"))
        {
            marks.push(format!("volume {}", v["name"]));
        }
    }
    if let Some(status) = template["metadata"]["annotations"][STATUS].as_str() {
        marks.push(format!("annotation {STATUS}: {status}"));
    }
    marks
}

fn reporters(template: &Value) -> usize {
    injection_marks(template)
        .iter()
        .filter(|m| m.ends_with(": status-reporter"))
        .count()
}

/// The sum of the webhook's `…_admission_requests_total{outcome="injected"}`.
async fn injections(webhook: &InstalledWebhook<'_>) -> u64 {
    webhook
        .metrics()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("status_reporter_webhook_admission_requests_total")
                && l.contains("outcome=\"injected\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The shipped webhook (`manifests/`), tracked so that its configuration is deleted and the
/// chain is plain again when the test ends.
fn install_webhook<'a>(
    cluster: &'a AdmissionGuard,
    base: &Path,
    serve_args: &[&str],
) -> (InstalledWebhook<'a>, InstalledAdmission<'a>) {
    let tracked = InstalledAdmission::track(cluster, &cluster.kustomize(base));
    let webhook = InstalledWebhook::install(cluster, base, serve_args);
    cluster.expect_admission("after installing the webhook", Admission::is_injected);
    (webhook, tracked)
}

/// The test may begin: the release serves the admission policy and Helm is built for it, and
/// no other install is left in the admission chain.
fn starts_plain(cluster: &Cluster) {
    assert_eq!(
        cluster.release,
        Release::Current,
        "the install paths need Kubernetes >= 1.36 (MutatingAdmissionPolicy v1) and Helm, which only the current release's build has"
    );
    cluster.expect_admission(
        "before the test (left over by another?)",
        Admission::is_plain,
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The policy path injects what the webhook injects.

#[test]
fn every_fixture_is_a_case_or_listed_as_not_covered_in_the_docs() {
    let dir = root().join("tests/data/jobs");
    let mut fixtures: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/data/jobs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 10, "fixtures: {fixtures:?}");
    let docs = std::fs::read_to_string(root().join("docs/install.md")).expect("docs/install.md");
    for f in &fixtures {
        let covered = CASES
            .iter()
            .any(|c| c.fixture == f && c.place != Place::LabelledNamespace);
        let listed = NOT_COVERED.contains(&f.as_str());
        assert!(
            covered != listed,
            "tests/data/jobs/{f}.yaml must be exactly one of: a case of the policy-equals-webhook test, or NOT_COVERED"
        );
        if listed {
            assert!(
                docs.contains(&format!("tests/data/jobs/{f}.yaml")),
                "docs/install.md does not list tests/data/jobs/{f}.yaml among what the policy does not cover"
            );
        }
    }
}

#[tokio::test]
async fn the_policy_stores_every_covered_fixture_exactly_as_the_webhook_does() {
    let cluster = Cluster::admission();
    starts_plain(&cluster);

    let by_webhook = {
        let (webhook, tracked) = install_webhook(&cluster, &manifests(), &[]);
        let before = injections(&webhook).await;
        let stored = create_cases(&cluster, "by-webhook").await;
        // The webhook injected each of them itself (no stale policy did it first).
        let want = CASES
            .iter()
            .filter(|c| c.expect == Expect::Injected)
            .count() as u64;
        assert_eq!(
            injections(&webhook).await - before,
            want,
            "webhook injections"
        );
        tracked.remove();
        stored
    };
    let by_policy = {
        let policy = InstalledAdmission::apply_kustomization(&cluster, &policy_overlay());
        let stored = create_cases(&cluster, "by-policy").await;
        policy.remove();
        stored
    };

    let mut failures = Vec::new();
    for ((case, webhook), policy) in CASES.iter().zip(&by_webhook).zip(&by_policy) {
        let label = case.label();
        let (webhook, policy) = match (webhook, policy) {
            (Ok(w), Ok(p)) => (w, p),
            (w, p) => {
                failures.push(format!("{label}: refused: webhook {w:?}, policy {p:?}"));
                continue;
            }
        };
        let differences = differences(webhook, policy);
        if !differences.is_empty() {
            failures.push(format!(
                "{label}: the stored template differs (left: webhook, right: policy):\n  {}",
                differences.join("\n  ")
            ));
        }
        let marks = injection_marks(policy);
        let ok = match case.expect {
            Expect::Injected => {
                reporters(policy) == 1 && marks.contains(&format!("annotation {STATUS}: injected"))
            }
            Expect::AlreadyInjected => reporters(policy) == 1,
            Expect::Unchanged => marks.is_empty(),
        };
        if !ok {
            failures.push(format!(
                "{label}: expected {:?}, stored: {marks:?}",
                case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn with_the_policy_and_the_webhook_both_installed_a_job_gets_one_reporter() {
    // "Never both" (docs/install.md), but if both are: the API server runs the policy first
    // (its admission plugin comes before the webhooks'); the webhook then finds the reporter
    // and adds nothing.
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    // The webhook injects an image of its own, so the probe tells which injector acted.
    let image = "webhook.invalid/status-reporter:both";
    let (webhook, tracked) = install_webhook(&cluster, &manifests(), &["--reporter-image", image]);
    cluster.expect_admission("the webhook alone", |a| {
        a == &Admission::Injected(image.into())
    });
    let installed = tracked.and(InstalledAdmission::apply_kustomization(
        &cluster,
        &policy_overlay(),
    ));
    cluster.expect_admission("the policy before the webhook", |a| {
        a.is_injected() && a != &Admission::Injected(image.into())
    });

    let namespaces = namespaces(&cluster, "both").await;
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| c.place == Place::Namespace && c.expect != Expect::Unchanged)
        .collect();
    let (reviews, injected) = (webhook.reviews().await, injections(&webhook).await);
    for case in &cases {
        let template = namespaces
            .create_template(&case.job("both", &namespaces), &case.label())
            .await;
        assert_eq!(reporters(&template), 1, "{}: {template:#}", case.label());
    }
    // Every one of them went through the webhook too, which left it as it was.
    assert_eq!(
        webhook.reviews().await - reviews,
        cases.len() as u64,
        "webhook reviews"
    );
    assert_eq!(
        injections(&webhook).await,
        injected,
        "the webhook injected a second reporter"
    );
    installed.remove();
}

// ---------------------------------------------------------------------------------------------
// 2. The guard.

/// How the API server names the guard in a refusal.
const GUARD: &str = "ValidatingAdmissionPolicy 'status-reporter-guard'";

/// The guard's refusal of an opted-in Job without the reporter.
fn is_guard_refusal(message: &str) -> bool {
    message.contains(GUARD)
        && message.contains("this Job opted in to status-reporter")
        && message.contains("but has no status-reporter container")
        && message.contains("Fix:")
}

#[tokio::test]
async fn with_no_match_conditions_and_the_webhook_stopped_the_guard_refuses_an_opted_in_job() {
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    let overlay = manifests().join("overlays/no-match-conditions");
    let (mut webhook, tracked) = install_webhook(&cluster, &overlay, &[]);
    webhook.stop_server();
    // failurePolicy Ignore: the failed call admits every Job; the guard then refuses the
    // opted-in ones.
    cluster
        .settle_admission(
            "true",
            |a| matches!(a, Admission::Refused(m) if is_guard_refusal(m)),
        )
        .unwrap_or_else(|now| panic!("with the webhook down an opted-in Job is {now:?}"));
    let namespaces = namespaces(&cluster, "guard").await;

    let opted_in = case("minimal", Expect::Injected).job("guard", &namespaces);
    let refused = namespaces
        .create(&opted_in)
        .await
        .expect_err("an opted-in Job without its reporter");
    assert!(is_guard_refusal(&refused), "{refused}");
    assert!(
        refused.contains("annotation status-reporter.hyperfleet.io/inject: \"true\""),
        "names the opt-in: {refused}"
    );

    let plain = case("not-annotated", Expect::Unchanged).job("guard", &namespaces);
    let stored = namespaces.create_template(&plain, "a plain Job").await;
    assert_eq!(injection_marks(&stored), Vec::<String>::new());
    tracked.remove();
}

#[tokio::test]
async fn the_policy_paths_guard_refuses_what_the_policy_left_alone_with_its_message() {
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    let policy = InstalledAdmission::apply_kustomization(&cluster, &policy_overlay());
    // The install returns once the policy injects; the guard's binding reaches the API
    // server through its own informer, possibly a moment later.
    cluster
        .settle_admission(
            "yes",
            |a| matches!(a, Admission::Refused(m) if m.contains(GUARD)),
        )
        .unwrap_or_else(|now| panic!("after the install, inject: \"yes\" is {now:?}"));
    let namespaces = namespaces(&cluster, "policy-guard").await;

    let mut bad = case("minimal", Expect::Injected).job("guard", &namespaces);
    bad["metadata"]["annotations"][INJECT] = json!("yes");
    let refused = namespaces.create(&bad).await.expect_err("inject: \"yes\"");
    assert!(
        refused.contains(GUARD)
            && refused.contains(
                "annotation status-reporter.hyperfleet.io/inject=\"yes\" is invalid; accepted: \"true\" or \"false\""
            ),
        "{refused}"
    );

    // The fixture the policy does not cover: left alone, then refused by the guard.
    let uncovered = case(NOT_COVERED[0], Expect::Unchanged).job("guard", &namespaces);
    let refused = namespaces
        .create(&uncovered)
        .await
        .expect_err(NOT_COVERED[0]);
    assert!(is_guard_refusal(&refused), "{refused}");

    // A labelled namespace's Job the policy left alone (an invalid override) names its opt-in.
    let mut labelled = case("minimal", Expect::Injected).job("guard", &namespaces);
    labelled["metadata"]["namespace"] = json!(namespaces.labelled);
    labelled["metadata"]["annotations"] =
        json!({"status-reporter.hyperfleet.io/log-level": "verbose"});
    let refused = namespaces
        .create(&labelled)
        .await
        .expect_err("an invalid log-level");
    assert!(
        is_guard_refusal(&refused)
            && refused
                .contains("its namespace is labelled status-reporter.hyperfleet.io/inject=enabled"),
        "{refused}"
    );
    policy.remove();
}

#[tokio::test]
async fn with_its_settings_missing_or_unusable_the_policy_injects_nothing_and_the_guard_says_so() {
    // Not an API server error for everybody's Jobs (parameterNotFoundAction Deny), nor this
    // policy's whole CEL as the message of a failed evaluation: the policy injects nothing,
    // every plain Job is admitted, and the guard refuses the opted-in ones naming the settings.
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    let policy = InstalledAdmission::apply_kustomization(&cluster, &policy_overlay());
    let namespaces = namespaces(&cluster, "settings").await;
    let configmap = policy_overlay().join("configmap.yaml");
    let restore = || {
        let (ok, _, err) =
            cluster.kubectl_run(&["apply", "-f", &configmap.to_string_lossy()], None);
        assert!(ok, "apply {}: {err}", configmap.display());
        cluster.expect_admission("with its ConfigMap", Admission::is_injected);
    };
    // How each breaks the settings: deleted, or a patch (type, patch).
    let breakages = [
        ("no ConfigMap", None),
        (
            "a missing key",
            Some((
                "json",
                r#"[{"op": "remove", "path": "/data/REPORTER_CPU_LIMIT"}]"#,
            )),
        ),
        (
            "a bad quantity",
            Some(("merge", r#"{"data": {"REPORTER_MEMORY_LIMIT": "lots"}}"#)),
        ),
        (
            "an unknown sidecar mode",
            Some(("merge", r#"{"data": {"SIDECAR_MODE": "sideways"}}"#)),
        ),
    ];
    for (i, (what, patch)) in breakages.into_iter().enumerate() {
        restore();
        let type_flag;
        let mut args = vec!["-n", SYSTEM];
        match patch {
            None => args.extend(["delete", "configmap", "status-reporter-policy"]),
            Some((kind, patch)) => {
                type_flag = format!("--type={kind}");
                args.extend([
                    "patch",
                    "configmap",
                    "status-reporter-policy",
                    &type_flag,
                    "-p",
                    patch,
                ]);
            }
        }
        let (ok, _, err) = cluster.kubectl_run(&args, None);
        assert!(ok, "{what}: kubectl {args:?}: {err}");
        cluster
            .settle_admission("true", |a| {
                matches!(a, Admission::Refused(m) if is_guard_refusal(m)
                    && m.contains("ConfigMap status-reporter-system/status-reporter-policy"))
            })
            .unwrap_or_else(|now| panic!("{what}: an opted-in Job is {now:?}"));
        let mut plain = case("not-annotated", Expect::Unchanged).job("settings", &namespaces);
        plain["metadata"]["name"] = json!(format!("plain-{i}"));
        let stored = namespaces
            .create_template(&plain, &format!("a plain Job with {what}"))
            .await;
        assert_eq!(injection_marks(&stored), Vec::<String>::new(), "{what}");
    }
    restore();
    policy.remove();
}

// ---------------------------------------------------------------------------------------------
// 4. Helm.

/// Every object of `objects` deleted (bounded), if there: other suites' installs leave the
/// webhook's objects behind, and Helm does not take over objects it did not create.
fn delete_objects(cluster: &Cluster, objects: &[Value]) {
    let (ok, out, err) = cluster.kubectl_run(
        &["delete", "-f", "-", "--ignore-not-found", "--wait"],
        Some(&list(objects)),
    );
    assert!(ok, "kubectl delete: {err}\n{out}");
}

/// The kustomize directory's objects, except the Namespace (the chart installs into the
/// release namespace and does not create it; the docs say to create it from
/// manifests/common/namespace.yaml first).
fn without_namespace(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .collect()
}

fn ensure_system_namespace(cluster: &Cluster) {
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "apply",
            "-f",
            &root()
                .join("manifests/common/namespace.yaml")
                .to_string_lossy(),
        ],
        None,
    );
    assert!(ok, "apply manifests/common/namespace.yaml: {err}");
}

/// `kubectl apply -k dir` and `helm install … values` store the same objects, modulo Helm's
/// labels and annotations. Returns the release (installed) and the tracked admission objects.
fn helm_stores_what_kustomize_stores<'a>(
    cluster: &'a AdmissionGuard,
    dir: &Path,
    values: &[&str],
) -> (HelmRelease<'a>, InstalledAdmission<'a>) {
    let objects = without_namespace(cluster.kustomize(dir));
    let tracked = InstalledAdmission::track(cluster, &objects);
    ensure_system_namespace(cluster);
    delete_objects(cluster, &objects);

    let (ok, out, err) = cluster.kubectl_run(&["apply", "-k", &dir.to_string_lossy()], None);
    assert!(ok, "kubectl apply -k {}: {err}\n{out}", dir.display());
    let by_kustomize = cluster.stored(&objects);
    delete_objects(cluster, &objects);

    let release = HelmRelease::install(cluster, "status-reporter", SYSTEM, values);
    let by_helm = cluster.stored(&release.manifest());
    let differences = object_differences(
        &format!("kubectl apply -k {}", dir.display()),
        &by_kustomize,
        &format!("helm install {values:?}"),
        &by_helm,
    );
    assert!(
        differences.is_empty(),
        "stored objects differ (left: kustomize, right: helm):\n{}",
        differences.join("\n")
    );
    (release, tracked)
}

#[test]
fn helm_install_with_default_values_stores_the_objects_of_the_kustomize_base() {
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    let (release, tracked) =
        helm_stores_what_kustomize_stores(&cluster, &manifests().join("base"), &[]);
    release.uninstall();
    tracked.remove();
}

#[tokio::test]
async fn helm_install_of_the_admission_policy_values_stores_the_overlays_objects_and_injects() {
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    let values = helm::example_values("admission-policy.yaml");
    let (release, tracked) = helm_stores_what_kustomize_stores(
        &cluster,
        &policy_overlay(),
        &["-f", &values.to_string_lossy()],
    );
    cluster.expect_admission(
        "after helm install (admission policy)",
        Admission::is_injected,
    );
    let namespaces = namespaces(&cluster, "helm-policy").await;
    // One Job opted in by annotation, one by its namespace's label.
    for case in CASES
        .iter()
        .filter(|c| c.fixture == "minimal" && c.expect == Expect::Injected)
    {
        let template = namespaces
            .create_template(&case.job("helm", &namespaces), &case.label())
            .await;
        let marks = injection_marks(&template);
        assert!(
            reporters(&template) == 1 && marks.contains(&format!("annotation {STATUS}: injected")),
            "{}: {marks:?}",
            case.label()
        );
    }
    release.uninstall();
    tracked.remove();
}

#[test]
fn helm_cert_manager_values_render_what_the_overlay_renders_as_the_api_server_stores_it() {
    // cert-manager's Issuer and Certificate are CRD objects this API server has no kind for:
    // `helm install` cannot create them. So both sides are rendered (`helm template`,
    // `kubectl kustomize`), the built-in objects go through a server-side dry-run (defaulted
    // and validated as they would be stored), and the CRD objects are compared as rendered.
    let cluster = Cluster::admission();
    starts_plain(&cluster);
    let values = helm::example_values("cert-manager.yaml");
    let (kustomize_crd, kustomize): (Vec<Value>, Vec<Value>) =
        without_namespace(cluster.kustomize(&manifests().join("overlays/cert-manager")))
            .into_iter()
            .partition(is_cert_manager);
    let (helm_crd, helm): (Vec<String>, Vec<String>) =
        helm::template(&cluster, SYSTEM, &["-f", &values.to_string_lossy()])
            .into_iter()
            .partition(|doc| yaml_docs(doc, "helm template").iter().all(is_cert_manager));
    let helm_crd: Vec<Value> = helm_crd
        .iter()
        .flat_map(|doc| yaml_docs(doc, "helm template"))
        .collect();
    assert_eq!(
        kustomize_crd.len(),
        4,
        "Issuers and Certificates: {kustomize_crd:#?}"
    );
    ensure_system_namespace(&cluster);
    // A dry-run create is refused for an object that exists.
    delete_objects(&cluster, &kustomize);
    let mut differences = object_differences("kustomize", &kustomize_crd, "helm", &helm_crd);
    differences.extend(object_differences(
        "kustomize (dry-run)",
        &dry_run(&cluster, &list(&kustomize)),
        "helm (dry-run)",
        &dry_run(&cluster, &helm.join("---\n")),
    ));
    assert!(
        differences.is_empty(),
        "differ (left: kustomize, right: helm):\n{}",
        differences.join("\n")
    );
}

fn is_cert_manager(obj: &Value) -> bool {
    obj["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("cert-manager.io/"))
}

/// The objects of `manifest` (YAML or JSON) as a server-side dry-run create returns them.
fn dry_run(cluster: &Cluster, manifest: &str) -> Vec<Value> {
    let (ok, out, err) = cluster.kubectl_run(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        Some(manifest),
    );
    assert!(ok, "server-side dry-run: {err}\n{out}");
    json_objects(&out, "kubectl create --dry-run=server -o json")
}
