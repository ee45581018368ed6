//! AdmissionReview in, AdmissionReview out: pure, so the HTTP layer only moves bytes.
//! The answer is always a review (never an HTTP error) so the apiserver gets a reason.
//!
//! Two ways through, one answer: [`review_as`] reads a review in one borrowed pass (the
//! [`crate::json_reader`], or serde_json into the same views for what that reader leaves) and
//! writes the answer straight into one buffer (every review the apiserver sends);
//! [`review_typed`] reads it with kube's types and explains whatever is wrong with it. Both
//! decide with [`inject::decide`], and `tests/review_paths.rs` holds them to the same bytes.

use std::borrow::Cow;

use bytes::Bytes;
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use kube::core::{DynamicObject, Status, TypeMeta};
use serde::{Deserialize, Serialize};

use crate::config::InjectConfig;
use crate::inject::{self, Decision, Injection, OptIn, Plan, inject_as};
use crate::review_view::{self, RequestView};
use crate::{patch, patch_cache};

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
    /// Every outcome, in declaration order: `outcome as usize` is its place here (the
    /// metrics keep one counter per outcome, indexed so).
    pub const ALL: [Outcome; 4] = [
        Outcome::Injected,
        Outcome::Skipped,
        Outcome::Denied,
        Outcome::Invalid,
    ];

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
    /// Request uid (empty when unknown), for logs.
    pub uid: String,
    /// Why: skip reason, denial message or invalid cause, for logs.
    pub detail: String,
    /// The response review, serialized.
    json: Bytes,
}

impl Reviewed {
    /// The response review as JSON. The patch is written base64-encoded, the way Go
    /// encodes the apiserver's `[]byte` field; kube's type would write a JSON array of
    /// numbers, which the apiserver also reads but which is 2.5 times longer and slower
    /// to write.
    pub fn to_json(&self) -> Bytes {
        self.json.clone()
    }

    /// [`Reviewed::to_json`], taking the answer: the server's way, as cloning the buffer
    /// allocates its shared count.
    pub fn into_json(self) -> Bytes {
        self.json
    }
}

/// Answers one AdmissionReview given as raw bytes, for Jobs that opt in by annotation.
pub fn review(body: &[u8], config: &InjectConfig) -> Reviewed {
    review_as(body, config, OptIn::Annotation)
}

/// Answers one AdmissionReview given as raw bytes under `opt_in`: the webhook entry that
/// called (its path) says whether the Job's namespace opted it in.
///
/// A v1 review is read in one pass into borrowed views of just what the decision needs
/// ([`crate::review_view::read`]), and the response, patch included, is written straight into
/// one buffer. Anything that does not read that way (another apiVersion, a malformed body, a
/// field of the wrong type) takes [`review_typed`], which decides the same and explains what
/// was wrong.
pub fn review_as(body: &[u8], config: &InjectConfig, opt_in: OptIn) -> Reviewed {
    // Validating UTF-8 once, up front, spares the parser validating every string it reads.
    if let Ok(text) = simdutf8::basic::from_utf8(body)
        && let Some(review) = review_view::read(text)
        && *review.kind == *META_KIND
        && *review.api_version == *META_API_VERSION_V1
        && let Some(request) = review.request
    {
        return answer(&request, config, opt_in);
    }
    review_typed(body, config, opt_in)
}

/// The decision on a request read as views, answered as bytes.
fn answer(req: &RequestView<'_>, config: &InjectConfig, opt_in: OptIn) -> Reviewed {
    let uid = &*req.uid;
    let kind = &req.kind;
    let is_job = *kind.group == *"batch" && *kind.version == *"v1" && *kind.kind == *"Job";
    if !is_job || req.operation != Operation::Create || req.sub_resource.is_some() {
        return allowed(
            uid,
            format!(
                "{:?} of {}/{} {} is not a batch/v1 Job CREATE",
                req.operation, kind.group, kind.version, kind.kind
            ),
        );
    }
    let Some(job) = &req.object else {
        return denied(uid, "the CREATE request carries no object".into());
    };
    match inject::decide(job, req.namespace.as_deref(), config, opt_in) {
        Ok(Decision::Skip(reason)) => allowed(uid, reason.to_string()),
        Ok(Decision::Inject(plan)) => patched(uid, &plan),
        Err(e) => denied(uid, e.to_string()),
    }
}

/// `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":...}`, the
/// response's keys in kube's field order (as kube's types serialize an answer without patch).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: Answer<'a>,
}

#[derive(Serialize)]
struct Answer<'a> {
    uid: &'a str,
    allowed: bool,
    status: StatusView<'a>,
}

/// kube's `Status`, as it serializes: empty fields left out.
#[derive(Serialize, Default)]
struct StatusView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

fn envelope(uid: &str, allowed: bool, status: StatusView<'_>) -> Bytes {
    let envelope = Envelope {
        api_version: META_API_VERSION_V1,
        kind: META_KIND,
        response: Answer {
            uid,
            allowed,
            status,
        },
    };
    // Plain structs of strings, numbers and booleans always serialize.
    serde_json::to_vec(&envelope).unwrap_or_default().into()
}

fn allowed(uid: &str, detail: String) -> Reviewed {
    Reviewed {
        outcome: Outcome::Skipped,
        json: envelope(uid, true, StatusView::default()),
        uid: uid.to_owned(),
        detail,
    }
}

fn denied(uid: &str, message: String) -> Reviewed {
    // 400 rather than the apiserver's default 403: the request is wrong, not forbidden.
    let status = StatusView {
        status: Some("Failure"),
        code: 400,
        message: &message,
        reason: "BadRequest",
    };
    Reviewed {
        outcome: Outcome::Denied,
        json: envelope(uid, false, status),
        uid: uid.to_owned(),
        detail: message,
    }
}

/// The allowed answer with the patch, written by hand into one buffer, the patch copied in
/// already encoded ([`patch_cache`]). Keys in sorted order: kube's review with a patch has
/// always been written through a `serde_json::Value`, a sorted map.
fn patched(uid: &str, plan: &Plan<'_>) -> Reviewed {
    patch_cache::with_encoded(&plan.shape, |encoded, operations| Reviewed {
        outcome: Outcome::Injected,
        json: answer_with_patch(uid, encoded, &plan.warnings).into(),
        uid: uid.to_owned(),
        detail: [itoa::Buffer::new().format(operations), " patch operations"].concat(),
    })
}

/// The allowed review carrying the patch (`encoded`: base64) and the warnings.
fn answer_with_patch(uid: &str, encoded: &[u8], warnings: &[String]) -> Vec<u8> {
    const HEAD: &[u8] =
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"allowed":true,"patch":""#;
    const MIDDLE: &[u8] = br#"","patchType":"JSONPatch","status":{},"uid":""#;
    const WARNINGS: &[u8] = br#","warnings":["#;
    let uid_json = patch::escaped(uid);
    let warnings: Vec<_> = warnings.iter().map(|w| patch::escaped(w)).collect();
    // The exact length, so the buffer becomes the response's `Bytes` without another allocation.
    let warnings_len = match warnings.len() {
        0 => 0,
        n => WARNINGS.len() + warnings.iter().map(|w| w.len() + 2).sum::<usize>() + (n - 1),
    };
    let mut out = Vec::with_capacity(
        HEAD.len() + encoded.len() + MIDDLE.len() + uid_json.len() + 1 + warnings_len + 2,
    );
    out.extend_from_slice(HEAD);
    out.extend_from_slice(encoded);
    out.extend_from_slice(MIDDLE);
    out.extend_from_slice(uid_json.as_bytes());
    out.push(b'"');
    if !warnings.is_empty() {
        out.extend_from_slice(WARNINGS);
        for (i, warning) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(warning.as_bytes());
            out.push(b'"');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    out
}

/// Answers one AdmissionReview through kube's types, the object read as a typed Job (or, when
/// it is not one, as a `DynamicObject`). [`review_as`] comes here for whatever it cannot read
/// as views; public so the tests can hold both paths to the same bytes.
pub fn review_typed(body: &[u8], config: &InjectConfig, opt_in: OptIn) -> Reviewed {
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
        json: to_json(&response.clone().into_review()),
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
                        json: to_json(&with_patch.into_review()),
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
        json: to_json(&denied.into_review()),
        uid,
        detail: message,
    }
}

fn invalid(uid: String, message: String) -> Reviewed {
    let mut response = AdmissionResponse::invalid(&message);
    response.uid.clone_from(&uid);
    Reviewed {
        outcome: Outcome::Invalid,
        json: to_json(&response.into_review()),
        uid,
        detail: message,
    }
}

/// A review built from kube's types, serialized; with a patch, base64 as Go writes `[]byte`.
fn to_json(review: &AdmissionReview<DynamicObject>) -> Bytes {
    let Some(patch) = review.response.as_ref().and_then(|r| r.patch.as_ref()) else {
        // A review built from kube's own types always serializes.
        return serde_json::to_vec(review).unwrap_or_default().into();
    };
    let mut review = review.clone();
    if let Some(response) = review.response.as_mut() {
        response.patch = None;
    }
    let Ok(mut value) = serde_json::to_value(&review) else {
        return Bytes::new();
    };
    if let Ok(encoded) = serde_json::to_value(ByteString(patch.clone())) {
        value["response"]["patch"] = encoded;
    }
    serde_json::to_vec(&value).unwrap_or_default().into()
}

/// Best effort: echo the uid even when the rest of the review is unusable.
fn uid_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/request/uid")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
