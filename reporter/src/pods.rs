//! The reporter's calls on pods beside its own pod's watch: recording its attempt's result on
//! its own pod (`PATCH pods/status`, a strategic merge keyed by condition `type`) and listing
//! the Job's pods (label `batch.kubernetes.io/controller-uid`) for the aggregate. Both retry
//! transient failures within the caller's deadline (see [`crate::api`]).

use http::Method;
use k8s_openapi::List;
use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::api::{self, GaveUp, Payload, RetryPolicy};
use crate::attempt::Attempt;
use crate::error::{Error, Result};

/// Pod requests in one namespace.
#[derive(Clone)]
pub struct Pods {
    client: kube::Client,
    namespace: String,
    policy: RetryPolicy,
}

impl Pods {
    /// Pods of `namespace`.
    pub fn new(client: kube::Client, namespace: &str, policy: RetryPolicy) -> Self {
        Pods {
            client,
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
        deadline: Instant,
    ) -> Result<u32> {
        let uri = format!("/api/v1/namespaces/{}/pods/{pod}/status", self.namespace);
        let body = Payload::strategic_merge(serde_json::to_vec(patch).unwrap_or_default());
        api::with_retries(
            &self.client,
            (Method::PATCH, &uri, Some(body)),
            &self.policy,
            deadline,
            "patch pods/status",
        )
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
    pub async fn of_job(&self, job_uid: &str, deadline: Instant) -> Result<(Vec<Attempt>, u32)> {
        let uri = format!(
            "/api/v1/namespaces/{}/pods?labelSelector={}%3D{job_uid}",
            self.namespace,
            contract::JOB_UID_LABEL.replace('/', "%2F")
        );
        let object = format!("{} (Job uid {job_uid})", self.namespace);
        let (reply, attempts) = api::with_retries(
            &self.client,
            (Method::GET, &uri, None),
            &self.policy,
            deadline,
            "list pods",
        )
        .await
        .map_err(|e| self.error(e, "list", "pods", object.clone()))?;
        let list: List<Pod> = serde_json::from_slice(&reply.body).map_err(|e| Error::Api {
            verb: "list",
            resource: "pods",
            object,
            code: 200,
            message: format!("response is not a pod list: {e}"),
            hint: String::new(),
        })?;
        Ok((list.items.iter().map(Attempt::from_pod).collect(), attempts))
    }
}
