//! Starting and stopping the components on loopback, each logging to a file in the run
//! directory (the supervisor's part).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyPair};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::node::{Node, ServiceNet};
use super::{Release, binaries};
use crate::webhook_process::{Pair, Pki};

/// How long the API server may take to become ready (a cold start on 2 loaded cores takes
/// about 10 s; bootstrap RBAC and priority classes are written on first start).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The audit log in the run directory (see [`AUDIT_POLICY`]).
pub(crate) const AUDIT_LOG: &str = "audit.log";

/// Audit requests of ServiceAccounts other than the controllers' (kube-system), one event per
/// request (at its end), metadata only.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: None
    userGroups: [\"system:serviceaccounts:kube-system\"]
  - level: Metadata
    userGroups: [\"system:serviceaccounts\"]
  - level: None
";

/// The service-account token issuer (and audience) of the test cluster.
pub(crate) const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The running components.
pub(crate) struct Components {
    /// Where the binaries are, and the run directory (their logs).
    bin: PathBuf,
    run: PathBuf,
    children: Vec<(&'static str, Child)>,
    node: Option<Node>,
    /// `kubeconfig` (admin, `system:masters`) in the run directory.
    pub kubeconfig: PathBuf,
}

/// Starts etcd, the API server, the controller manager (where built) and, for the current
/// release, the node in `run`; returns once each works (`/readyz`, the `default`
/// ServiceAccount, the node `Ready`).
pub(crate) async fn start(release: Release, bin: &Path, run: &Path) -> Result<Components, String> {
    let pki_dir = run.join("pki");
    std::fs::create_dir_all(&pki_dir).map_err(|e| format!("{}: {e}", pki_dir.display()))?;
    // The API server on the `kubernetes` Service's cluster IP, port 443, on loopback: pods on
    // the node reach it through the unmodified in-cluster config.
    let net = ServiceNet::choose(run.parent().unwrap_or(run))?;
    let pki = write_credentials(&pki_dir, &net.api_ip().to_string())?;
    let [etcd_client, etcd_peer] = free_ports()?;
    let server = format!("https://{}:443", net.api_ip());
    let mut components = Components {
        bin: bin.to_owned(),
        run: run.to_owned(),
        children: Vec::new(),
        node: None,
        kubeconfig: write_kubeconfig(run, "kubeconfig", &server, &pki.ca_cert, &pki.admin)?,
    };
    let kcm_kubeconfig = write_kubeconfig(
        run,
        "controller-manager.kubeconfig",
        &server,
        &pki.ca_cert,
        &pki.controller_manager,
    )?;

    let etcd_url = format!("http://127.0.0.1:{etcd_client}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    components.spawn(
        "etcd",
        &[
            "--name=default".into(),
            format!("--data-dir={}", run.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            // Throwaway data: no fsync keeps etcd from dominating a 2-core machine.
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ],
    )?;

    // Every request a ServiceAccount outside kube-system makes (the reporter under test runs as
    // one) is audited, one line per request: how benchmarks and tests count API requests.
    let audit_policy = run.join("audit-policy.yaml");
    std::fs::write(&audit_policy, AUDIT_POLICY)
        .map_err(|e| format!("{}: {e}", audit_policy.display()))?;
    let mut apiserver = vec![
        format!("--audit-policy-file={}", audit_policy.display()),
        format!("--audit-log-path={}", run.join(AUDIT_LOG).display()),
        "--audit-log-format=json".into(),
        "--audit-log-mode=blocking".into(),
        format!("--etcd-servers={etcd_url}"),

        format!("--tls-cert-file={}", pki.serving.0.display()),
        format!("--tls-private-key-file={}", pki.serving.1.display()),
        format!("--client-ca-file={}", pki.ca_cert.display()),
        format!("--service-account-issuer={ISSUER}"),
        format!("--service-account-key-file={}", pki.sa_pub.display()),
        format!("--service-account-signing-key-file={}", pki.sa_key.display()),
        "--authorization-mode=Node,RBAC".into(),
        // On top of the default plugins (which already include most of these): the admission
        // chain users have, named so a change of defaults cannot silently drop one.
        "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,NodeRestriction,PodSecurity,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy".into(),
        // Nothing to reconcile without nodes; saves CPU on a small machine.
        "--endpoint-reconciler-type=none".into(),
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
        format!("--bind-address={}", net.api_ip()),
        format!("--advertise-address={}", net.api_ip()),
        "--secure-port=443".into(),
        format!("--service-cluster-ip-range={}", net.cidr()),
        // The node is `localhost`: logs and exec go over loopback.
        "--kubelet-preferred-address-types=Hostname".into(),
        format!("--kubelet-client-certificate={}", pki.kubelet_client.0.display()),
        format!("--kubelet-client-key={}", pki.kubelet_client.1.display()),
    ];
    if release == Release::Oldest {
        // 1.33: MutatingAdmissionPolicy is alpha (v1alpha1, behind its gate).
        apiserver.push("--feature-gates=MutatingAdmissionPolicy=true".into());
        apiserver.push("--runtime-config=admissionregistration.k8s.io/v1alpha1=true".into());
    }
    components.spawn("kube-apiserver", &apiserver)?;
    if release == Release::Current {
        // containerd starts while the API server does.
        components.node = Some(Node::start(&binaries::node_bin_dir()?, run).await?);
    }

    let client = admin_client(&components.kubeconfig).await?;
    components.wait_ready(&client).await?;

    if bin.join("kube-controller-manager").is_file() {
        components.spawn(
            "kube-controller-manager",
            &[
                format!("--kubeconfig={}", kcm_kubeconfig.display()),
                // Each controller acts as its own ServiceAccount with its bootstrap RBAC, as
                // on real clusters.
                "--use-service-account-credentials=true".into(),
                "--controllers=job-controller,cronjob-controller,deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,pod-garbage-collector-controller,ttl-after-finished-controller".into(),
                format!("--service-account-private-key-file={}", pki.sa_key.display()),
                format!("--root-ca-file={}", pki.ca_cert.display()),
                "--leader-elect=false".into(),
                "--secure-port=0".into(),
            ],
        )?;
        if let Some(node) = &mut components.node {
            let kubeconfig =
                write_kubeconfig(run, "kubelet.kubeconfig", &server, &pki.ca_cert, &pki.node)?;
            node.start_kubelet(bin, &kubeconfig, &pki.ca_cert, run, &client)
                .await?;
        }
        // The controller manager is up when its ServiceAccount controller made `default`.
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        if let Err(e) = super::wait_object(sas, "default", READY_TIMEOUT, |_| true).await {
            let exited = components.exited().await;
            return Err(format!(
                "kube-controller-manager did not create the default ServiceAccount: {e}{exited}"
            ));
        }
    }
    Ok(components)
}

impl Components {
    fn spawn(&mut self, name: &'static str, args: &[String]) -> Result<(), String> {
        let path = self.bin.join(name);
        let log = self.run.join(format!("{name}.log"));
        let child = spawn_logged(Command::new(&path).args(args), &log, &path.display())?;
        self.children.push((name, child));
        Ok(())
    }

    /// The process ids (recorded: a later supervisor cleans up after a killed one).
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.children.iter().filter_map(|(_, c)| c.id()).collect();
        pids.extend(self.node.as_ref().map(|n| n.init_pid));
        pids
    }

    async fn wait_ready(&mut self, client: &kube::Client) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut last;
        loop {
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| e.to_string())?;
            match tokio::time::timeout(Duration::from_secs(5), client.request_text(req)).await {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => last = body,
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
            let exited = self.exited().await;
            if !exited.is_empty() {
                return Err(format!("the control plane did not start{exited}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "kube-apiserver was not ready within {READY_TIMEOUT:?}; last /readyz: {last}"
                ));
            }
            // The API server offers no readiness event to wait on; /readyz is the probe the
            // kubelet itself polls.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Components that exited, with their exit status (empty when all run).
    async fn exited(&mut self) -> String {
        let mut out = String::new();
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                out.push_str(&format!("; {name} exited ({status}), see {name}.log"));
            }
        }
        out
    }

    /// Stops every component, newest first (SIGKILL: the data is thrown away).
    pub(crate) async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
        while let Some((_, mut child)) = self.children.pop() {
            let _ = child.kill().await;
        }
    }
}

/// An admin client from `kubeconfig`.
pub(crate) async fn admin_client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let config = super::client_config(kubeconfig).await?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// Starts `cmd` (stdin null, output to the file `log`, killed on drop); errors name `what`.
pub(crate) fn spawn_logged(
    cmd: &mut Command,
    log: &Path,
    what: &dyn std::fmt::Display,
) -> Result<Child, String> {
    let io = |e: std::io::Error| format!("{}: {e}", log.display());
    let file = std::fs::File::create(log).map_err(io)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().map_err(io)?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))
}

/// `N` distinct free loopback ports (bound, then released for the components to take).
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no free loopback port: {e}"))?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    Ok(ports.try_into().expect("N ports"))
}

/// Writes the kubeconfig `run/name` for the client certificate and key `cert`.
fn write_kubeconfig(
    run: &Path,
    name: &str,
    server: &str,
    ca: &Path,
    (cert, key): &(PathBuf, PathBuf),
) -> Result<PathBuf, String> {
    let user = cert.file_stem().unwrap_or_default().to_string_lossy();
    let credentials = json!({"client-certificate": cert, "client-key": key});
    let path = run.join(name);
    let text = kubeconfig_text(server, ca, &user, credentials, "default");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// A kubeconfig (JSON: every kubeconfig reader takes it) for `user` with `credentials` on the
/// API server at `server` (trusting `ca`), in `namespace`.
pub(crate) fn kubeconfig_text(
    server: &str,
    ca: &Path,
    user: &str,
    credentials: Value,
    namespace: &str,
) -> String {
    let context = json!({"cluster": "test", "user": user, "namespace": namespace});
    json!({
        "apiVersion": "v1", "kind": "Config", "current-context": user,
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
    })
    .to_string()
}

/// The control plane's credentials, fresh for every run ([`write_credentials`]); each pair is a
/// certificate and its key.
struct Credentials {
    ca_cert: PathBuf,
    /// The API server's serving pair.
    serving: (PathBuf, PathBuf),
    sa_key: PathBuf,
    /// Its public half (the API server's `--service-account-key-file` reads no PKCS#8 private key).
    sa_pub: PathBuf,
    /// `system:masters`.
    admin: (PathBuf, PathBuf),
    /// `system:kube-controller-manager`.
    controller_manager: (PathBuf, PathBuf),
    /// The kubelet's: `system:node:localhost` in `system:nodes`.
    node: (PathBuf, PathBuf),
    /// The API server's for its calls to the kubelet (logs, exec).
    kubelet_client: (PathBuf, PathBuf),
}

/// Writes a fresh PKI into `dir`; the API server's certificate also names `service_ip`, the
/// cluster IP of the `kubernetes` Service.
fn write_credentials(dir: &Path, service_ip: &str) -> Result<Credentials, String> {
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
    Ok(Credentials {
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
