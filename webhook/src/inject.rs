//! The pure injection step: a Job as received plus the webhook configuration become an
//! RFC 6902 JSON Patch and admission warnings. No I/O here; the webhook and the offline
//! `inject` command both read the Job the same way ([`crate::job_view`]) and come to
//! [`decide`], so they cannot drift apart.

use std::borrow::Cow;
use std::sync::LazyLock;

use json_patch::Patch;
use serde::Serialize;
use serde_json::{Value, json};

use contract::{Setting, SidecarMode, validate};

use crate::annotations::{self, Annotations};
use crate::config::InjectConfig;
use crate::error::{Error, Result};
use crate::job_view::{JobSpecView, JobView, PodView};
use crate::patch::{self, Add, Env, Fixed, Item, Mount, Reporter, ResultsVolume, SizeLimit};

/// Name of the injected container.
pub use contract::REPORTER_CONTAINER;
/// Name of the shared results volume the injector adds.
pub const RESULTS_VOLUME: &str = "status-reporter-results";
/// Name of the projected token volume added when the pod disables automounting.
pub const TOKEN_VOLUME: &str = "status-reporter-token";
/// Where Kubernetes clients look for the in-cluster service-account token.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Pod label the Job controller sets to the Job's name (reliable even with `generateName`).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// UID/GID the reporter runs as (the distroless `nonroot` user).
pub const REPORTER_UID: i64 = 65532;
/// Lifetime asked for the projected token; the kubelet refreshes it well before expiry.
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// Why the injector was asked about a Job: which opt-in the admission entry that called it
/// stands for. The webhook learns it from the path it was called on, so it never needs to
/// look the namespace up (and needs no API permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptIn {
    /// The Job opts in with the `inject` annotation (on the Job or its pod template).
    #[default]
    Annotation,
    /// The Job's namespace is labelled [`annotations::NAMESPACE_OPT_IN_LABEL`]`=enabled`:
    /// every Job is injected unless it is annotated `inject: "false"`.
    Namespace,
}

/// Why a Job was left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// No `inject` annotation.
    NotOptedIn,
    /// `inject: "false"`.
    OptedOut,
    /// The namespace is in the excluded list.
    ExcludedNamespace(String),
    /// The reporter is already there (reinvocation, or injected offline).
    AlreadyInjected,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotOptedIn => {
                write!(f, "not opted in ({} is not set)", annotations::INJECT)
            }
            SkipReason::OptedOut => write!(f, "opted out ({}=\"false\")", annotations::INJECT),
            SkipReason::ExcludedNamespace(ns) => write!(f, "namespace {ns} is excluded"),
            SkipReason::AlreadyInjected => write!(f, "the reporter is already injected"),
        }
    }
}

/// The result of [`inject`].
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    /// Nothing to do; the patch is empty.
    Skipped(SkipReason),
    /// The reporter must be added with this patch; the warnings go back to the user.
    Injected {
        /// JSON Patch against the Job as received.
        patch: Patch,
        /// Likely mistakes that are not errors.
        warnings: Vec<String>,
    },
}

impl Injection {
    /// The patch to apply (empty when skipped).
    pub fn patch(&self) -> Patch {
        match self {
            Injection::Skipped(_) => Patch(Vec::new()),
            Injection::Injected { patch, .. } => patch.clone(),
        }
    }
}

/// Computes the patch that adds the reporter to `job`, for a Job that opts in by annotation
/// (see [`inject_as`]).
///
/// `job` is anything that serializes as a Job (a k8s-openapi `Job`, a `serde_json::Value`):
/// it is read from its JSON as the webhook reads a review's. `namespace` is the admission
/// request's namespace, used when the object itself has none (objects sent to a webhook
/// usually do, offline manifests often don't).
pub fn inject<T: Serialize>(
    job: &T,
    namespace: Option<&str>,
    config: &InjectConfig,
) -> Result<Injection> {
    inject_as(job, namespace, config, OptIn::Annotation)
}

/// Computes the patch that adds the reporter to `job` under the given opt-in: by
/// annotation, an unannotated Job is left alone; in an opted-in namespace it is injected.
/// `inject: "false"` opts out either way, and the override annotations apply either way.
pub fn inject_as<T: Serialize>(
    job: &T,
    namespace: Option<&str>,
    config: &InjectConfig,
    opt_in: OptIn,
) -> Result<Injection> {
    let not_a_job = |e: serde_json::Error| Error::InvalidJob(e.to_string());
    let json = serde_json::to_vec(job).map_err(not_a_job)?;
    let view: JobView = serde_json::from_slice(&json).map_err(not_a_job)?;
    Ok(match decide(&view, namespace, config, opt_in)? {
        Decision::Skip(reason) => Injection::Skipped(reason),
        Decision::Inject(plan) => {
            let patch = patch::to_patch(&plan.operations()).map_err(Error::WritePatch)?;
            Injection::Injected {
                patch,
                warnings: plan.warnings,
            }
        }
    })
}

/// What to do with a Job: leave it, or inject it as planned.
pub enum Decision<'a> {
    /// Leave the Job unchanged.
    Skip(SkipReason),
    /// Inject the reporter.
    Inject(Plan<'a>),
}

/// The decision for a Job read as a view: [`inject_as`] without writing the patch.
///
/// A Job its namespace opted in ([`OptIn::Namespace`]) that cannot be injected is refused,
/// as an annotated one is, and the refusal says how to opt that Job out: in such a namespace
/// a Job never runs without its reporter unless it asks to.
pub fn decide<'a>(
    job: &'a JobView<'a>,
    namespace: Option<&'a str>,
    config: &'a InjectConfig,
    opt_in: OptIn,
) -> Result<Decision<'a>> {
    let namespace = job.namespace().or(namespace);
    if let Some(ns) = namespace
        && (config.excluded_namespaces.iter().any(|e| e == ns)
            || config.own_namespace.as_deref() == Some(ns))
    {
        return Ok(Decision::Skip(SkipReason::ExcludedNamespace(ns.to_owned())));
    }
    decide_opted(job, config, opt_in).map_err(|e| match opt_in {
        OptIn::Namespace => Error::NamespaceOptIn(Box::new(e)),
        OptIn::Annotation => e,
    })
}

fn decide_opted<'a>(
    job: &'a JobView<'a>,
    config: &'a InjectConfig,
    opt_in: OptIn,
) -> Result<Decision<'a>> {
    let Some(spec) = job.spec.as_ref() else {
        return Err(Error::InvalidJob("spec is missing".into()));
    };
    let template = &spec.template;
    let template_annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref());

    // Only the opt-in key is read before deciding: a Job that did not opt in is never
    // refused because of its other annotations.
    let raw_inject = template_annotations
        .and_then(|a| a.get(annotations::INJECT))
        .or_else(|| job.annotations().and_then(|a| a.get(annotations::INJECT)));
    match raw_inject.map(|v| v.trim()) {
        None if opt_in == OptIn::Annotation => {
            return Ok(Decision::Skip(SkipReason::NotOptedIn));
        }
        Some("false") => return Ok(Decision::Skip(SkipReason::OptedOut)),
        _ => {}
    }
    // Already injected wins over everything else, so reinvocation is always safe.
    let status_injected = template_annotations
        .and_then(|a| a.get(annotations::STATUS))
        .is_some_and(|v| v.trim() == annotations::STATUS_INJECTED);
    let pod = template.spec.as_ref();
    let has_reporter = pod.is_some_and(|pod| {
        pod.containers
            .iter()
            .any(|c| *c.name == *REPORTER_CONTAINER)
            || pod
                .init_containers
                .iter()
                .flatten()
                .any(|c| *c.name == *REPORTER_CONTAINER)
    });
    if status_injected || has_reporter {
        return Ok(Decision::Skip(SkipReason::AlreadyInjected));
    }
    let parsed = annotations::parse_ours(job.annotations(), template_annotations)?;
    let pod = pod.ok_or(Error::NoContainers)?;
    if pod.containers.is_empty() {
        return Err(Error::NoContainers);
    }
    Plan::new(spec, pod, parsed, config).map(Decision::Inject)
}

/// Everything decided about one Job: the inputs of its patch, and the warnings.
pub struct Plan<'a> {
    /// Likely mistakes that are not errors, for the admission response.
    pub warnings: Vec<String>,
    config: &'a InjectConfig,
    /// The pod has a `volumes` array (else the patch creates it).
    has_volumes: bool,
    /// The pod has an `initContainers` array.
    has_init_containers: bool,
    /// The adapter has a `volumeMounts` array.
    adapter_has_mounts: bool,
    /// The adapter has an `env` array.
    adapter_has_env: bool,
    has_template_metadata: bool,
    has_template_annotations: bool,
    /// The adapter's index as a JSON Pointer token.
    adapter_token: String,
    adapter_name: &'a str,
    mode: SidecarMode,
    /// Borrowed when it is the default (nearly always).
    results_path: Cow<'a, str>,
    /// Volume holding the results dir: reused from the adapter, or ours.
    results_volume: &'a str,
    results_sub_path: Option<&'a str>,
    add_results_volume: bool,
    add_adapter_mount: bool,
    add_adapter_env: bool,
    add_token: bool,
    /// The reporter's env vars set by override annotations, as (name, value).
    override_env: Vec<(&'static str, String)>,
}

impl<'a> Plan<'a> {
    fn new(
        spec: &'a JobSpecView<'a>,
        pod: &'a PodView<'a>,
        parsed: Annotations,
        config: &'a InjectConfig,
    ) -> Result<Self> {
        let overrides = parsed.overrides;
        let adapter_index = match &overrides.adapter_container {
            Some(name) => pod
                .containers
                .iter()
                .position(|c| *c.name == **name)
                .ok_or_else(|| Error::AdapterNotFound {
                    name: name.clone(),
                    available: pod.containers.iter().map(|c| c.name.to_string()).collect(),
                })?,
            None => 0,
        };
        let adapter = &pod.containers[adapter_index];
        let mut warnings = Vec::new();

        // The adapter's own RESULTS_PATH is where it writes: the reporter must read there
        // unless the annotation says otherwise.
        let adapter_env_path = adapter
            .env
            .iter()
            .flatten()
            .find(|e| *e.name == *Setting::ResultsPath.env())
            .map(|e| e.value.as_deref().map(str::trim));
        let annotation = Setting::ResultsPath.annotation().unwrap_or_default();
        let results_path = match (&overrides.results_path, adapter_env_path) {
            (Some(annotated), Some(Some(env))) if env != annotated => {
                warnings.push(format!(
                    "container {:?} sets RESULTS_PATH={env:?} but {annotation} is {annotated:?}; the reporter reads {annotated:?}",
                    &*adapter.name,
                ));
                Cow::Owned(annotated.clone())
            }
            (Some(annotated), _) => Cow::Owned(annotated.clone()),
            // The same rule as the annotation's: the reporter reads it, the injector mounts its directory.
            (None, Some(Some(env))) => Cow::Owned(validate::mountable_results_path(env).map_err(
                |why| {
                    Error::InvalidJob(format!(
                        "container {:?} sets RESULTS_PATH={env:?}; accepted: {} (or set {annotation})",
                        &*adapter.name,
                        why.accepted()
                    ))
                },
            )?),
            (None, Some(None)) => {
                return Err(Error::InvalidJob(format!(
                    "container {:?} sets RESULTS_PATH from a reference the injector cannot resolve; set {annotation} to the same path",
                    &*adapter.name,
                )));
            }
            (None, None) => Cow::Borrowed(Setting::ResultsPath.default_value().unwrap_or_default()),
        };
        let results_dir = dir_of(&results_path);

        let existing_mount = adapter
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path.trim_end_matches('/') == results_dir);
        let volumes = pod.volumes.as_deref().unwrap_or_default();
        // The injector's volume name is its own: a user volume under it would be mounted into
        // the reporter as if it were the results emptyDir (say, a hostPath of `/`).
        if let Some(v) = volumes
            .iter()
            .find(|v| *v.name == *RESULTS_VOLUME && !v.empty_dir)
        {
            return Err(Error::InvalidJob(format!(
                "volume {RESULTS_VOLUME:?} is not an emptyDir; the injector mounts the volume of that name into the reporter, so it accepts only an emptyDir there (found {}); rename the volume",
                v.source.as_deref().unwrap_or("no source")
            )));
        }
        let (results_volume, results_sub_path, add_results_volume) = match existing_mount {
            Some(m) => (&*m.name, m.sub_path.as_deref(), false),
            None => (
                RESULTS_VOLUME,
                None,
                !volumes.iter().any(|v| *v.name == *RESULTS_VOLUME),
            ),
        };
        let add_adapter_env = adapter_env_path.is_none();
        let add_token = pod.automount_service_account_token == Some(false)
            && !volumes.iter().any(|v| *v.name == *TOKEN_VOLUME);

        let mode = overrides.sidecar_mode.unwrap_or(config.sidecar_mode);
        let max_wait = overrides.effective_max_wait();
        if let Some(deadline) = spec.active_deadline_seconds
            && u64::try_from(deadline).unwrap_or(0) < max_wait
        {
            warnings.push(format!(
                "spec.activeDeadlineSeconds ({deadline}s) is shorter than the reporter's max wait ({max_wait}s): the Job may be killed before a timeout is reported"
            ));
        }
        if let Some(warning) = multi_pod_warning(spec) {
            warnings.push(warning);
        }
        if pod.restart_policy.as_deref() == Some("OnFailure") {
            warnings.push(format!(
                "restartPolicy OnFailure: a restarted adapter finds its earlier attempt's result file in {results_dir}; remove it at start or use restartPolicy Never"
            ));
        }
        for key in &parsed.unknown {
            warnings.push(format!(
                "unknown annotation {key} is ignored; known: {}",
                contract::annotations::known().join(", ")
            ));
        }

        let template = &spec.template;
        Ok(Plan {
            warnings,
            config,
            has_volumes: pod.volumes.is_some(),
            has_init_containers: pod.init_containers.is_some(),
            adapter_has_mounts: adapter.volume_mounts.is_some(),
            adapter_has_env: adapter.env.is_some(),
            has_template_metadata: template.metadata.is_some(),
            has_template_annotations: template
                .metadata
                .as_ref()
                .is_some_and(|m| m.annotations.is_some()),
            adapter_token: adapter_index.to_string(),
            adapter_name: &adapter.name,
            mode,
            results_path,
            results_volume,
            results_sub_path,
            add_results_volume,
            add_adapter_mount: existing_mount.is_none(),
            add_adapter_env,
            add_token,
            override_env: overrides.env(),
        })
    }

    /// The directory of the results file: the reporter and the adapter mount it.
    fn results_dir(&self) -> &str {
        dir_of(&self.results_path)
    }

    /// The JSON Patch operations, against the Job as received.
    pub fn operations(&self) -> Vec<Add<'_>> {
        let mut ops = Vec::with_capacity(6);
        const SPEC: [&str; 3] = ["spec", "template", "spec"];

        let mut new_volumes = Vec::new();
        if self.add_results_volume {
            new_volumes.push(Item::ResultsVolume(ResultsVolume {
                empty_dir: SizeLimit {
                    size_limit: &self.config.results_volume_size_limit,
                },
                name: self.results_volume,
            }));
        }
        if self.add_token {
            new_volumes.push(Item::Fixed(&TOKEN_VOLUME_DEF));
        }
        append_all(
            &mut ops,
            &[&SPEC, &["volumes"]],
            self.has_volumes,
            new_volumes,
        );

        let adapter = ["containers", self.adapter_token.as_str()];
        if self.add_adapter_mount {
            append_all(
                &mut ops,
                &[&SPEC, &adapter, &["volumeMounts"]],
                self.adapter_has_mounts,
                vec![Item::Mount(Mount {
                    mount_path: self.results_dir(),
                    name: self.results_volume,
                    read_only: None,
                    sub_path: None,
                })],
            );
        }
        if self.add_adapter_env {
            append_all(
                &mut ops,
                &[&SPEC, &adapter, &["env"]],
                self.adapter_has_env,
                vec![Item::Env(plain_env(
                    Setting::ResultsPath.env(),
                    &*self.results_path,
                ))],
            );
        }

        let reporter = Item::Container(Box::new(self.reporter()));
        ops.push(match self.mode {
            SidecarMode::Native if self.has_init_containers => {
                Add::new(path(&[&SPEC, &["initContainers", "0"]]), reporter)
            }
            SidecarMode::Native => Add::new(
                path(&[&SPEC, &["initContainers"]]),
                Item::List(vec![reporter]),
            ),
            SidecarMode::Classic => Add::new(path(&[&SPEC, &["containers", "-"]]), reporter),
        });

        let status = || Item::Text(annotations::STATUS_INJECTED);
        let annotation = || Item::Entry(annotations::STATUS, Box::new(status()));
        let metadata = ["spec", "template", "metadata"];
        ops.push(if self.has_template_annotations {
            Add::new(
                path(&[&metadata, &["annotations", annotations::STATUS]]),
                status(),
            )
        } else if self.has_template_metadata {
            Add::new(path(&[&metadata, &["annotations"]]), annotation())
        } else {
            Add::new(
                path(&[&metadata]),
                Item::Entry("annotations", Box::new(annotation())),
            )
        });
        ops
    }

    fn reporter(&self) -> Reporter<'_> {
        let mut env: Vec<Item<'_>> = Vec::with_capacity(7 + self.override_env.len());
        env.extend(FIELD_ENVS.iter().map(Item::Fixed));
        env.extend(
            [
                (Setting::AdapterContainer.env(), self.adapter_name),
                (Setting::SidecarMode.env(), self.mode.as_str()),
                (Setting::ResultsPath.env(), &*self.results_path),
            ]
            .map(|(name, value)| Item::Env(plain_env(name, value))),
        );
        env.extend(
            self.override_env
                .iter()
                .map(|(k, v)| Item::Env(plain_env(k, v.as_str()))),
        );

        let mut mounts = vec![Mount {
            mount_path: self.results_dir(),
            name: self.results_volume,
            read_only: Some(true),
            sub_path: self.results_sub_path,
        }];
        if self.add_token {
            mounts.push(Mount {
                mount_path: TOKEN_MOUNT_PATH,
                name: TOKEN_VOLUME,
                read_only: Some(true),
                sub_path: None,
            });
        }
        Reporter {
            env,
            image: &self.config.reporter_image,
            image_pull_policy: self.config.image_pull_policy.as_str(),
            name: REPORTER_CONTAINER,
            resources: self.config.resources.rendered(),
            // Native sidecar: an init container that keeps running alongside the adapter.
            restart_policy: (self.mode == SidecarMode::Native).then_some("Always"),
            security_context: &RESTRICTED,
            termination_message_policy: "FallbackToLogsOnError",
            volume_mounts: mounts,
        }
    }
}

/// The directory of `path`. A mountable results path always has one other than `/` (checked
/// when the plan is made).
fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The downward-API path of the Job's name: the pod label the Job controller sets.
const JOB_NAME_FIELD: &str = "metadata.labels['batch.kubernetes.io/job-name']";
/// The downward-API path of the Job's uid: the pod label [`contract::JOB_UID_LABEL`].
const JOB_UID_FIELD: &str = "metadata.labels['batch.kubernetes.io/controller-uid']";

/// The reporter's downward-API env vars: the same in every patch.
static FIELD_ENVS: LazyLock<[Fixed; 4]> = LazyLock::new(|| {
    [
        (Setting::JobName, JOB_NAME_FIELD),
        (Setting::JobNamespace, "metadata.namespace"),
        (Setting::PodName, "metadata.name"),
        (Setting::JobUid, JOB_UID_FIELD),
    ]
    .map(|(setting, field)| {
        let from = json!({"fieldRef": {"apiVersion": "v1", "fieldPath": field}});
        Fixed::new(&json!({"name": setting.env(), "valueFrom": from}))
    })
});

/// A securityContext that passes the Pod Security "restricted" profile on its own,
/// whatever the pod-level settings are.
static RESTRICTED: LazyLock<Fixed> = LazyLock::new(|| {
    Fixed::new(&json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsGroup": REPORTER_UID,
        "runAsNonRoot": true,
        "runAsUser": REPORTER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }))
});

/// The same projected volume the kubelet would have mounted: bound token, cluster CA and
/// namespace, so in-cluster config works for the reporter only.
static TOKEN_VOLUME_DEF: LazyLock<Fixed> = LazyLock::new(|| {
    Fixed::new(&json!({
        "name": TOKEN_VOLUME,
        "projected": {"defaultMode": 0o444, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]},
    }))
});

/// The warning for a NonIndexed Job that runs several pods (`completions` > 1, or a work queue
/// with `parallelism` > 1): its pods have no identity across retries, so the one condition can
/// only count them; an Indexed Job gets a result per shard.
fn multi_pod_warning(spec: &JobSpecView<'_>) -> Option<String> {
    if spec.completion_mode.as_deref() == Some("Indexed") {
        return None;
    }
    let parallelism = spec.parallelism.unwrap_or(1);
    let shape = match spec.completions {
        Some(c) if c > 1 => format!("completions {c}"),
        None if parallelism > 1 => format!("parallelism {parallelism} (a work queue)"),
        _ => return None,
    };
    Some(format!(
        "{shape} with completionMode NonIndexed: the reporter can only count the pods' results (True once enough succeeded, False past backoffLimit); completionMode: Indexed gives a result per shard (index) in the condition"
    ))
}

fn plain_env<'a>(name: &'a str, value: impl Into<Cow<'a, str>>) -> Env<'a> {
    Env {
        name,
        value: value.into(),
    }
}

/// The JSON Pointer made of `parts`, one after another.
fn path(parts: &[&[&str]]) -> String {
    patch::pointer(&parts.concat())
}

/// Appends `items` to the array at `at`, creating the array when it does not exist yet
/// (JSON Patch cannot append to a missing parent).
fn append_all<'a>(ops: &mut Vec<Add<'a>>, at: &[&[&str]], exists: bool, items: Vec<Item<'a>>) {
    if items.is_empty() {
        return;
    }
    if exists {
        let end = path(&[&at.concat(), &["-"]]);
        ops.extend(items.into_iter().map(|item| Add::new(end.clone(), item)));
    } else {
        ops.push(Add::new(path(at), Item::List(items)));
    }
}

/// Helper for tests and the offline path: applies `patch` to `job` (as JSON).
pub fn apply(job: &mut Value, patch: &Patch) -> Result<()> {
    json_patch::patch(job, patch)
        .map_err(|e| Error::InvalidJob(format!("patch does not apply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_name_env_reads_the_job_name_label() {
        assert_eq!(
            JOB_NAME_FIELD,
            format!("metadata.labels['{JOB_NAME_LABEL}']")
        );
    }

    #[test]
    fn the_job_uid_env_reads_the_controller_uid_label() {
        assert_eq!(
            JOB_UID_FIELD,
            format!("metadata.labels['{}']", contract::JOB_UID_LABEL)
        );
    }
}
