//! The test node: containerd and a real kubelet beside the control plane, so that pods the
//! suites create with `nodeName: localhost` and `hostNetwork: true` run as real containers.
//!
//! Everything of the node lives in one PID and mount namespace of its own (`unshare`), whose
//! first process is a shell that only waits: killing it stops every process in it, containers
//! included, and drops every mount made in it; what remains to remove is the node's cgroup
//! root. The namespace also keeps the node's hands off the machine (kernel settings, `/var`,
//! `/run/containerd`; the details in tests/README.md, "The real node").

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;
use tokio::process::{Child, Command};
use walkdir::WalkDir;

use super::components::{free_ports, spawn_logged};

/// The node's name: the API server reaches the kubelet by it (`Hostname` address type), so
/// it must resolve to loopback without a DNS query leaving the machine.
pub const NAME: &str = "localhost";

/// runc, from the Debian package.
const RUNC: &str = "/usr/sbin/runc";

/// How long the kubelet may take to report its node `Ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The values the kubelet expects of the kernel settings it would otherwise write.
const SYSCTLS: [(&str, &str); 3] = [
    ("vm/overcommit_memory", "1"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
];

/// The node's first process and its containerd and kubelet configurations (`$NAMES` filled).
const INIT: &str = include_str!("../../control-plane/node/init.sh");
const CONTAINERD: &str = include_str!("../../control-plane/node/containerd.toml");
const KUBELET: &str = include_str!("../../control-plane/node/kubelet.yaml");

/// The loopback network of one cluster: the service CIDR `127.X.Y.0/24`, the API server on its
/// first address, port 443, so a pod's unmodified in-cluster config reaches it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServiceNet([u8; 2]);

impl ServiceNet {
    /// One for the control plane whose state lives in `state`: derived from its path, so that
    /// clusters of other worktrees and profiles on the machine get others, and checked free.
    pub(crate) fn choose(state: &Path) -> Result<ServiceNet, String> {
        let h = super::path_hash(state);
        let x = 100 + (h % 100) as u8;
        for step in 0..32u8 {
            let net = ServiceNet([x, ((h >> 8) as u8).wrapping_add(step)]);
            if std::net::TcpListener::bind((net.api_ip(), 443)).is_ok() {
                return Ok(net);
            }
        }
        Err(format!(
            "no free loopback service network 127.{x}.*.0/24 (port 443 taken on 32 of them)"
        ))
    }

    /// `127.X.Y.0/24`.
    pub(crate) fn cidr(self) -> String {
        let [x, y] = self.0;
        format!("127.{x}.{y}.0/24")
    }

    /// `127.X.Y.1`: the API server's address.
    pub(crate) fn api_ip(self) -> std::net::Ipv4Addr {
        let [x, y] = self.0;
        std::net::Ipv4Addr::new(127, x, y, 1)
    }
}

/// The node's cgroup root in every hierarchy, named after the run directory `run`.
fn cgroup_root(run: &Path) -> String {
    let h = super::path_hash(run);
    format!("status-reporter-node-{:012x}", h & 0xffff_ffff_ffff)
}

/// A running node (containerd up; the kubelet once [`Node::start_kubelet`] ran).
pub(crate) struct Node {
    /// Where the node keeps its files (`run/node`).
    dir: PathBuf,
    cgroup_root: String,
    /// `unshare`: its child is the namespace's first process.
    unshare: Child,
    /// That first process, as the machine sees it: what a later supervisor kills if this one
    /// is killed (its command line names the run directory).
    pub(crate) init_pid: u32,
    kubelet: Option<Child>,
    /// The host's values of [`SYSCTLS`] before the node started.
    host_sysctls: Vec<String>,
}

impl Node {
    /// Starts containerd in the node's namespaces (binaries in `bin`).
    pub(crate) async fn start(bin: &Path, run: &Path) -> Result<Node, String> {
        for (path, package) in [
            (RUNC, "runc"),
            ("/usr/lib/cni/loopback", "containernetworking-plugins"),
        ] {
            if !Path::new(path).is_file() {
                return Err(format!(
                    "the test node needs {path}: install the Debian package {package}"
                ));
            }
        }
        let dir = &run.join("node");
        let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
        for sub in ["sysctl", "var-lib", "var-log", "run-containerd", "cni"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| io(&dir.join(sub), e))?;
        }
        // The mount point in the host; containerd would make it too.
        std::fs::create_dir_all("/run/containerd")
            .map_err(|e| io(Path::new("/run/containerd"), e))?;
        let put = |name: &str, text: String| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
            Ok(path)
        };
        for (file, value) in SYSCTLS {
            let name = file.rsplit('/').next().unwrap_or(file);
            put(&format!("sysctl/{name}"), format!("{value}\n"))?;
        }
        put(
            "cni/10-loopback.conflist",
            r#"{"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]}"#.into(),
        )?;
        let init = put("init.sh", INIT.into())?;
        let node = dir.display().to_string();
        let values = [
            ("$NODE", &*node),
            ("$PAUSE", super::images::PAUSE),
            ("$RUNC", RUNC),
        ];
        let config = put("containerd.toml", fill(CONTAINERD, &values))?;

        let mut unshare = Command::new("unshare");
        unshare
            .args([
                "--mount",
                "--propagation=private",
                "--pid",
                "--fork",
                "--mount-proc",
                // Also when the supervisor is killed: unshare goes, and takes the namespace.
                "--kill-child",
                "sh",
            ])
            .arg(&init)
            .arg(dir)
            .arg(bin.join("containerd"))
            .arg("--config")
            .arg(&config)
            // containerd finds its shim on PATH.
            .env("PATH", super::path_with(bin));
        let log = run.join("containerd.log");
        let mut unshare = spawn_logged(&mut unshare, &log, &"unshare (util-linux) for the node")?;
        let unshare_pid = unshare.id().ok_or("unshare exited at once")?;
        let Some(init_pid) = first_child(unshare_pid).await else {
            let _ = unshare.kill().await;
            let log = log.display();
            return Err(format!("the node's namespace did not start; see {log}"));
        };
        let mut node = Node {
            dir: dir.clone(),
            cgroup_root: cgroup_root(run),
            unshare,
            init_pid,
            kubelet: None,
            host_sysctls: host_sysctls(),
        };
        if let Err(e) = node.wait_containerd(run).await {
            node.stop().await;
            return Err(e);
        }
        Ok(node)
    }

    /// Until containerd takes connections on its socket (bounded).
    async fn wait_containerd(&mut self, run: &Path) -> Result<(), String> {
        let (socket, log) = (self.dir.join("containerd.sock"), run.join("containerd.log"));
        let log = log.display();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::UnixStream::connect(&socket).await.is_err() {
            if let Ok(Some(status)) = self.unshare.try_wait() {
                return Err(format!("containerd exited ({status}); see {log}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("containerd did not answer within 30 s; see {log}"));
            }
            // containerd offers no readiness event; its socket answering is the probe.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Starts the kubelet (from `bin`, with `kubeconfig`, trusting `client_ca` for the API
    /// server's calls) in the node's namespaces; returns once node [`NAME`] is `Ready`.
    pub(crate) async fn start_kubelet(
        &mut self,
        bin: &Path,
        kubeconfig: &Path,
        client_ca: &Path,
        run: &Path,
        client: &kube::Client,
    ) -> Result<(), String> {
        let dir = &self.dir;
        let root = dir.join("kubelet");
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let [port] = free_ports()?;
        make_cgroups(&self.cgroup_root)?;
        let config = dir.join("kubelet.yaml");
        let values = [
            ("$CGROUP_ROOT", self.cgroup_root.as_str()),
            ("$NODE", &dir.display().to_string()),
            ("$PORT", &port.to_string()),
            ("$CLIENT_CA", &client_ca.display().to_string()),
        ];
        std::fs::write(&config, fill(KUBELET, &values))
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let mut kubelet = Command::new("nsenter");
        kubelet
            .arg(format!("--target={}", self.init_pid))
            .args(["--mount", "--pid", "--"])
            .arg(bin.join("kubelet"))
            .arg(format!("--config={}", config.display()))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--root-dir={}", root.display()))
            .arg(format!("--hostname-override={NAME}"))
            // Refused if loopback; nothing dials it (the API server uses the hostname).
            .arg(format!("--node-ip={}", node_ip()?));
        let log = run.join("kubelet.log");
        let what = "nsenter (util-linux) for the kubelet";
        self.kubelet = Some(spawn_logged(&mut kubelet, &log, &what)?);
        self.wait_ready(client, run).await?;
        self.check_host_sysctls()
    }

    /// Fails if the host's kernel settings are not what they were before the node started.
    fn check_host_sysctls(&self) -> Result<(), String> {
        let now = host_sysctls();
        for (((name, _), before), now) in SYSCTLS.iter().zip(&self.host_sysctls).zip(&now) {
            if before != now {
                return Err(format!(
                    "the node changed the host's {name} from {before} to {now}"
                ));
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self, client: &kube::Client, run: &Path) -> Result<(), String> {
        let nodes: Api<NodeObject> = Api::all(client.clone());
        let ready = super::wait_object(nodes, NAME, READY_TIMEOUT, |n| {
            let conditions = n.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        let kubelet = self.kubelet.as_mut().expect("started");
        let log = run.join("kubelet.log");
        tokio::select! {
            ready = ready => ready
                .map(drop)
                .map_err(|e| format!("node {NAME} not Ready: {e}; see {}", log.display())),
            status = kubelet.wait() => Err(format!(
                "the kubelet exited ({}); see {}",
                status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                log.display()
            )),
        }
    }

    /// Kills the node's namespace (its processes, containers, mounts), removes its cgroups.
    pub(crate) async fn stop(mut self) {
        if let Err(e) = self.check_host_sysctls() {
            eprintln!("control-plane: {e}");
        }
        kill(self.init_pid);
        // unshare returns once the namespace's first process is gone, which the kernel lets
        // happen only after every other process of the namespace is.
        let _ = tokio::time::timeout(Duration::from_secs(30), self.unshare.wait()).await;
        if let Some(mut kubelet) = self.kubelet.take() {
            let _ = kubelet.kill().await;
        }
        remove_cgroups(&self.cgroup_root);
    }
}

/// Removes the cgroups of the node of a killed supervisor's run `run` (the rest goes with it).
pub(crate) fn clean_stale(run: &Path) {
    if run.join("node").exists() {
        remove_cgroups(&cgroup_root(run));
    }
}

/// `template` with each `$NAME` replaced by its value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    (values.iter()).fold(template.to_owned(), |text, (name, value)| {
        text.replace(name, value)
    })
}

/// The host's values of [`SYSCTLS`] (as this process sees them: outside the node).
fn host_sysctls() -> Vec<String> {
    SYSCTLS
        .iter()
        .map(|(name, _)| {
            std::fs::read_to_string(Path::new("/proc/sys").join(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|e| format!("unreadable ({e})"))
        })
        .collect()
}

/// The child `unshare` forked (the namespace's first process), once it exists (bounded).
async fn first_child(pid: u32) -> Option<u32> {
    for _ in 0..100 {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        if let Some(child) = children
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
        {
            return Some(child);
        }
        // A fork is a matter of microseconds; there is no event for it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Removes the cgroup `root` (which only this node made) and all under it, deepest first, in
/// every hierarchy; again for a few seconds while a last process still exits.
fn remove_cgroups(root: &str) {
    let mut tops: Vec<PathBuf> = cgroup_mounts().iter().map(|m| m.join(root)).collect();
    for _ in 0..100 {
        tops.retain(|t| t.is_dir());
        if tops.is_empty() {
            return;
        }
        tops.iter().for_each(|top| remove_tree(top));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("control-plane: cannot remove the node's cgroups {tops:?}");
}

/// Makes the cgroup `root` in every hierarchy (the kubelet requires it to exist).
fn make_cgroups(root: &str) -> Result<(), String> {
    for mount in cgroup_mounts() {
        let dir = mount.join(root);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Where the cgroup hierarchies are mounted (v1 controllers, or the v2 unified one).
fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let fs_type = fs.split_whitespace().next()?;
            let point = mount.split_whitespace().nth(4)?;
            matches!(fs_type, "cgroup" | "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

/// Removes the directories of the cgroup `top`, deepest first (its files go with them).
fn remove_tree(top: &Path) {
    for dir in WalkDir::new(top).contents_first(true).into_iter().flatten() {
        if dir.file_type().is_dir() {
            let _ = std::fs::remove_dir(dir.path());
        }
    }
}

/// The machine's first global IPv4 address (the kubelet refuses a loopback node IP).
fn node_ip() -> Result<String, String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2) to find the node IP: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no global IPv4 address for the node IP in `ip addr`: {text}"))
}
