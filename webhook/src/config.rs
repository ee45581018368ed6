//! Webhook configuration: what the injected reporter container looks like cluster-wide.
//! [`InjectorArgs`] is the clap surface (every flag also reads an env var);
//! [`InjectConfig`] is the validated, pure value the injector works with.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::{Error, Result};
use crate::patch::Fixed;
use contract::{Setting, SidecarMode};

/// Default reporter image; deployments pin their own with `--reporter-image`.
pub const DEFAULT_REPORTER_IMAGE: &str = concat!(
    "ghcr.io/openshift-hyperfleet/status-reporter:",
    env!("CARGO_PKG_VERSION")
);

/// The injector flags' defaults, each named once: clap and [`InjectConfig::default`] read them.
mod defaults {
    pub const CPU_REQUEST: &str = "10m";
    pub const MEMORY_REQUEST: &str = "16Mi";
    pub const MEMORY_LIMIT: &str = "64Mi";
    pub const RESULTS_VOLUME_SIZE_LIMIT: &str = "16Mi";
    pub const EXCLUDED_NAMESPACES: &str = "kube-system";
}

/// Image pull policy of the reporter container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// `Always`.
    #[value(name = "Always")]
    Always,
    /// `IfNotPresent`.
    #[value(name = "IfNotPresent")]
    IfNotPresent,
    /// `Never`.
    #[value(name = "Never")]
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Flags shared by `serve` and `inject`: how the reporter container is built.
#[derive(Debug, Clone, clap::Args)]
pub struct InjectorArgs {
    /// Image of the injected status-reporter container.
    #[arg(long, env = "REPORTER_IMAGE", default_value = DEFAULT_REPORTER_IMAGE)]
    pub reporter_image: String,

    /// imagePullPolicy of the injected container.
    #[arg(
        long,
        env = "REPORTER_IMAGE_PULL_POLICY",
        value_enum,
        default_value = "IfNotPresent"
    )]
    pub reporter_image_pull_policy: PullPolicy,

    /// CPU request of the injected container (Kubernetes quantity; empty = none).
    #[arg(long, env = "REPORTER_CPU_REQUEST", default_value = defaults::CPU_REQUEST)]
    pub reporter_cpu_request: String,

    /// Memory request of the injected container (Kubernetes quantity; empty = none).
    #[arg(long, env = "REPORTER_MEMORY_REQUEST", default_value = defaults::MEMORY_REQUEST)]
    pub reporter_memory_request: String,

    /// CPU limit of the injected container (Kubernetes quantity; empty = none).
    #[arg(long, env = "REPORTER_CPU_LIMIT", default_value = "")]
    pub reporter_cpu_limit: String,

    /// Memory limit of the injected container (Kubernetes quantity; empty = none).
    #[arg(long, env = "REPORTER_MEMORY_LIMIT", default_value = defaults::MEMORY_LIMIT)]
    pub reporter_memory_limit: String,

    /// Default sidecar mode; a Job's `sidecar-mode` annotation overrides it.
    #[arg(long, env = Setting::SidecarMode.env(), value_enum, default_value = "native")]
    pub sidecar_mode: SidecarMode,

    /// sizeLimit of the shared results emptyDir volume (Kubernetes quantity).
    #[arg(long, env = "RESULTS_VOLUME_SIZE_LIMIT", default_value = defaults::RESULTS_VOLUME_SIZE_LIMIT)]
    pub results_volume_size_limit: String,

    /// Namespaces whose Jobs are never injected (comma-separated).
    #[arg(
        long,
        env = "EXCLUDED_NAMESPACES",
        value_delimiter = ',',
        default_value = defaults::EXCLUDED_NAMESPACES
    )]
    pub excluded_namespaces: Vec<String>,
}

/// The reporter container's resource requirements, rendered once: every patch copies them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    requirements: ResourceRequirements,
    /// `None` when there are neither requests nor limits (the container gets no `resources`).
    rendered: Option<Fixed>,
}

impl Resources {
    /// Requirements as given.
    pub fn new(requirements: ResourceRequirements) -> Self {
        let rendered = (requirements.requests.is_some() || requirements.limits.is_some())
            .then(|| Fixed::new(&requirements));
        Resources {
            requirements,
            rendered,
        }
    }

    /// The requirements.
    pub fn requirements(&self) -> &ResourceRequirements {
        &self.requirements
    }

    /// The `resources` of the injected container; `None` when nothing is requested or limited.
    pub fn rendered(&self) -> Option<&Fixed> {
        self.rendered.as_ref()
    }
}

/// Validated injector configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectConfig {
    /// Reporter image.
    pub reporter_image: String,
    /// Reporter imagePullPolicy.
    pub image_pull_policy: PullPolicy,
    /// Reporter resources.
    pub resources: Resources,
    /// Default sidecar mode.
    pub sidecar_mode: SidecarMode,
    /// sizeLimit of the results emptyDir.
    pub results_volume_size_limit: Quantity,
    /// Namespaces never injected.
    pub excluded_namespaces: Vec<String>,
    /// The namespace the webhook runs in: never injected, whatever `excluded_namespaces` says.
    pub own_namespace: Option<String>,
}

impl Default for InjectConfig {
    fn default() -> Self {
        let mut requests = BTreeMap::new();
        let quantity = |q: &str| Quantity(q.to_owned());
        requests.insert("cpu".to_owned(), quantity(defaults::CPU_REQUEST));
        requests.insert("memory".to_owned(), quantity(defaults::MEMORY_REQUEST));
        let mut limits = BTreeMap::new();
        limits.insert("memory".to_owned(), quantity(defaults::MEMORY_LIMIT));
        InjectConfig {
            reporter_image: DEFAULT_REPORTER_IMAGE.to_owned(),
            image_pull_policy: PullPolicy::IfNotPresent,
            resources: Resources::new(ResourceRequirements {
                requests: Some(requests),
                limits: Some(limits),
                ..ResourceRequirements::default()
            }),
            sidecar_mode: SidecarMode::Native,
            results_volume_size_limit: quantity(defaults::RESULTS_VOLUME_SIZE_LIMIT),
            excluded_namespaces: vec![defaults::EXCLUDED_NAMESPACES.to_owned()],
            own_namespace: None,
        }
    }
}

impl InjectorArgs {
    /// Validates the flags into an [`InjectConfig`].
    pub fn to_config(&self) -> Result<InjectConfig> {
        let image = self.reporter_image.trim();
        if image.is_empty() || image.chars().any(char::is_whitespace) {
            return Err(Error::Config {
                flag: "reporter-image",
                value: self.reporter_image.clone(),
                accepted:
                    "a container image reference without spaces, e.g. registry/status-reporter:1.0"
                        .into(),
            });
        }
        let mut requests = BTreeMap::new();
        let mut limits = BTreeMap::new();
        for (flag, value, is_limit, key) in [
            (
                "reporter-cpu-request",
                &self.reporter_cpu_request,
                false,
                "cpu",
            ),
            (
                "reporter-memory-request",
                &self.reporter_memory_request,
                false,
                "memory",
            ),
            ("reporter-cpu-limit", &self.reporter_cpu_limit, true, "cpu"),
            (
                "reporter-memory-limit",
                &self.reporter_memory_limit,
                true,
                "memory",
            ),
        ] {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let map = if is_limit { &mut limits } else { &mut requests };
            map.insert(key.to_owned(), quantity(flag, value)?);
        }
        let size = self.results_volume_size_limit.trim();
        if size.is_empty() {
            return Err(Error::Config {
                flag: "results-volume-size-limit",
                value: String::new(),
                accepted: "a Kubernetes quantity such as 16Mi".into(),
            });
        }
        let results_volume_size_limit = quantity("results-volume-size-limit", size)?;
        Ok(InjectConfig {
            reporter_image: image.to_owned(),
            image_pull_policy: self.reporter_image_pull_policy,
            resources: Resources::new(ResourceRequirements {
                requests: (!requests.is_empty()).then_some(requests),
                limits: (!limits.is_empty()).then_some(limits),
                ..ResourceRequirements::default()
            }),
            sidecar_mode: self.sidecar_mode,
            results_volume_size_limit,
            excluded_namespaces: self
                .excluded_namespaces
                .iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            own_namespace: None,
        })
    }
}

/// Checks the Kubernetes quantity grammar (`<number><suffix>`), so a typo fails at start-up
/// instead of making every admitted Job invalid.
fn quantity(flag: &'static str, value: &str) -> Result<Quantity> {
    if is_quantity(value) {
        Ok(Quantity(value.to_owned()))
    } else {
        Err(Error::Config {
            flag,
            value: value.to_owned(),
            accepted: "a Kubernetes quantity: a number with an optional suffix \
                       (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent like 1e3)"
                .into(),
        })
    }
}

fn is_quantity(value: &str) -> bool {
    let s = value.strip_prefix(['+', '-']).unwrap_or(value);
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    match suffix {
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            true
        }
        exp => {
            let Some(rest) = exp.strip_prefix(['e', 'E']) else {
                return false;
            };
            let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for good in [
            "1", "10m", "16Mi", "1.5Gi", "0.5", "1e3", "2E-2", "+1k", ".5",
        ] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "Mi", "16MB", "1..5", "ten", "1e", "16 Mi", "1.2.3"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
