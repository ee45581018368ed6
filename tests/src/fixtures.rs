//! Chainable builders for the Jobs and Pods tests hand to the stand-in.
//!
//! ```
//! use stand_in::fixtures::{JobBuilder, PodBuilder};
//! let job = JobBuilder::new("default", "validate").backoff_limit(0).build();
//! let pod = PodBuilder::new("default", "validate-abcde").job_name("validate")
//!     .container("adapter").init_sidecar("status-reporter").build();
//! assert_eq!(job["spec"]["backoffLimit"], 0);
//! assert_eq!(pod["metadata"]["labels"]["job-name"], "validate");
//! ```

use serde_json::{Map, Value, json};

/// Builds a batch/v1 Job (with a one-container pod template unless containers are given).
#[derive(Clone, Debug)]
pub struct JobBuilder {
    namespace: String,
    name: String,
    annotations: Map<String, Value>,
    labels: Map<String, Value>,
    template_annotations: Map<String, Value>,
    containers: Vec<Value>,
    init_containers: Vec<Value>,
    backoff_limit: Option<i32>,
    restart_policy: String,
    conditions: Vec<Value>,
}

impl JobBuilder {
    /// A Job `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> JobBuilder {
        JobBuilder {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            annotations: Map::new(),
            labels: Map::new(),
            template_annotations: Map::new(),
            containers: Vec::new(),
            init_containers: Vec::new(),
            backoff_limit: None,
            restart_policy: "Never".to_owned(),
            conditions: Vec::new(),
        }
    }

    /// Adds an annotation on the Job's metadata.
    pub fn annotation(mut self, key: &str, value: &str) -> JobBuilder {
        self.annotations.insert(key.to_owned(), value.into());
        self
    }

    /// Adds an annotation on the pod template's metadata.
    pub fn template_annotation(mut self, key: &str, value: &str) -> JobBuilder {
        self.template_annotations
            .insert(key.to_owned(), value.into());
        self
    }

    /// Adds a label on the Job's metadata.
    pub fn label(mut self, key: &str, value: &str) -> JobBuilder {
        self.labels.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a container (image `busybox`) to the pod template.
    pub fn container(mut self, name: &str) -> JobBuilder {
        self.containers
            .push(json!({ "name": name, "image": "busybox" }));
        self
    }

    /// Adds a native sidecar (init container with `restartPolicy: Always`) to the template.
    pub fn init_sidecar(mut self, name: &str) -> JobBuilder {
        self.init_containers
            .push(json!({ "name": name, "image": "busybox", "restartPolicy": "Always" }));
        self
    }

    /// Sets `spec.backoffLimit`.
    pub fn backoff_limit(mut self, limit: i32) -> JobBuilder {
        self.backoff_limit = Some(limit);
        self
    }

    /// Sets the pod template's `restartPolicy` (`Never` by default, or `OnFailure`).
    pub fn restart_policy(mut self, policy: &str) -> JobBuilder {
        self.restart_policy = policy.to_owned();
        self
    }

    /// Adds a `.status.conditions` entry (any JSON, e.g. `{"type": "Complete", "status": "True"}`).
    pub fn condition(mut self, condition: Value) -> JobBuilder {
        self.conditions.push(condition);
        self
    }

    /// The Job as JSON.
    pub fn build(self) -> Value {
        let containers = if self.containers.is_empty() {
            vec![json!({ "name": "adapter", "image": "busybox" })]
        } else {
            self.containers
        };
        let mut template_spec =
            json!({ "restartPolicy": self.restart_policy, "containers": containers });
        if !self.init_containers.is_empty() {
            template_spec["initContainers"] = self.init_containers.into();
        }
        let mut template_meta = json!({});
        if !self.template_annotations.is_empty() {
            template_meta["annotations"] = self.template_annotations.into();
        }
        let mut job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": { "name": self.name, "namespace": self.namespace },
            "spec": { "template": { "metadata": template_meta, "spec": template_spec } },
        });
        if !self.annotations.is_empty() {
            job["metadata"]["annotations"] = self.annotations.into();
        }
        if !self.labels.is_empty() {
            job["metadata"]["labels"] = self.labels.into();
        }
        if let Some(limit) = self.backoff_limit {
            job["spec"]["backoffLimit"] = limit.into();
        }
        if !self.conditions.is_empty() {
            job["status"] = json!({ "conditions": self.conditions });
        }
        job
    }
}

/// Builds a core/v1 Pod as the Job controller would create it.
#[derive(Clone, Debug)]
pub struct PodBuilder {
    namespace: String,
    name: String,
    job_name: Option<String>,
    job_uid: Option<String>,
    containers: Vec<Value>,
    init_containers: Vec<Value>,
    restart_policy: String,
    labels: Map<String, Value>,
}

impl PodBuilder {
    /// A Pod `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> PodBuilder {
        PodBuilder {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            job_name: None,
            job_uid: None,
            containers: Vec::new(),
            init_containers: Vec::new(),
            restart_policy: "Never".to_owned(),
            labels: Map::new(),
        }
    }

    /// Owned by this Job: labels `batch.kubernetes.io/job-name` and `job-name`, and a
    /// controller ownerReference (its uid is filled by `StandIn::create_pod` when the Job
    /// exists there, unless set with [`PodBuilder::job_uid`]).
    pub fn job_name(mut self, job: &str) -> PodBuilder {
        self.job_name = Some(job.to_owned());
        self
    }

    /// Sets the owner Job's uid explicitly.
    pub fn job_uid(mut self, uid: &str) -> PodBuilder {
        self.job_uid = Some(uid.to_owned());
        self
    }

    /// Adds a regular container (image `busybox`).
    pub fn container(mut self, name: &str) -> PodBuilder {
        self.containers
            .push(json!({ "name": name, "image": "busybox" }));
        self
    }

    /// Adds a native sidecar: an init container with `restartPolicy: Always`.
    pub fn init_sidecar(mut self, name: &str) -> PodBuilder {
        self.init_containers
            .push(json!({ "name": name, "image": "busybox", "restartPolicy": "Always" }));
        self
    }

    /// Sets `spec.restartPolicy` (`Never` by default, or `OnFailure`).
    pub fn restart_policy(mut self, policy: &str) -> PodBuilder {
        self.restart_policy = policy.to_owned();
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> PodBuilder {
        self.labels.insert(key.to_owned(), value.into());
        self
    }

    /// The Pod as JSON, in phase `Pending`.
    pub fn build(self) -> Value {
        let containers = if self.containers.is_empty() {
            vec![json!({ "name": "adapter", "image": "busybox" })]
        } else {
            self.containers
        };
        let mut labels = self.labels;
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": self.name, "namespace": self.namespace },
            "spec": { "restartPolicy": self.restart_policy, "containers": containers },
            "status": { "phase": "Pending" },
        });
        if let Some(job) = &self.job_name {
            labels.insert("batch.kubernetes.io/job-name".into(), job.as_str().into());
            labels.insert("job-name".into(), job.as_str().into());
            pod["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "batch/v1", "kind": "Job", "name": job,
                "uid": self.job_uid.unwrap_or_default(),
                "controller": true, "blockOwnerDeletion": true,
            }]);
        }
        if !labels.is_empty() {
            pod["metadata"]["labels"] = labels.into();
        }
        if !self.init_containers.is_empty() {
            pod["spec"]["initContainers"] = self.init_containers.into();
        }
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_builder_builds_a_valid_job() {
        let job = JobBuilder::new("ns", "j")
            .annotation("a", "b")
            .backoff_limit(2)
            .condition(json!({"type": "Complete", "status": "True"}))
            .build();
        let parsed: k8s_openapi::api::batch::v1::Job = serde_json::from_value(job.clone()).unwrap();
        assert_eq!(parsed.spec.unwrap().backoff_limit, Some(2));
        assert_eq!(job["metadata"]["annotations"]["a"], "b");
        assert_eq!(job["status"]["conditions"][0]["type"], "Complete");
    }

    #[test]
    fn pod_builder_links_to_its_job() {
        let pod = PodBuilder::new("ns", "p")
            .job_name("j")
            .container("adapter")
            .init_sidecar("reporter")
            .restart_policy("OnFailure")
            .build();
        let parsed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod.clone()).unwrap();
        let spec = parsed.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("OnFailure"));
        assert_eq!(
            spec.init_containers.unwrap()[0].restart_policy.as_deref(),
            Some("Always")
        );
        assert_eq!(
            pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "j"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    }
}
