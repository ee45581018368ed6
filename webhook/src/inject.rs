//! The pure injection step: a Job as received plus the webhook configuration become an
//! RFC 6902 JSON Patch and admission warnings. No I/O here; the webhook and the offline
//! `inject` command both call [`inject`], so they cannot drift apart.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, Container, DownwardAPIProjection, DownwardAPIVolumeFile,
    EmptyDirVolumeSource, EnvVar, EnvVarSource, KeyToPath, ObjectFieldSelector, PodSpec,
    ProjectedVolumeSource, SeccompProfile, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use serde_json::Value;

use contract::{Setting, SidecarMode, validate};

use crate::annotations::{self, Annotations};
use crate::config::InjectConfig;
use crate::error::{Error, Result};

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

    /// Admission warnings (none when skipped).
    pub fn warnings(&self) -> &[String] {
        match self {
            Injection::Skipped(_) => &[],
            Injection::Injected { warnings, .. } => warnings,
        }
    }
}

/// Computes the patch that adds the reporter to `job`, for a Job that opts in by annotation
/// (see [`inject_as`]).
///
/// `namespace` is the admission request's namespace, used when the object itself has none
/// (objects sent to a webhook usually do, offline manifests often don't).
pub fn inject(job: &Job, namespace: Option<&str>, config: &InjectConfig) -> Result<Injection> {
    inject_as(job, namespace, config, OptIn::Annotation)
}

/// Computes the patch that adds the reporter to `job` under the given opt-in: by
/// annotation, an unannotated Job is left alone; in an opted-in namespace it is injected.
/// `inject: "false"` opts out either way, and the override annotations apply either way.
pub fn inject_as(
    job: &Job,
    namespace: Option<&str>,
    config: &InjectConfig,
    opt_in: OptIn,
) -> Result<Injection> {
    let namespace = job.metadata.namespace.as_deref().or(namespace);
    if let Some(ns) = namespace
        && config.excluded_namespaces.iter().any(|e| e == ns)
    {
        return Ok(Injection::Skipped(SkipReason::ExcludedNamespace(
            ns.to_owned(),
        )));
    }
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
        .or_else(|| {
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotations::INJECT))
        });
    match raw_inject.map(|v| v.trim()) {
        None if opt_in == OptIn::Annotation => {
            return Ok(Injection::Skipped(SkipReason::NotOptedIn));
        }
        Some("false") => return Ok(Injection::Skipped(SkipReason::OptedOut)),
        _ => {}
    }
    // Already injected wins over everything else, so reinvocation is always safe.
    let status_injected = template_annotations
        .and_then(|a| a.get(annotations::STATUS))
        .is_some_and(|v| v.trim() == annotations::STATUS_INJECTED);
    let pod = template.spec.as_ref();
    let has_reporter = pod.is_some_and(|pod| {
        pod.containers.iter().any(|c| c.name == REPORTER_CONTAINER)
            || pod
                .init_containers
                .iter()
                .flatten()
                .any(|c| c.name == REPORTER_CONTAINER)
    });
    if status_injected || has_reporter {
        return Ok(Injection::Skipped(SkipReason::AlreadyInjected));
    }
    let parsed = annotations::parse(job.metadata.annotations.as_ref(), template_annotations)?;
    let pod = pod.ok_or(Error::NoContainers)?;
    if pod.containers.is_empty() {
        return Err(Error::NoContainers);
    }

    let plan = Plan::new(job, pod, &parsed, config)?;
    Ok(Injection::Injected {
        patch: plan.patch(
            pod,
            template_annotations.is_some(),
            template.metadata.is_some(),
        ),
        warnings: plan.warnings,
    })
}

/// Everything decided about one Job before any patch operation is written.
struct Plan<'a> {
    config: &'a InjectConfig,
    overrides: &'a annotations::Overrides,
    adapter_index: usize,
    adapter_name: &'a str,
    mode: SidecarMode,
    results_path: String,
    results_dir: String,
    /// Volume holding the results dir: reused from the adapter, or ours.
    results_volume: String,
    results_sub_path: Option<String>,
    add_results_volume: bool,
    add_adapter_mount: bool,
    add_adapter_env: bool,
    add_token: bool,
    warnings: Vec<String>,
}

impl<'a> Plan<'a> {
    fn new(
        job: &Job,
        pod: &'a PodSpec,
        parsed: &'a Annotations,
        config: &'a InjectConfig,
    ) -> Result<Self> {
        let overrides = &parsed.overrides;
        let adapter_index = match &overrides.adapter_container {
            Some(name) => pod
                .containers
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| Error::AdapterNotFound {
                    name: name.clone(),
                    available: pod.containers.iter().map(|c| c.name.clone()).collect(),
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
            .find(|e| e.name == Setting::ResultsPath.env())
            .map(|e| e.value.as_deref().map(str::trim));
        let annotation = Setting::ResultsPath.annotation().unwrap_or_default();
        let results_path = match (&overrides.results_path, adapter_env_path) {
            (Some(annotated), Some(Some(env))) if env != annotated => {
                warnings.push(format!(
                    "container {:?} sets RESULTS_PATH={env:?} but {annotation} is {annotated:?}; the reporter reads {annotated:?}",
                    adapter.name,
                ));
                annotated.clone()
            }
            (Some(annotated), _) => annotated.clone(),
            // The same rule as the annotation's: the reporter reads it, the injector mounts its directory.
            (None, Some(Some(env))) => validate::mountable_results_path(env).map_err(|why| {
                Error::InvalidJob(format!(
                    "container {:?} sets RESULTS_PATH={env:?}; accepted: {} (or set {annotation})",
                    adapter.name,
                    why.accepted()
                ))
            })?,
            (None, Some(None)) => {
                return Err(Error::InvalidJob(format!(
                    "container {:?} sets RESULTS_PATH from a reference the injector cannot resolve; set {annotation} to the same path",
                    adapter.name,
                )));
            }
            (None, None) => Setting::ResultsPath
                .default_value()
                .unwrap_or_default()
                .to_owned(),
        };
        // A mountable path always has a directory other than `/` (checked above).
        let results_dir = results_path
            .rsplit_once('/')
            .map_or_else(String::new, |(dir, _)| dir.to_owned());

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
            .find(|v| v.name == RESULTS_VOLUME && v.empty_dir.is_none())
        {
            return Err(Error::InvalidJob(format!(
                "volume {RESULTS_VOLUME:?} is not an emptyDir; the injector mounts the volume of that name into the reporter, so it accepts only an emptyDir there (found {}); rename the volume",
                volume_source(v)
            )));
        }
        let (results_volume, results_sub_path, add_results_volume) = match existing_mount {
            Some(m) => (m.name.clone(), m.sub_path.clone(), false),
            None => (
                RESULTS_VOLUME.to_owned(),
                None,
                !volumes.iter().any(|v| v.name == RESULTS_VOLUME),
            ),
        };
        let add_adapter_env = adapter_env_path.is_none();
        let add_token = pod.automount_service_account_token == Some(false)
            && !volumes.iter().any(|v| v.name == TOKEN_VOLUME);

        let mode = overrides.sidecar_mode.unwrap_or(config.sidecar_mode);
        let max_wait = overrides.effective_max_wait();
        if let Some(deadline) = job.spec.as_ref().and_then(|s| s.active_deadline_seconds)
            && u64::try_from(deadline).unwrap_or(0) < max_wait
        {
            warnings.push(format!(
                "spec.activeDeadlineSeconds ({deadline}s) is shorter than the reporter's max wait ({max_wait}s): the Job may be killed before a timeout is reported"
            ));
        }
        if let Some(warning) = job.spec.as_ref().and_then(multi_pod_warning) {
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

        Ok(Plan {
            config,
            overrides,
            adapter_index,
            adapter_name: &adapter.name,
            mode,
            results_path,
            results_dir,
            results_volume,
            results_sub_path,
            add_results_volume,
            add_adapter_mount: existing_mount.is_none(),
            add_adapter_env,
            add_token,
            warnings,
        })
    }

    fn patch(
        &self,
        pod: &PodSpec,
        has_template_annotations: bool,
        has_template_metadata: bool,
    ) -> Patch {
        let mut ops = Vec::new();
        let spec = ["spec", "template", "spec"];

        let mut new_volumes = Vec::new();
        if self.add_results_volume {
            new_volumes.push(self.results_volume_def());
        }
        if self.add_token {
            new_volumes.push(token_volume());
        }
        append_all(
            &mut ops,
            &[&spec[..], &["volumes"]].concat(),
            pod.volumes.is_some(),
            new_volumes,
        );

        let adapter = &pod.containers[self.adapter_index];
        let index = self.adapter_index.to_string();
        let adapter_path = [&spec[..], &["containers"], &[index.as_str()]].concat();
        if self.add_adapter_mount {
            let mount = VolumeMount {
                name: self.results_volume.clone(),
                mount_path: self.results_dir.clone(),
                ..VolumeMount::default()
            };
            append_all(
                &mut ops,
                &[&adapter_path[..], &["volumeMounts"]].concat(),
                adapter.volume_mounts.is_some(),
                vec![to_value(&mount)],
            );
        }
        if self.add_adapter_env {
            append_all(
                &mut ops,
                &[&adapter_path[..], &["env"]].concat(),
                adapter.env.is_some(),
                vec![to_value(&plain_env(
                    Setting::ResultsPath.env(),
                    &self.results_path,
                ))],
            );
        }

        let reporter = to_value(&self.reporter());
        match self.mode {
            SidecarMode::Native => match pod.init_containers {
                Some(_) => ops.push(add(
                    &[&spec[..], &["initContainers", "0"]].concat(),
                    reporter,
                )),
                None => ops.push(add(
                    &[&spec[..], &["initContainers"]].concat(),
                    Value::Array(vec![reporter]),
                )),
            },
            SidecarMode::Classic => {
                ops.push(add(&[&spec[..], &["containers", "-"]].concat(), reporter))
            }
        }

        let status = Value::String(annotations::STATUS_INJECTED.to_owned());
        if has_template_annotations {
            ops.push(add(
                &[
                    "spec",
                    "template",
                    "metadata",
                    "annotations",
                    annotations::STATUS,
                ],
                status,
            ));
        } else {
            let map = Value::Object(
                [(annotations::STATUS.to_owned(), status)]
                    .into_iter()
                    .collect(),
            );
            if has_template_metadata {
                ops.push(add(&["spec", "template", "metadata", "annotations"], map));
            } else {
                let meta = Value::Object([("annotations".to_owned(), map)].into_iter().collect());
                ops.push(add(&["spec", "template", "metadata"], meta));
            }
        }
        Patch(ops)
    }

    fn results_volume_def(&self) -> Value {
        to_value(&Volume {
            name: self.results_volume.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(self.config.results_volume_size_limit.clone()),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        })
    }

    fn reporter(&self) -> Container {
        let o = self.overrides;
        let mut env = vec![
            field_env(
                Setting::JobName.env(),
                &format!("metadata.labels['{JOB_NAME_LABEL}']"),
            ),
            field_env(Setting::JobNamespace.env(), "metadata.namespace"),
            field_env(Setting::PodName.env(), "metadata.name"),
            field_env(
                Setting::JobUid.env(),
                &format!("metadata.labels['{}']", contract::JOB_UID_LABEL),
            ),
            plain_env(Setting::AdapterContainer.env(), self.adapter_name),
            plain_env(Setting::SidecarMode.env(), self.mode.as_str()),
            plain_env(Setting::ResultsPath.env(), &self.results_path),
        ];
        env.extend(o.env().iter().map(|(k, v)| plain_env(k, v)));

        let mut mounts = vec![VolumeMount {
            name: self.results_volume.clone(),
            mount_path: self.results_dir.clone(),
            sub_path: self.results_sub_path.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        }];
        if self.add_token {
            mounts.push(VolumeMount {
                name: TOKEN_VOLUME.to_owned(),
                mount_path: TOKEN_MOUNT_PATH.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
        let resources = &self.config.resources;
        Container {
            name: REPORTER_CONTAINER.to_owned(),
            image: Some(self.config.reporter_image.clone()),
            image_pull_policy: Some(self.config.image_pull_policy.as_str().to_owned()),
            env: Some(env),
            resources: (resources.requests.is_some() || resources.limits.is_some())
                .then(|| resources.clone()),
            volume_mounts: Some(mounts),
            // Native sidecar: an init container that keeps running alongside the adapter.
            restart_policy: (self.mode == SidecarMode::Native).then(|| "Always".to_owned()),
            security_context: Some(restricted_security_context()),
            termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
            ..Container::default()
        }
    }
}

/// The warning for a NonIndexed Job that runs several pods (`completions` > 1, or a work queue
/// with `parallelism` > 1): its pods have no identity across retries, so the one condition can
/// only count them; an Indexed Job gets a result per shard.
fn multi_pod_warning(spec: &k8s_openapi::api::batch::v1::JobSpec) -> Option<String> {
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

/// A securityContext that passes the Pod Security "restricted" profile on its own,
/// whatever the pod-level settings are.
pub fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(REPORTER_UID),
        run_as_group: Some(REPORTER_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// The same projected volume the kubelet would have mounted: bound token, cluster CA and
/// namespace, so in-cluster config works for the reporter only.
fn token_volume() -> Value {
    to_value(&Volume {
        name: TOKEN_VOLUME.to_owned(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".to_owned(),
                        expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".to_owned(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".to_owned(),
                            path: "ca.crt".to_owned(),
                            ..KeyToPath::default()
                        }]),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".to_owned(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".to_owned()),
                                field_path: "metadata.namespace".to_owned(),
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
        }),
        ..Volume::default()
    })
}

/// The kind of a volume's source, as the pod spec names it (`hostPath`, `configMap`, ...).
fn volume_source(v: &Volume) -> String {
    to_value(v)
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        .unwrap_or_else(|| "no source".to_owned())
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".to_owned()),
                field_path: field_path.to_owned(),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // k8s-openapi types always serialize (string keys, no maps with non-string keys).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

/// Appends `items` to the array at `path`, creating the array when it does not exist yet
/// (JSON Patch cannot append to a missing parent).
fn append_all(ops: &mut Vec<PatchOperation>, path: &[&str], exists: bool, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if exists {
        let with_end = [path, &["-"]].concat();
        ops.extend(items.into_iter().map(|item| add(&with_end, item)));
    } else {
        ops.push(add(path, Value::Array(items)));
    }
}

/// Helper for tests and the offline path: applies `patch` to `job` (as JSON).
pub fn apply(job: &mut Value, patch: &Patch) -> Result<()> {
    json_patch::patch(job, patch)
        .map_err(|e| Error::InvalidJob(format!("patch does not apply: {e}")))
}
