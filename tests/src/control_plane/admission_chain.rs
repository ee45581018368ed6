//! What is installed in the admission control plane's chain, and what it does to an opted-in
//! Job now. The API server learns of admission changes through its informers, a moment after
//! the write: installs here wait until a probe (a dry-run of an opted-in Job) shows the chain
//! they expect, and removals until it is plain again, so the next test starts clean.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster::cleanup_failed;
use super::objects::list;
use super::{AdmissionGuard, Cluster};

/// How long the API server may take to act on an admission change.
const SETTLE: Duration = Duration::from_secs(30);

const ADMISSION_GROUP: &str = "admissionregistration.k8s.io";

/// What the admission chain does to the probe: an opted-in Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Admitted with the `status-reporter` container, of this image.
    Injected(String),
    /// Admitted as sent.
    Plain,
    /// Refused, with kubectl's message.
    Refused(String),
}

impl Cluster {
    /// A server-side dry-run create of a Job in `default` with the `inject` annotation set to
    /// `inject` (`"true"`: opted in; `"yes"`: a Job no injector takes, which only a guard
    /// refuses): what the admission chain does to it now.
    pub fn probe_admission(&self, inject: &str) -> Admission {
        let probe = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "admission-probe", "namespace": "default",
                "annotations": {"status-reporter.hyperfleet.io/inject": inject}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "adapter", "image": "probe"}]}}},
        });
        let (ok, out, err) = self.kubectl_run(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&list(&[probe])),
        );
        if !ok {
            return Admission::Refused(err);
        }
        let job: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("dry-run create answered no JSON ({e}): {out}"));
        let spec = &job["spec"]["template"]["spec"];
        let reporter = ["initContainers", "containers"]
            .iter()
            .filter_map(|l| spec[l].as_array())
            .flatten()
            .find(|c| c["name"] == "status-reporter");
        match reporter {
            Some(c) => Admission::Injected(c["image"].as_str().unwrap_or_default().to_owned()),
            None => Admission::Plain,
        }
    }

    /// Waits (bounded) until [`Cluster::probe_admission`]`(inject)` answers what `want`
    /// accepts; returns the last answer on timeout.
    pub fn settle_admission(
        &self,
        inject: &str,
        want: impl Fn(&Admission) -> bool,
    ) -> Result<Admission, Admission> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = self.probe_admission(inject);
            if want(&now) {
                return Ok(now);
            }
            if Instant::now() >= deadline {
                return Err(now);
            }
            // The API server offers no event for "admission config loaded": probe again.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`Cluster::settle_admission`] of an opted-in Job; panics with `what` and the last answer.
    pub fn expect_admission(&self, what: &str, want: impl Fn(&Admission) -> bool) -> Admission {
        self.settle_admission("true", want).unwrap_or_else(|now| {
            panic!("{what}: after {SETTLE:?} the admission chain still answers an opted-in Job with {now:?}")
        })
    }
}

impl Admission {
    /// Admitted with the reporter (any image).
    pub fn is_injected(&self) -> bool {
        matches!(self, Admission::Injected(_))
    }

    /// Admitted as sent.
    pub fn is_plain(&self) -> bool {
        self == &Admission::Plain
    }
}

/// The admission objects (webhook configurations, admission policies, their bindings) of an
/// install: deleted on drop, after which the admission chain is plain again.
pub struct InstalledAdmission<'a> {
    cluster: &'a AdmissionGuard,
    /// `kind.group/name` of each, as `kubectl delete` takes them.
    objects: Vec<String>,
}

impl<'a> InstalledAdmission<'a> {
    /// Tracks the admission objects among `rendered` (installed by the caller, or about to be).
    pub fn track(cluster: &'a AdmissionGuard, rendered: &[Value]) -> Self {
        let admission = |v: &str| v.starts_with(ADMISSION_GROUP);
        let mut objects = Vec::new();
        for o in rendered {
            if o["apiVersion"].as_str().is_some_and(admission) {
                let kind = o["kind"].as_str().unwrap_or("?").to_lowercase();
                let name = o["metadata"]["name"].as_str().unwrap_or("?");
                objects.push(format!("{kind}.{ADMISSION_GROUP}/{name}"));
            }
        }
        InstalledAdmission { cluster, objects }
    }

    /// `kubectl apply -k dir` (e.g. `manifests/overlays/admission-policy`); returns once an
    /// opted-in Job is injected.
    pub fn apply_kustomization(cluster: &'a AdmissionGuard, dir: &Path) -> Self {
        let installed = InstalledAdmission::track(cluster, &cluster.kustomize(dir));
        let (ok, out, err) = cluster.kubectl_run(&["apply", "-k", &dir.to_string_lossy()], None);
        assert!(ok, "kubectl apply -k {}: {err}\n{out}", dir.display());
        cluster.expect_admission(
            &format!("after kubectl apply -k {}", dir.display()),
            Admission::is_injected,
        );
        installed
    }

    /// One tracker for both installs (removing either alone would leave the chain not plain).
    pub fn and(mut self, mut other: InstalledAdmission<'a>) -> Self {
        self.objects.append(&mut other.objects);
        self
    }

    /// Deletes the objects now rather than on drop.
    pub fn remove(self) {}
}

impl Drop for InstalledAdmission<'_> {
    /// Deletes the objects and waits until the chain is plain; a failure fails the test unless
    /// it is failing already.
    fn drop(&mut self) {
        if self.objects.is_empty() {
            return;
        }
        let mut args = vec!["delete", "--ignore-not-found", "--wait"];
        args.extend(self.objects.iter().map(String::as_str));
        let (ok, _, err) = self.cluster.kubectl_run(&args, None);
        let objects = &self.objects;
        if !ok {
            cleanup_failed(format!("kubectl delete {objects:?}: {err}"));
        } else if let Err(now) = self.cluster.settle_admission("true", Admission::is_plain) {
            cleanup_failed(format!(
                "after deleting {objects:?} an opted-in Job is {now:?}"
            ));
        }
    }
}
