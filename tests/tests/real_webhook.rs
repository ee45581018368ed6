//! The real webhook in the real API server's admission chain: `serve` on loopback with a
//! certificate from its own `certs`, the shipped webhook configuration with only `clientConfig`
//! pointed at it. The real matchConditions, Pod Security admission, Job controller and
//! failurePolicy decide what happens. Each test has the admission control plane to itself
//! (`Cluster::admission`), since a webhook configuration changes every Job of the cluster.

use std::time::Duration;

use harness::control_plane::adapter::{AdapterNamespace, adapter_namespace, reporter_env};
use harness::control_plane::objects::{list, yaml_docs};
use harness::control_plane::webhook::{InstalledWebhook, manifests};
use harness::control_plane::{Cluster, kubelet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const INJECT: &str = "status-reporter.hyperfleet.io/inject";

/// `manifests/examples/job.yaml` as a user writes it (opted in), renamed, in `namespace`.
fn example_job(name: &str, namespace: &str) -> Value {
    let text = std::fs::read_to_string(manifests().join("examples/job.yaml")).expect("example");
    let mut job = yaml_docs(&text, "examples/job.yaml").remove(0);
    job["metadata"]["name"] = json!(name);
    job["metadata"]["namespace"] = json!(namespace);
    job
}

fn reporter_containers(pod_spec: &Value) -> usize {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|l| pod_spec[l].as_array())
        .flatten()
        .filter(|c| c["name"] == "status-reporter")
        .count()
}

/// `kubectl create -f -` of one object; returns (success, stderr).
fn kubectl_create(cluster: &Cluster, obj: &Value) -> (bool, String) {
    let (ok, _, err) = cluster.kubectl_run(
        &["create", "-f", "-"],
        Some(&list(std::slice::from_ref(obj))),
    );
    (ok, err)
}

async fn stored_job(ns: &AdapterNamespace, name: &str) -> Value {
    let api: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    serde_json::to_value(api.get(name).await.expect("stored Job")).expect("json")
}

async fn first_pod(ns: &AdapterNamespace, job: &str) -> Pod {
    kubelet::wait_for_pods(&ns.client, &ns.name, job, 1, WAIT)
        .await
        .remove(0)
}

#[tokio::test]
async fn an_opted_in_job_is_stored_injected_and_the_job_controller_creates_its_pod_with_the_sidecar()
 {
    let cluster = Cluster::admission();
    let webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "injected").await;
    let (ok, err) = kubectl_create(&cluster, &example_job("adapter", &ns.name));
    assert!(ok, "create: {err}");
    let job = stored_job(&ns, "adapter").await;
    // The webhook (JSON logs, `info`, as deployed) logged the API server's review.
    let server = webhook.server.as_ref().expect("the webhook runs");
    let line = server.logs.wait_for(
        &["admission review", r#""outcome":"injected""#],
        Duration::from_secs(30),
    );
    let logged: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(
        logged["fields"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{line}"
    );
    assert_eq!(
        reporter_containers(&job["spec"]["template"]["spec"]),
        1,
        "stored Job: {job:#}"
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["annotations"]["status-reporter.hyperfleet.io/status"],
        "injected"
    );
    let pod = first_pod(&ns, "adapter").await;
    let pod_json = serde_json::to_value(&pod).expect("json");
    assert_eq!(
        reporter_containers(&pod_json["spec"]),
        1,
        "the Job controller's Pod: {pod_json:#}"
    );
    // Every downward-API fieldRef of the reporter resolves on the created Pod.
    let env = reporter_env(&pod);
    assert_eq!(env["JOB_NAME"], "adapter");
    assert_eq!(env["JOB_NAMESPACE"], ns.name);
}

#[tokio::test]
async fn in_a_restricted_namespace_the_injected_job_and_its_pod_are_admitted_without_warnings() {
    let cluster = Cluster::admission();
    let _webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "restricted").await;
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
            "pod-security.kubernetes.io/audit=restricted",
        ],
        None,
    );
    assert!(ok, "label: {err}");
    let (ok, err) = kubectl_create(&cluster, &example_job("adapter", &ns.name));
    assert!(ok, "create: {err}");
    assert!(!err.contains("Warning"), "the API server warned: {err}");
    // Enforced on the Pod the Job controller creates: it exists only if admitted.
    let pod = first_pod(&ns, "adapter").await;
    assert_eq!(
        reporter_containers(&serde_json::to_value(&pod).expect("json")["spec"]),
        1
    );
}

#[tokio::test]
async fn a_job_not_opted_in_never_reaches_the_webhook_and_is_stored_unchanged() {
    let cluster = Cluster::admission();
    let webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "plain").await;
    let before = webhook.reviews().await;
    let mut plain = example_job("plain", &ns.name);
    plain["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .retain(|k, _| !k.starts_with("status-reporter.hyperfleet.io/"));
    let (ok, err) = kubectl_create(&cluster, &plain);
    assert!(ok, "create: {err}");
    let stored = stored_job(&ns, "plain").await;
    assert_eq!(reporter_containers(&stored["spec"]["template"]["spec"]), 0);
    // Unchanged by us (the API server's own defaults aside): no volume, no env, no status.
    let template = &stored["spec"]["template"];
    assert!(
        template["spec"]["volumes"].is_null(),
        "stored: {template:#}"
    );
    assert!(
        template["spec"]["containers"][0]["env"].is_null(),
        "stored: {template:#}"
    );
    assert!(
        template["metadata"]["annotations"].is_null(),
        "stored: {template:#}"
    );
    assert_eq!(
        webhook.reviews().await,
        before,
        "the plain Job reached the webhook"
    );
    // The count does move for an opted-in Job (so the check above can fail).
    let (ok, err) = kubectl_create(&cluster, &example_job("opted-in", &ns.name));
    assert!(ok, "create: {err}");
    assert_eq!(webhook.reviews().await, before + 1);
}

#[tokio::test]
async fn with_the_webhook_stopped_an_opted_in_job_is_refused_and_a_plain_one_admitted() {
    let cluster = Cluster::admission();
    let mut webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "down").await;
    webhook.stop_server();
    let (ok, err) = kubectl_create(&cluster, &example_job("opted-in", &ns.name));
    assert!(!ok, "an opted-in Job was admitted without its reporter");
    assert!(
        err.contains("failed calling webhook")
            && err.contains("jobs.status-reporter.hyperfleet.io"),
        "refused by the webhook call failing (failurePolicy: Fail): {err}"
    );
    let mut plain = example_job("plain", &ns.name);
    plain["metadata"]["annotations"][INJECT] = json!("false");
    let (ok, err) = kubectl_create(&cluster, &plain);
    assert!(
        ok,
        "a plain Job is admitted while the webhook is down: {err}"
    );
}

#[tokio::test]
async fn a_bad_annotation_is_refused_with_the_webhooks_message() {
    let cluster = Cluster::admission();
    let _webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "bad").await;
    let mut job = example_job("bad", &ns.name);
    job["metadata"]["annotations"]["status-reporter.hyperfleet.io/sidecar-mode"] =
        json!("sideways");
    let (ok, err) = kubectl_create(&cluster, &job);
    assert!(!ok, "a bad annotation was admitted");
    assert!(
        err.contains("admission webhook \"jobs.status-reporter.hyperfleet.io\" denied the request")
            && err.contains("status-reporter.hyperfleet.io/sidecar-mode")
            && err.contains("sideways")
            && err.contains("native"),
        "kubectl shows the webhook's message naming the annotation and the accepted values: {err}"
    );
}

#[tokio::test]
async fn a_cronjobs_job_and_a_generate_name_job_get_the_sidecar_with_resolvable_field_refs() {
    let cluster = Cluster::admission();
    let _webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "made").await;

    let text = std::fs::read_to_string(manifests().join("examples/cronjob.yaml")).expect("cron");
    let mut cron = yaml_docs(&text, "examples/cronjob.yaml").remove(0);
    cron["metadata"]["namespace"] = json!(ns.name);
    // Suspended: the test makes its Job itself (below). A live CronJob outlives the test and
    // fires on its schedule, sending a review to whichever webhook a later test on this
    // control plane installed (a CI run met one at :45, counted as an extra review).
    cron["spec"]["suspend"] = json!(true);
    let (ok, err) = kubectl_create(&cluster, &cron);
    assert!(ok, "create CronJob: {err}");
    let cron_name = cron["metadata"]["name"].as_str().expect("name").to_owned();
    // The Job the CronJob would make, made now (same template, same admission path).
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "-n",
            &ns.name,
            "create",
            "job",
            "from-cron",
            &format!("--from=cronjob/{cron_name}"),
        ],
        None,
    );
    assert!(ok, "kubectl create job --from=cronjob: {err}");

    let mut generated = example_job("ignored", &ns.name);
    let meta = generated["metadata"].as_object_mut().expect("metadata");
    meta.remove("name");
    meta.insert("generateName".into(), json!("generated-"));
    let (ok, _, err) = cluster.kubectl_run(
        &["create", "-f", "-", "-o", "jsonpath={.metadata.name}"],
        Some(&list(&[generated])),
    );
    assert!(ok, "create generateName Job: {err}");
    let api: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let generated_name = api
        .list(&Default::default())
        .await
        .expect("list jobs")
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .find(|n| n.starts_with("generated-"))
        .expect("the generateName Job");

    for job in ["from-cron", generated_name.as_str()] {
        let pod = first_pod(&ns, job).await;
        // Panics if a fieldRef does not resolve on the Pod the Job controller made.
        let env = reporter_env(&pod);
        assert_eq!(
            env["JOB_NAME"], job,
            "{job}: JOB_NAME from the job-name label"
        );
        assert_eq!(
            env["POD_NAME"],
            pod.metadata.name.clone().unwrap_or_default()
        );
        assert_eq!(env["JOB_NAMESPACE"], ns.name);
        if let Some(uid) = env.get("JOB_UID") {
            let stored = api.get(job).await.expect("job");
            assert_eq!(Some(uid), stored.metadata.uid.as_ref(), "{job}: JOB_UID");
        }
    }
}

#[tokio::test]
async fn a_labelled_namespace_sends_each_job_to_one_webhook_entry_and_an_opt_out_to_none() {
    let cluster = Cluster::admission();
    let webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "labelled").await;
    let (ok, _, err) = cluster.kubectl_run(
        &["label", "namespace", &ns.name, &format!("{INJECT}=enabled")],
        None,
    );
    assert!(ok, "label: {err}");

    let mut plain = example_job("plain", &ns.name);
    plain["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .retain(|k, _| !k.starts_with("status-reporter.hyperfleet.io/"));
    let annotated = example_job("annotated", &ns.name);
    let mut opted_out = example_job("opted-out", &ns.name);
    opted_out["metadata"]["annotations"][INJECT] = json!("false");
    // Reviews per Job: the number of webhook entries the API server called for it. The
    // annotated Job matches the opt-in of both entries, but the namespaceSelectors send it to
    // one only (were it two, the second would find the reporter and add nothing, so only the
    // count tells); the opted-out Job reaches neither.
    for (job, reporters, reviews) in [(&plain, 1, 1), (&annotated, 1, 1), (&opted_out, 0, 0)] {
        let name = job["metadata"]["name"].as_str().expect("name");
        let before = webhook.reviews().await;
        let (ok, err) = kubectl_create(&cluster, job);
        assert!(ok, "create {name}: {err}");
        assert_eq!(
            webhook.reviews().await - before,
            reviews,
            "{name}: webhook entries called"
        );
        let stored = stored_job(&ns, name).await;
        assert_eq!(
            reporter_containers(&stored["spec"]["template"]["spec"]),
            reporters,
            "{name}: {stored:#}"
        );
    }
}

/// Issue 23, item 13, on the real admission chain: in a labelled namespace a Job whose own
/// settings make injection impossible (here its adapter's relative `RESULTS_PATH`) is refused
/// with the webhook's message, which says how to run it without the reporter; annotated so,
/// it never reaches the webhook and is admitted unchanged.
#[tokio::test]
async fn in_a_labelled_namespace_a_job_that_cannot_be_injected_is_refused_saying_how_to_opt_out() {
    let cluster = Cluster::admission();
    let webhook = InstalledWebhook::install(&cluster, &manifests(), &[]);
    let ns = adapter_namespace(&cluster, "impossible").await;
    let (ok, _, err) = cluster.kubectl_run(
        &["label", "namespace", &ns.name, &format!("{INJECT}=enabled")],
        None,
    );
    assert!(ok, "label: {err}");
    let mut job = example_job("relative", &ns.name);
    job["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .retain(|k, _| !k.starts_with("status-reporter.hyperfleet.io/"));
    job["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "RESULTS_PATH", "value": "out/result.json"}]);
    let before = webhook.reviews().await;
    let (ok, err) = kubectl_create(&cluster, &job);
    assert!(
        !ok,
        "a Job the webhook cannot inject was admitted in a labelled namespace"
    );
    for part in [
        "denied the request",
        "RESULTS_PATH=\"out/result.json\"",
        "annotate it status-reporter.hyperfleet.io/inject: \"false\"",
    ] {
        assert!(err.contains(part), "{part:?} not in: {err}");
    }
    assert_eq!(webhook.reviews().await, before + 1);

    job["metadata"]["annotations"][INJECT] = json!("false");
    let (ok, err) = kubectl_create(&cluster, &job);
    assert!(ok, "the opted-out Job: {err}");
    let stored = stored_job(&ns, "relative").await;
    assert_eq!(reporter_containers(&stored["spec"]["template"]["spec"]), 0);
    assert_eq!(
        webhook.reviews().await,
        before + 1,
        "the opt-out reached the webhook"
    );
}

/// Issue 23, item 13: the webhook never injects a Job of its own namespace, whatever its flags
/// say (here no `--excluded-namespaces` at all) and however that namespace is labelled.
#[tokio::test]
async fn the_webhooks_own_namespace_is_never_injected_whatever_the_flags_say() {
    let cluster = Cluster::admission();
    let ns = adapter_namespace(&cluster, "own").await;
    let (ok, _, err) = cluster.kubectl_run(
        &["label", "namespace", &ns.name, &format!("{INJECT}=enabled")],
        None,
    );
    assert!(ok, "label: {err}");
    let webhook = InstalledWebhook::install(
        &cluster,
        &manifests(),
        &["--webhook-namespace", &ns.name, "--excluded-namespaces", ""],
    );
    let before = webhook.reviews().await;
    for (name, annotated) in [("plain", false), ("annotated", true)] {
        let mut job = example_job(name, &ns.name);
        if !annotated {
            job["metadata"]["annotations"]
                .as_object_mut()
                .expect("annotations")
                .retain(|k, _| !k.starts_with("status-reporter.hyperfleet.io/"));
        }
        let (ok, err) = kubectl_create(&cluster, &job);
        assert!(ok, "create {name}: {err}");
        let stored = stored_job(&ns, name).await;
        assert_eq!(
            reporter_containers(&stored["spec"]["template"]["spec"]),
            0,
            "{name}: {stored:#}"
        );
    }
    // Both reached the webhook (the API server called it), which left them alone.
    assert_eq!(webhook.reviews().await, before + 2);
}
