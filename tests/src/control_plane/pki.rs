//! The control plane's credentials, made fresh for every run.

use std::path::{Path, PathBuf};

use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyPair};

use crate::webhook_process::{Pair, Pki};

/// Paths of the files [`write`] made; each pair is a certificate and its key.
pub(crate) struct Files {
    pub ca_cert: PathBuf,
    /// The API server's serving pair.
    pub serving: (PathBuf, PathBuf),
    pub sa_key: PathBuf,
    /// Its public half (the API server's `--service-account-key-file` reads no PKCS#8 private key).
    pub sa_pub: PathBuf,
    /// `system:masters`.
    pub admin: (PathBuf, PathBuf),
    /// `system:kube-controller-manager`.
    pub controller_manager: (PathBuf, PathBuf),
    /// The kubelet's: `system:node:localhost` in `system:nodes`.
    pub node: (PathBuf, PathBuf),
    /// The API server's for its calls to the kubelet (logs, exec).
    pub kubelet_client: (PathBuf, PathBuf),
}

/// Writes a fresh PKI into `dir`; the API server's certificate also names `service_ip`, the
/// cluster IP of the `kubernetes` Service.
pub(crate) fn write(dir: &Path, service_ip: &str) -> Result<Files, String> {
    let put = |name: &str, text: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    };
    let pair = |name: &str, pair: Pair| -> Result<(PathBuf, PathBuf), String> {
        let cert = put(&format!("{name}.crt"), &pair.cert_pem)?;
        Ok((cert, put(&format!("{name}.key"), &pair.key_pem)?))
    };
    let ca = Pki::default();
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
    let client = |file: &str, cn: &str, org: Option<&str>| {
        let signed = ca.sign(&[], |params| {
            params.distinguished_name.push(DnType::CommonName, cn);
            if let Some(org) = org {
                let name = &mut params.distinguished_name;
                name.push(DnType::OrganizationName, org);
            }
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        });
        pair(file, signed)
    };
    // ECDSA P-256, PKCS#8: the API server signs service-account tokens with it (ES256).
    let sa_key = KeyPair::generate().map_err(|e| format!("a service-account key: {e}"))?;
    Ok(Files {
        ca_cert: put("ca.crt", &ca.ca_pem())?,
        serving: pair("apiserver", serving)?,
        sa_key: put("service-account.key", &sa_key.serialize_pem())?,
        sa_pub: put("service-account.pub", &sa_key.public_key_pem())?,
        admin: client(
            "admin",
            "status-reporter-test-admin",
            Some("system:masters"),
        )?,
        controller_manager: client("controller-manager", "system:kube-controller-manager", None)?,
        node: client(
            "kubelet",
            &format!("system:node:{}", super::node::NAME),
            Some("system:nodes"),
        )?,
        kubelet_client: client(
            "kubelet-client",
            "kube-apiserver-kubelet-client",
            Some("system:masters"),
        )?,
    })
}
