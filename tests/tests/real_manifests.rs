//! The shipped manifests on a real API server (the pinned release; `STATUS_REPORTER_K8S_RELEASE=oldest`
//! runs the same checks on the oldest release we support): every kustomization and example is
//! accepted (server-side dry-run: nothing here may change what other suites' Jobs go through),
//! and every example after offline `inject` is too, its Pod admitted under Pod Security
//! "restricted" without a warning.

use std::path::{Path, PathBuf};

use harness::control_plane::objects::{describe, in_namespace, inject_file, pod_of, yaml_docs};
use harness::control_plane::{Cluster, Release};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every kustomization the repository ships: `manifests/`, the base, each overlay and component.
fn kustomizations() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("manifests"), root().join("manifests/base")];
    for group in ["manifests/overlays", "manifests/components"] {
        if let Ok(entries) = std::fs::read_dir(root().join(group)) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("kustomization.yaml").is_file())
                .collect();
            found.sort();
            dirs.extend(found);
        }
    }
    dirs
}

/// Objects a plain API server cannot take, and why: CRDs of other projects, and APIs this
/// release does not serve (the docs name the release each needs).
fn not_here(cluster: &Cluster, obj: &Value) -> Option<String> {
    let api = obj["apiVersion"].as_str().unwrap_or_default();
    if api.starts_with("cert-manager.io/") || api.starts_with("monitoring.coreos.com/") {
        return Some(format!("{api} is a CRD of another project"));
    }
    let kind = obj["kind"].as_str().unwrap_or_default();
    (!cluster.serves(api, kind)).then(|| format!("{kind} {api} is not served by this release"))
}

/// The namespaces the manifests put objects in exist for real (dry-run objects need them).
fn ensure_namespaces(cluster: &Cluster, objects: &[Value]) {
    let mut names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    for ns in names {
        // --save-config: a later `apply` of the same Namespace then has nothing to warn about.
        let _ = cluster.kubectl_run(&["create", "namespace", ns, "--save-config"], None);
    }
}

#[test]
fn every_kustomization_is_accepted_by_the_api_server() {
    let cluster = Cluster::shared();
    let mut checked = 0;
    for dir in kustomizations() {
        let objects = cluster.kustomize(&dir);
        let (skipped, objects): (Vec<&Value>, Vec<&Value>) =
            objects.iter().partition(|o| not_here(cluster, o).is_some());
        for o in &skipped {
            let why = not_here(cluster, o).unwrap_or_default();
            eprintln!("{}: {} skipped: {why}", dir.display(), describe(o));
            // On the current release only other projects' CRDs may be skipped.
            if cluster.release == Release::Current {
                assert!(
                    why.contains("CRD"),
                    "{}: {} not served by the current release: {why}",
                    dir.display(),
                    describe(o)
                );
            }
        }
        let objects: Vec<Value> = objects.into_iter().cloned().collect();
        ensure_namespaces(cluster, &objects);
        let (ok, out, err) = cluster.apply(&objects, true);
        assert!(
            ok,
            "{}: server-side dry-run refused:\n{err}\n{out}",
            dir.display()
        );
        assert!(
            !err.contains("Warning"),
            "{}: the API server warned:\n{err}",
            dir.display()
        );
        checked += objects.len();
    }
    assert!(checked > 10, "only {checked} objects checked");
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("manifests/examples"))
        .expect("manifests/examples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "examples: {files:?}");
    files
}

/// A namespace enforcing (and warning about) Pod Security "restricted".
fn restricted_namespace(cluster: &Cluster, name: &str) {
    let _ = cluster.kubectl_run(&["create", "namespace", name, "--save-config"], None);
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "label",
            "--overwrite",
            "namespace",
            name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
    assert!(ok, "label namespace {name}: {err}");
    // The examples' ServiceAccount (pods cannot be created without theirs).
    let rbac = std::fs::read_to_string(root().join("manifests/examples/rbac.yaml")).expect("rbac");
    let mut objects = yaml_docs(&rbac, "rbac.yaml");
    in_namespace(&mut objects, name);
    let (ok, _, err) = cluster.apply(&objects, false);
    assert!(ok, "apply examples/rbac.yaml in {name}: {err}");
}

/// `objects` (in `namespace`) and the Pods their Jobs/CronJobs would create: accepted by a
/// server-side dry-run with no Pod Security warning.
fn admitted_restricted(cluster: &Cluster, what: &str, mut objects: Vec<Value>, namespace: &str) {
    in_namespace(&mut objects, namespace);
    let pods: Vec<Value> = objects
        .iter()
        .filter_map(|o| pod_of(o, namespace))
        .collect();
    let (ok, out, err) = cluster.apply(&objects, true);
    assert!(ok, "{what}: refused:\n{err}\n{out}");
    assert!(!err.contains("Warning"), "{what}: warned:\n{err}");
    if !pods.is_empty() {
        let (ok, out, err) = cluster.create(&pods, true);
        assert!(
            ok,
            "{what}: its Pod is refused under restricted:\n{err}\n{out}"
        );
        assert!(!err.contains("Warning"), "{what}: its Pod warned:\n{err}");
    }
}

#[test]
fn every_example_is_accepted_and_its_pods_pass_restricted() {
    let cluster = Cluster::shared();
    let ns = "examples-restricted";
    restricted_namespace(cluster, ns);
    for file in examples() {
        let text = std::fs::read_to_string(&file).expect("read example");
        let objects = yaml_docs(&text, &file.display().to_string());
        admitted_restricted(cluster, &file.display().to_string(), objects, ns);
    }
}

#[test]
fn every_example_after_offline_inject_is_accepted_and_its_pods_pass_restricted() {
    let cluster = Cluster::shared();
    let ns = "inject-restricted";
    restricted_namespace(cluster, ns);
    for file in examples() {
        for mode in ["native", "classic"] {
            let objects = inject_file(&file, &["--sidecar-mode", mode]);
            let what = format!("inject --sidecar-mode {mode} -f {}", file.display());
            admitted_restricted(cluster, &what, objects, ns);
        }
    }
}
