//! A kubeconfig pointing at the stand-in.

use std::path::{Path, PathBuf};

/// Writes `dir/kubeconfig` (cluster `stand-in` at `url`, bearer-token user, namespace
/// `default`) and returns its path. Panics if the file cannot be written.
pub(crate) fn write(url: &str, dir: &Path) -> PathBuf {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster:
    server: {url}
users:
- name: stand-in
  user:
    token: stand-in-token
contexts:
- name: stand-in
  context:
    cluster: stand-in
    user: stand-in
    namespace: default
current-context: stand-in
"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap_or_else(|e| {
        panic!(
            "stand-in: cannot write the kubeconfig {}: {e}",
            path.display()
        )
    });
    path
}
