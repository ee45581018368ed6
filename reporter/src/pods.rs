//! The reporter's calls on pods beside its own pod's watch: recording its attempt's result on
//! its own pod (`PATCH pods/status`, a strategic merge keyed by condition `type`) and listing
//! the Job's pods (label `batch.kubernetes.io/controller-uid`) for the aggregate, in pages so
//! no one response holds a large Job's every pod. Both retry transient failures within the
//! caller's deadline (see [`crate::retry`]).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::attempt::Attempt;
use crate::error::{Error, Result};
use crate::retry::{self, Deadline, GaveUp, RetryPolicy};

/// Pods per page of a list: a page of pods is far below the response bound
/// ([`crate::response_limit::MAX_LINE`]).
const PAGE: u32 = 100;

/// The most pods of one Job the aggregate reads (and holds, at a few hundred bytes each): a
/// Job with more pods, or a server that keeps sending pages, is refused with an error that
/// says so rather than growing without bound.
pub const MAX_PODS: usize = 10_000;

/// Pod requests in one namespace.
#[derive(Clone)]
pub struct Pods {
    api: Api<Pod>,
    namespace: String,
    policy: RetryPolicy,
}

impl Pods {
    /// Pods of `namespace`.
    pub fn new(client: kube::Client, namespace: &str, policy: RetryPolicy) -> Self {
        Pods {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            policy,
        }
    }

    fn error(
        &self,
        gave_up: GaveUp,
        verb: &'static str,
        resource: &'static str,
        object: String,
    ) -> Error {
        match gave_up {
            GaveUp::Permanent { code, message } => Error::Api {
                verb,
                resource,
                hint: match code {
                    403 => format!(
                        " (RBAC: the reporter's service account needs verb {verb} on resource {resource} in namespace {})",
                        self.namespace
                    ),
                    _ => String::new(),
                },
                object,
                code,
                message,
            },
            GaveUp::Deadline { attempts, last } => Error::Request {
                what: format!("{verb} {resource} {object}"),
                attempts,
                last,
            },
        }
    }

    /// Applies `patch` (a strategic merge) to `pod`'s status; returns the requests made.
    pub async fn patch_status(
        &self,
        pod: &str,
        patch: &serde_json::Value,
        deadline: &Deadline,
    ) -> Result<u32> {
        let params = PatchParams::default();
        let patch = Patch::Strategic(patch);
        retry::retrying("patch pods/status", &self.policy, deadline.at, || {
            self.api.patch_status(pod, &params, &patch)
        })
        .await
        .map(|(_, attempts)| attempts)
        .map_err(|e| {
            self.error(
                e,
                "patch",
                "pods/status",
                format!("{}/{pod}", self.namespace),
            )
        })
    }

    /// The pods of the Job with uid `job_uid`, as attempts; also returns the requests made.
    pub async fn of_job(&self, job_uid: &str, deadline: &Deadline) -> Result<(Vec<Attempt>, u32)> {
        let object = format!("{} (Job uid {job_uid})", self.namespace);
        let selector = format!("{}={job_uid}", contract::JOB_UID_LABEL);
        let mut attempts = Vec::new();
        let mut requests = 0;
        let mut page = ListParams::default().labels(&selector).limit(PAGE);
        loop {
            let (list, n) = retry::retrying("list pods", &self.policy, deadline.at, || {
                self.api.list(&page)
            })
            .await
            .map_err(|e| self.error(e, "list", "pods", object.clone()))?;
            requests += n;
            attempts.extend(list.items.iter().map(Attempt::from_pod));
            if attempts.len() > MAX_PODS {
                return Err(Error::Request {
                    what: format!("list pods {object}"),
                    attempts: requests,
                    last: format!(
                        "the Job has more than {MAX_PODS} pods, more than the reporter aggregates; use fewer completions per Job"
                    ),
                });
            }
            match list.metadata.continue_ {
                Some(token) if !token.is_empty() => page = page.continue_token(&token),
                _ => return Ok((attempts, requests)),
            }
        }
    }
}
