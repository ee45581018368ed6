//! The control plane's credentials, made fresh for every run: a CA, the API server's serving
//! certificate, client certificates for the admin, the controller manager, the node's kubelet
//! and the API server's calls to the kubelet, and the service-account signing key.

use std::path::{Path, PathBuf};

use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyPair};

use crate::webhook_process::Pki;

/// Paths of the files [`write`] made.
pub(crate) struct Files {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_key: PathBuf,
    /// Its public half (the API server's `--service-account-key-file` reads no PKCS#8 private key).
    pub sa_pub: PathBuf,
    /// `system:masters` client certificate and key, PEM.
    pub admin: (String, String),
    /// `system:kube-controller-manager` client certificate and key, PEM.
    pub controller_manager: (String, String),
    /// The kubelet's: `system:node:localhost` in `system:nodes`, PEM.
    pub node: (String, String),
    /// The API server's client certificate for calls to the kubelet (logs, exec).
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
}

/// Writes a fresh PKI into `dir`; the API server's certificate also names `service_ip`, the
/// cluster IP of the `kubernetes` Service.
pub(crate) fn write(dir: &Path, service_ip: &str) -> Result<Files, String> {
    let ca = Pki::new();
    let serving = ca.sign(
        &[
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            service_ip,
        ],
        |params| {
            let name = &mut params.distinguished_name;
            name.push(DnType::CommonName, "kube-apiserver");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        },
    );
    let client = |cn: &str, org: Option<&str>| {
        let pair = ca.sign(&[], |params| {
            params.distinguished_name.push(DnType::CommonName, cn);
            if let Some(org) = org {
                let name = &mut params.distinguished_name;
                name.push(DnType::OrganizationName, org);
            }
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        });
        (pair.cert_pem, pair.key_pem)
    };
    let admin = client("status-reporter-test-admin", Some("system:masters"));
    let controller_manager = client("system:kube-controller-manager", None);
    let node = client(
        &format!("system:node:{}", super::node::NAME),
        Some("system:nodes"),
    );
    let kubelet_client = client("kube-apiserver-kubelet-client", Some("system:masters"));
    // ECDSA P-256, PKCS#8: the API server signs service-account tokens with it (ES256).
    let sa_key = KeyPair::generate().map_err(|e| format!("a service-account key: {e}"))?;

    let put = |name: &str, text: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    };
    Ok(Files {
        ca_cert: put("ca.crt", &ca.ca_pem())?,
        serving_cert: put("apiserver.crt", &serving.cert_pem)?,
        serving_key: put("apiserver.key", &serving.key_pem)?,
        sa_key: put("service-account.key", &sa_key.serialize_pem())?,
        sa_pub: put("service-account.pub", &sa_key.public_key_pem())?,
        kubelet_client_cert: put("kubelet-client.crt", &kubelet_client.0)?,
        kubelet_client_key: put("kubelet-client.key", &kubelet_client.1)?,
        admin,
        controller_manager,
        node,
    })
}
