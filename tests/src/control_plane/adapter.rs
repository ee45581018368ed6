//! Adapter Jobs on the real API server: a namespace set up as the docs say, Jobs injected by
//! offline `inject`, and the real reporter run for a Pod the Job controller created, with the
//! ServiceAccount's own token and the env the kubelet would give it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use super::objects::{in_namespace, inject_file, yaml_docs};
use super::{Cluster, kubelet};
use crate::reporter_process::{Reporter, reporter_vars};

/// The ServiceAccount of `manifests/examples/rbac.yaml`.
pub const SERVICE_ACCOUNT: &str = "status-reporter-example";

/// A namespace ready for adapter Jobs, and a scratch directory (results, kubeconfigs).
pub struct AdapterNamespace {
    /// The namespace.
    pub name: String,
    /// An admin client.
    pub client: kube::Client,
    /// A kubeconfig holding the example ServiceAccount's token.
    pub kubeconfig: PathBuf,
    /// Scratch space, removed on drop.
    pub dir: tempfile::TempDir,
}

fn root() -> PathBuf {
    super::binaries::workspace_root()
}

/// A new namespace with the shipped ClusterRole, `examples/rbac.yaml` applied in it, and a
/// kubeconfig for its ServiceAccount.
pub async fn adapter_namespace(cluster: &Cluster, prefix: &str) -> AdapterNamespace {
    let client = cluster.client().await;
    let name = cluster.namespace(&client, prefix, &[]).await;
    for file in ["common/reporter-clusterrole.yaml", "examples/rbac.yaml"] {
        let file = root().join("manifests").join(file);
        let text = std::fs::read_to_string(&file).expect("the shipped RBAC");
        let mut objects = yaml_docs(&text, &file.display().to_string());
        in_namespace(&mut objects, &name);
        let (ok, out, err) = cluster.apply(&objects, false);
        assert!(ok, "kubectl apply {}: {err}\n{out}", file.display());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = cluster
        .service_account_kubeconfig(&client, &name, SERVICE_ACCOUNT, dir.path())
        .await;
    AdapterNamespace {
        name,
        client,
        kubeconfig,
        dir,
    }
}

/// The shipped reporter ClusterRole (`manifests/common/reporter-clusterrole.yaml`).
pub fn shipped_reporter_role() -> ClusterRole {
    let text = std::fs::read_to_string(root().join("manifests/common/reporter-clusterrole.yaml"))
        .expect("the shipped reporter ClusterRole");
    let role = yaml_docs(&text, "reporter-clusterrole.yaml").remove(0);
    serde_json::from_value(role).expect("a ClusterRole")
}

/// Every `(apiGroup, resource, verb)` the shipped reporter ClusterRole grants.
pub fn shipped_reporter_grants() -> Vec<(String, String, String)> {
    let mut grants = Vec::new();
    for rule in shipped_reporter_role().rules.unwrap_or_default() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    grants.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    grants
}

/// Like [`adapter_namespace`], but its ServiceAccount is bound to a copy of the shipped
/// ClusterRole without `verb` on `resource`.
pub async fn adapter_namespace_without(
    cluster: &Cluster,
    prefix: &str,
    resource: &str,
    verb: &str,
) -> AdapterNamespace {
    let ns = adapter_namespace(cluster, prefix).await;
    let mut role = shipped_reporter_role();
    let resource_name = resource.replace('/', "-");
    let role_name = format!("status-reporter-without-{verb}-{resource_name}");
    role.metadata.name = Some(role_name.clone());
    let rules = role.rules.get_or_insert_default();
    let granted = |rules: &[PolicyRule]| rules.iter().map(|r| r.verbs.len()).sum::<usize>();
    let before = granted(rules);
    for rule in rules.iter_mut() {
        if rule.resources.iter().flatten().any(|r| r == resource) {
            rule.verbs.retain(|v| v != verb);
        }
    }
    let removed = granted(rules) < before;
    assert!(
        removed,
        "the shipped ClusterRole grants {verb} on {resource}"
    );
    // A rule left without verbs is invalid: drop it.
    rules.retain(|r| !r.verbs.is_empty());
    // roleRef is immutable: the binding is replaced.
    let delete = ["-n", &ns.name, "delete", "rolebinding", SERVICE_ACCOUNT];
    let (ok, _, err) = cluster.kubectl_run(&delete, None);
    assert!(ok, "kubectl {delete:?}: {err}");
    let group = "rbac.authorization.k8s.io";
    let binding = json!({"apiVersion": format!("{group}/v1"), "kind": "RoleBinding",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns.name},
        "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns.name}]});
    let role = serde_json::to_value(role).expect("a ClusterRole");
    let (ok, _, err) = cluster.apply(&[role, binding], false);
    assert!(ok, "apply {role_name} and its binding: {err}");
    ns
}

/// `manifests/examples/job.yaml` after offline `inject --sidecar-mode mode`, renamed to `name`,
/// with `annotations` added to the Job; mode `none`: as a user without the reporter runs it
/// (not injected, no annotations).
pub fn example_job(name: &str, mode: &str, annotations: &[(&str, &str)]) -> Value {
    let file = root().join("manifests/examples/job.yaml");
    let text = std::fs::read_to_string(&file).expect("the example Job");
    let mut job = yaml_docs(&text, "examples/job.yaml").remove(0);
    job["metadata"]["name"] = json!(name);
    if mode == "none" {
        job["metadata"]["annotations"] = json!({});
        return job;
    }
    for (k, v) in annotations {
        job["metadata"]["annotations"][*k] = json!(v);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, job.to_string()).expect("write");
    let mut injected = inject_file(&file, &["--sidecar-mode", mode]);
    assert_eq!(injected.len(), 1, "one Job in, one out");
    injected.remove(0)
}

/// [`example_job`] (the injected `manifests/examples/job.yaml`) with `spec` merged into its
/// spec: `completions`, `completionMode`, `backoffLimit`, `successPolicy`, … (the injected pod
/// template does not depend on them).
pub fn shaped_job(name: &str, mode: &str, annotations: &[(&str, &str)], spec: Value) -> Value {
    let mut job = example_job(name, mode, annotations);
    let Value::Object(fields) = spec else {
        panic!("shaped_job: spec must be an object, got {spec}")
    };
    for (k, v) in fields {
        job["spec"][k] = v;
    }
    job
}

impl AdapterNamespace {
    /// Creates `job` (moved into this namespace) through the API (and its admission chain).
    pub async fn create_job(&self, mut job: Value) -> Job {
        job["metadata"]["namespace"] = json!(self.name);
        let job: Job = serde_json::from_value(job).expect("a Job");
        let api: Api<Job> = Api::namespaced(self.client.clone(), &self.name);
        api.create(&PostParams::default(), &job)
            .await
            .unwrap_or_else(|e| panic!("create Job in {}: {e}", self.name))
    }

    /// Waits (bounded) until `accept` holds for Job `job` (`what` names it); returns the Job.
    pub async fn wait_job(
        &self,
        job: &str,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&Job) -> bool,
    ) -> Job {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &self.name);
        match super::wait_object(api.clone(), job, timeout, accept).await {
            Ok(j) => j,
            Err(e) => {
                let now = api.get(job).await.ok();
                panic!(
                    "no {what}: {e}; conditions now: {}",
                    serde_json::to_string_pretty(
                        &now.and_then(|j| j.status).and_then(|s| s.conditions)
                    )
                    .unwrap_or_default()
                )
            }
        }
    }

    /// Waits (bounded) for the Job's condition of `type_` and returns it.
    pub async fn wait_condition(&self, job: &str, type_: &str, timeout: Duration) -> JobCondition {
        let job = self
            .wait_job(job, &format!("condition {type_}"), timeout, |j| {
                condition(j, type_).is_some()
            })
            .await;
        condition(&job, type_).expect("present")
    }

    /// An empty results directory `name` in the scratch space, for one reporter.
    pub fn results_dir(&self, name: &str) -> PathBuf {
        let results = self.dir.path().join(name);
        std::fs::create_dir_all(&results).unwrap_or_else(|e| panic!("{}: {e}", results.display()));
        results
    }

    /// Job `job`'s pod, as the Job controller created it (waited for up to `timeout`),
    /// running as the kubelet would say, and an empty results directory for its reporter.
    pub async fn running_pod(&self, job: &str, timeout: Duration) -> (Pod, PathBuf) {
        let pod = kubelet::wait_for_pods(&self.client, &self.name, job, 1, timeout)
            .await
            .remove(0);
        let pod_name = pod.metadata.name.clone().expect("pod name");
        let pod = kubelet::run_pod(&self.client, &self.name, &pod_name).await;
        (pod, self.results_dir("results"))
    }

    /// Starts [`AdapterNamespace::reporter_command`] with the reporter under test.
    pub fn start_reporter(&self, pod: &Pod, results: &Path, extra: &[(&str, &str)]) -> Reporter {
        let bin = crate::bin::path("status-reporter");
        Reporter::spawn(self.reporter_command(&bin, pod, results, extra))
    }

    /// The reporter `bin` for `pod` as the kubelet would run it: its container's env resolved on
    /// the Pod ([`reporter_env`]), `RESULTS_PATH` moved into `results`, the ServiceAccount's
    /// kubeconfig, `extra` on top.
    pub fn reporter_command(
        &self,
        bin: &Path,
        pod: &Pod,
        results: &Path,
        extra: &[(&str, &str)],
    ) -> Command {
        let env = reporter_env(pod);
        let mut cmd = Command::new(bin);
        for var in reporter_vars() {
            cmd.env_remove(var);
        }
        let file = env
            .get("RESULTS_PATH")
            .map(Path::new)
            .and_then(Path::file_name);
        cmd.envs(&env)
            .env(
                "RESULTS_PATH",
                results.join(file.unwrap_or("adapter-result.json".as_ref())),
            )
            .env("KUBECONFIG", &self.kubeconfig)
            .env("LOG_LEVEL", "debug")
            .env("LOG_FORMAT", "text")
            .envs(extra.iter().copied());
        cmd
    }
}

/// Sets the condition `condition` (replacing one of its type) on Job `namespace/job`, as the
/// Job controller or another reporter would (see [`super::update_status`]).
pub async fn set_job_condition(
    client: &kube::Client,
    namespace: &str,
    job: &str,
    condition: Value,
) {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let condition: JobCondition = serde_json::from_value(condition).expect("a JobCondition");
    super::update_status(&api, job, |current| {
        let status = current.status.get_or_insert_with(Default::default);
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        conditions.retain(|c| c.type_ != condition.type_);
        conditions.push(condition.clone());
    })
    .await;
}

/// The Job's condition of `type_`.
pub fn condition(job: &Job, type_: &str) -> Option<JobCondition> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == type_).cloned()
}

/// The types of the Job's conditions, in order.
pub fn condition_types(job: &Job) -> Vec<String> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .map(|c| c.type_.clone())
        .collect()
}

/// The `status-reporter` container's env as the kubelet resolves it on `pod`.
pub fn reporter_env(pod: &Pod) -> BTreeMap<String, String> {
    let spec = pod.spec.as_ref().expect("a pod has a spec");
    let reporter = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == "status-reporter")
        .expect("the Pod has the status-reporter container");
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let mut env = BTreeMap::new();
    for var in reporter.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            v.clone()
        } else if let Some(field) = var.value_from.as_ref().and_then(|f| f.field_ref.as_ref()) {
            let path = field.field_path.as_str();
            match path {
                "metadata.name" => pod.metadata.name.clone().expect("pod name"),
                "metadata.namespace" => pod.metadata.namespace.clone().expect("pod namespace"),
                _ => {
                    let key = path
                        .strip_prefix("metadata.labels['")
                        .and_then(|k| k.strip_suffix("']"))
                        .unwrap_or_else(|| panic!("env {}: unexpected fieldRef {path}", var.name));
                    labels.get(key).cloned().unwrap_or_else(|| {
                        panic!(
                            "env {}: fieldRef {path} does not resolve on pod {}: it has no label {key} (labels: {labels:?})",
                            var.name,
                            pod.metadata.name.as_deref().unwrap_or("?")
                        )
                    })
                }
            }
        } else {
            panic!("env {} is neither a value nor a fieldRef", var.name)
        };
        env.insert(var.name.clone(), value);
    }
    env
}
