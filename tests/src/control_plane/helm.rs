//! The Helm chart with the control plane's own Helm: rendered, or installed on the admission
//! control plane as a release uninstalled on drop; Helm's state in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::cluster::{cleanup_failed, run};
use super::objects::yaml_docs;
use super::{AdmissionGuard, Cluster};

/// Bounds every Helm operation against the API server.
const TIMEOUT: &str = "60s";

/// The chart's directory.
pub fn chart() -> PathBuf {
    super::binaries::workspace_root().join("manifests/helm/status-reporter")
}

/// A values file of `manifests/helm/examples/`, by name (`cert-manager.yaml`).
pub fn example_values(name: &str) -> PathBuf {
    super::binaries::workspace_root()
        .join("manifests/helm/examples")
        .join(name)
}

/// `helm` with its state in `home`.
fn helm(cluster: &Cluster, home: &Path) -> Command {
    let mut cmd = cluster.command("helm");
    for (var, dir) in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ] {
        cmd.env(var, home.join(dir));
    }
    cmd
}

/// Runs `cmd`; returns stdout, panicking with `what` and Helm's message on failure. Helm's
/// note on the chart's `files/` symlinks (to the kustomize policy files) is expected.
fn run_helm(cmd: &mut Command, what: &str) -> String {
    let (ok, out, err) = run(cmd, None);
    assert!(ok, "{what}: {err}\n{out}");
    out
}

/// `helm template status-reporter CHART -n NAMESPACE ARGS…` against the cluster's version:
/// the rendered documents as text. Text, not parsed objects: Helm's output is read with YAML
/// 1.1 rules by Kubernetes tools (`0440` is octal), which a YAML 1.2 parser reads otherwise.
pub fn template(cluster: &Cluster, namespace: &str, args: &[&str]) -> Vec<String> {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run_helm(
        helm(cluster, home.path())
            .args(["template", "status-reporter"])
            .arg(chart())
            .args(["-n", namespace, "--kube-version", &cluster.version()])
            .args(args),
        &format!("helm template {args:?}"),
    );
    let lines: Vec<&str> = out.lines().collect();
    let docs = lines
        .split(|l| *l == "---")
        .map(|doc| doc.iter().map(|l| format!("{l}\n")));
    let docs = docs.map(String::from_iter);
    docs.filter(|d| d.lines().any(|l| !l.is_empty() && !l.starts_with('#')))
        .collect()
}

/// A release of the chart on the admission control plane, uninstalled on drop.
pub struct HelmRelease<'a> {
    cluster: &'a AdmissionGuard,
    /// The release name.
    pub name: String,
    /// The release namespace (it must exist: the chart does not create it).
    pub namespace: String,
    home: tempfile::TempDir,
}

impl<'a> HelmRelease<'a> {
    /// `helm install NAME CHART -n NAMESPACE ARGS…` (bounded); panics with Helm's message.
    pub fn install(
        cluster: &'a AdmissionGuard,
        name: &str,
        namespace: &str,
        args: &[&str],
    ) -> Self {
        let home = tempfile::tempdir().expect("tempdir");
        run_helm(
            helm(cluster, home.path())
                .args(["install", name])
                .arg(chart())
                .args(["-n", namespace, "--timeout", TIMEOUT])
                .args(args),
            &format!("helm install {name} {args:?}"),
        );
        HelmRelease {
            cluster,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            home,
        }
    }

    fn helm(&self) -> Command {
        helm(self.cluster, self.home.path())
    }

    /// The objects the release installed (`helm get manifest`).
    pub fn manifest(&self) -> Vec<Value> {
        let out = run_helm(
            self.helm()
                .args(["get", "manifest", &self.name, "-n", &self.namespace]),
            "helm get manifest",
        );
        yaml_docs(&out, "helm get manifest")
    }

    /// `helm uninstall` (waiting for the objects to be gone) now rather than on drop.
    pub fn uninstall(self) {}
}

impl Drop for HelmRelease<'_> {
    /// `helm uninstall`, waiting for the objects to be gone; a failure fails the test unless it
    /// is failing already.
    fn drop(&mut self) {
        let (name, namespace) = (&self.name, &self.namespace);
        let mut uninstall = self.helm();
        uninstall.args(["uninstall", name, "-n", namespace]);
        let (ok, out, err) = run(uninstall.args(["--wait", "--timeout", TIMEOUT]), None);
        if !ok {
            cleanup_failed(format!("helm uninstall {name}: {err}\n{out}"));
        }
    }
}

impl Cluster {
    /// The API server's version (`v1.37.2`), as `helm template --kube-version` takes it.
    pub fn version(&self) -> String {
        let (ok, out, err) = self.kubectl_run(&["version", "-o", "json"], None);
        assert!(ok, "kubectl version: {err}");
        let v: Value = serde_json::from_str(&out).expect("kubectl version -o json");
        v["serverVersion"]["gitVersion"]
            .as_str()
            .expect("serverVersion.gitVersion")
            .to_owned()
    }
}
