//! AdmissionReview in, AdmissionReview out: pure, so the HTTP layer only moves bytes.
//! The answer is always a review (never an HTTP error) so the apiserver gets a reason.

use std::borrow::Cow;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status, TypeMeta};
use serde::Deserialize;

use crate::config::InjectConfig;
use crate::inject::{Injection, OptIn, inject_as};

/// How a review was answered; the metrics count these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Allowed with a non-empty patch.
    Injected,
    /// Allowed unchanged (not a Job CREATE, not opted in, already injected, excluded).
    Skipped,
    /// Refused: a bad annotation or a Job the injector cannot handle.
    Denied,
    /// The body was not a usable AdmissionReview.
    Invalid,
}

impl Outcome {
    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Skipped => "skipped",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

/// The answer to one review.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// What happened.
    pub outcome: Outcome,
    /// The response review to send back.
    pub review: AdmissionReview<DynamicObject>,
    /// Request uid (empty when unknown), for logs.
    pub uid: String,
    /// Why: skip reason, denial message or invalid cause, for logs.
    pub detail: String,
}

impl Reviewed {
    /// The response serialized as JSON. The patch is written base64-encoded, the way Go
    /// encodes the apiserver's `[]byte` field; kube's type would write a JSON array of
    /// numbers, which the apiserver also reads but which is 2.5 times longer and slower
    /// to write.
    pub fn to_json(&self) -> Vec<u8> {
        let Some(patch) = self.review.response.as_ref().and_then(|r| r.patch.as_ref()) else {
            // A review built from kube's own types always serializes.
            return serde_json::to_vec(&self.review).unwrap_or_default();
        };
        let mut review = self.review.clone();
        if let Some(response) = review.response.as_mut() {
            response.patch = None;
        }
        let Ok(mut value) = serde_json::to_value(&review) else {
            return Vec::new();
        };
        if let Ok(encoded) = serde_json::to_value(ByteString(patch.clone())) {
            value["response"]["patch"] = encoded;
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// Answers one AdmissionReview given as raw bytes, for Jobs that opt in by annotation.
pub fn review(body: &[u8], config: &InjectConfig) -> Reviewed {
    review_as(body, config, OptIn::Annotation)
}

/// Answers one AdmissionReview given as raw bytes under `opt_in`: the webhook entry that
/// called (its path) says whether the Job's namespace opted it in.
pub fn review_as(body: &[u8], config: &InjectConfig, opt_in: OptIn) -> Reviewed {
    // Fast path: the webhook is registered for Jobs, so read the object as a typed Job in
    // one pass. Anything else (another kind, a Job k8s-openapi cannot read, a malformed
    // body) takes the general path below, which decides and explains.
    if let Ok(parsed) = serde_json::from_slice::<AdmissionReview<Job>>(body)
        && is_v1_review(&parsed.types)
        && let Ok(request) = TryInto::<AdmissionRequest<Job>>::try_into(parsed)
    {
        return decide(&request, |job| Ok(Cow::Borrowed(job)), config, opt_in);
    }
    let parsed: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return invalid(uid_of(body), format!("malformed AdmissionReview: {e}")),
    };
    if !is_v1_review(&parsed.types) {
        return invalid(
            uid_of(body),
            format!(
                "expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got kind {:?}, apiVersion {:?}",
                parsed.types.kind, parsed.types.api_version
            ),
        );
    }
    let request: AdmissionRequest<DynamicObject> = match parsed.try_into() {
        Ok(r) => r,
        Err(_) => return invalid(String::new(), "AdmissionReview has no request".into()),
    };
    decide(&request, dynamic_to_job, config, opt_in)
}

fn is_v1_review(types: &TypeMeta) -> bool {
    types.kind == "AdmissionReview" && types.api_version == "admission.k8s.io/v1"
}

/// Answers a parsed admission request (annotation opt-in).
pub fn review_request(req: &AdmissionRequest<DynamicObject>, config: &InjectConfig) -> Reviewed {
    decide(req, dynamic_to_job, config, OptIn::Annotation)
}

/// Reads a Job from the general form; the spec is read straight from the parsed tree.
fn dynamic_to_job(object: &DynamicObject) -> Result<Cow<'_, Job>, String> {
    let spec = object
        .data
        .get("spec")
        .map(JobSpec::deserialize)
        .transpose()
        .map_err(|e| format!("the object is not a valid batch/v1 Job: spec: {e}"))?;
    Ok(Cow::Owned(Job {
        metadata: object.metadata.clone(),
        spec,
        status: None,
    }))
}

/// The decision, whichever form the object was read in.
fn decide<T: kube::Resource>(
    req: &AdmissionRequest<T>,
    to_job: impl FnOnce(&T) -> Result<Cow<'_, Job>, String>,
    config: &InjectConfig,
    opt_in: OptIn,
) -> Reviewed {
    let response = AdmissionResponse::from(req);
    let uid = req.uid.clone();
    let is_job = req.kind.group == "batch" && req.kind.version == "v1" && req.kind.kind == "Job";
    let skip = |detail: String| Reviewed {
        outcome: Outcome::Skipped,
        review: response.clone().into_review(),
        uid: uid.clone(),
        detail,
    };
    if !is_job || req.operation != Operation::Create || req.sub_resource.is_some() {
        return skip(format!(
            "{:?} of {}/{} {} is not a batch/v1 Job CREATE",
            req.operation, req.kind.group, req.kind.version, req.kind.kind
        ));
    }
    let Some(object) = &req.object else {
        return deny(response, uid, "the CREATE request carries no object".into());
    };
    let job = match to_job(object) {
        Ok(job) => job,
        Err(message) => return deny(response, uid, message),
    };
    match inject_as(&job, req.namespace.as_deref(), config, opt_in) {
        Ok(Injection::Skipped(reason)) => skip(reason.to_string()),
        Ok(Injection::Injected { patch, warnings }) => {
            let ops = patch.0.len();
            match response.clone().with_patch(patch) {
                Ok(mut with_patch) => {
                    if !warnings.is_empty() {
                        with_patch.warnings = Some(warnings);
                    }
                    Reviewed {
                        outcome: Outcome::Injected,
                        review: with_patch.into_review(),
                        uid,
                        detail: format!("{ops} patch operations"),
                    }
                }
                Err(e) => deny(
                    response,
                    uid,
                    format!("internal error serializing the patch: {e}"),
                ),
            }
        }
        Err(e) => deny(response, uid, e.to_string()),
    }
}

fn deny(response: AdmissionResponse, uid: String, message: String) -> Reviewed {
    let mut denied = response.deny(&message);
    // 400 rather than the apiserver's default 403: the request is wrong, not forbidden.
    denied.result = Status::failure(&message, "BadRequest").with_code(400);
    Reviewed {
        outcome: Outcome::Denied,
        review: denied.into_review(),
        uid,
        detail: message,
    }
}

fn invalid(uid: String, message: String) -> Reviewed {
    let mut response = AdmissionResponse::invalid(&message);
    response.uid.clone_from(&uid);
    Reviewed {
        outcome: Outcome::Invalid,
        review: response.into_review(),
        uid,
        detail: message,
    }
}

/// Best effort: echo the uid even when the rest of the review is unusable.
fn uid_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/request/uid")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
