//! Where the reporter runs in the pod.

/// Where the reporter runs in the pod (`SIDECAR_MODE`, annotation `sidecar-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SidecarMode {
    /// A regular container that exits after reporting: 0 for True, 1 otherwise (as the original).
    Classic,
    /// The first init container with `restartPolicy: Always` (Kubernetes ≥ 1.29): never exits
    /// after reporting; exits 0 on SIGTERM.
    Native,
}

impl SidecarMode {
    /// Accepted spellings, in the order messages list them.
    pub const ACCEPTED: &'static [&'static str] = &["classic", "native"];

    /// The value used in `SIDECAR_MODE` and the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            SidecarMode::Classic => "classic",
            SidecarMode::Native => "native",
        }
    }

    /// Exactly `classic` or `native` (case-sensitive, as the original).
    pub fn parse(value: &str) -> Option<SidecarMode> {
        match value {
            "classic" => Some(SidecarMode::Classic),
            "native" => Some(SidecarMode::Native),
            _ => None,
        }
    }
}
