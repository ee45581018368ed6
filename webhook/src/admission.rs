//! AdmissionReview in, AdmissionReview out: pure, so the HTTP layer only moves bytes. Every
//! request gets a review back that says what happened, so the API server has a reason.
//!
//! One reader: serde_json reads the review into borrowed views of what the decision needs
//! ([`crate::review_view`]). A body that does not read so is explained through kube's types
//! ([`explain`]): why it is not a v1 AdmissionReview, or why its object is not a batch/v1 Job.
//! One writer: the answer is a [`Review`], serialized by serde.

use bytes::Bytes;
use kube::core::DynamicObject;
use kube::core::admission::{
    AdmissionRequest, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use serde::Serialize;

use crate::config::InjectConfig;
use crate::inject::{self, Decision, OptIn};
use crate::job_view::JobView;
use crate::patch;
use crate::review_view::{self, ReviewView};

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
    /// The response review as JSON, or why it could not be written.
    json: Result<Bytes, String>,
}

impl Reviewed {
    /// The response review as JSON; the patch in it base64-encoded, as Go encodes the API
    /// server's `[]byte` field. `Err` says why it could not be written (nothing a request can
    /// cause: every value in it serializes); the server then answers 500 with that reason.
    pub fn json(&self) -> Result<&Bytes, &str> {
        self.json.as_ref().map_err(String::as_str)
    }

    /// [`Reviewed::json`], taking the answer.
    pub fn into_json(self) -> Result<Bytes, String> {
        self.json
    }
}

/// Answers one AdmissionReview given as raw bytes, for Jobs that opt in by annotation.
pub fn review(body: &[u8], config: &InjectConfig) -> Reviewed {
    review_as(body, config, OptIn::Annotation)
}

/// Answers one AdmissionReview given as raw bytes under `opt_in`: the webhook entry that
/// called (its path) says whether the Job's namespace opted it in.
pub fn review_as(body: &[u8], config: &InjectConfig, opt_in: OptIn) -> Reviewed {
    match review_view::read(body) {
        Ok(ReviewView {
            api_version,
            kind,
            request: Some(request),
        }) if *kind == *META_KIND && *api_version == *META_API_VERSION_V1 => {
            let about = Request {
                uid: &request.uid,
                group: &request.kind.group,
                version: &request.kind.version,
                kind: &request.kind.kind,
                operation: &request.operation,
                sub_resource: request.sub_resource.is_some(),
                namespace: request.namespace.as_deref(),
            };
            answer(&about, request.object.map(Ok), config, opt_in)
        }
        _ => explain(body, config, opt_in),
    }
}

/// A body the views do not read, read with kube's types to say what is wrong with it: not
/// JSON, not a v1 AdmissionReview, no request, or (where kube's types read it) an object that
/// is not a batch/v1 Job, named by the path where reading it stopped.
fn explain(body: &[u8], config: &InjectConfig, opt_in: OptIn) -> Reviewed {
    let parsed: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return invalid(uid_of(body), format!("malformed AdmissionReview: {e}")),
    };
    if parsed.types.kind != META_KIND || parsed.types.api_version != META_API_VERSION_V1 {
        return invalid(
            uid_of(body),
            format!(
                "expected kind {META_KIND}, apiVersion {META_API_VERSION_V1}; got kind {:?}, apiVersion {:?}",
                parsed.types.kind, parsed.types.api_version
            ),
        );
    }
    let Ok(request) = TryInto::<AdmissionRequest<DynamicObject>>::try_into(parsed) else {
        return invalid(String::new(), "AdmissionReview has no request".into());
    };
    let mut json = serde_json::Deserializer::from_slice(body);
    let why = serde_path_to_error::deserialize::<_, ReviewView>(&mut json)
        .err()
        .map_or_else(String::new, |e| e.to_string());
    let about = Request {
        uid: &request.uid,
        group: &request.kind.group,
        version: &request.kind.version,
        kind: &request.kind.kind,
        operation: &request.operation,
        sub_resource: request.sub_resource.is_some(),
        namespace: request.namespace.as_deref(),
    };
    let why = format!("the object is not a valid batch/v1 Job: {why}");
    answer(&about, Some(Err(why)), config, opt_in)
}

/// What the decision reads of a request, however it was read.
struct Request<'a> {
    uid: &'a str,
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    operation: &'a Operation,
    sub_resource: bool,
    namespace: Option<&'a str>,
}

/// The decision on one request; `object` is the Job as read, or why it is not one.
fn answer(
    req: &Request<'_>,
    object: Option<Result<JobView<'_>, String>>,
    config: &InjectConfig,
    opt_in: OptIn,
) -> Reviewed {
    let uid = req.uid;
    let is_job = (req.group, req.version, req.kind) == ("batch", "v1", "Job");
    if !is_job || *req.operation != Operation::Create || req.sub_resource {
        let detail = format!(
            "{:?} of {}/{} {} is not a batch/v1 Job CREATE",
            req.operation, req.group, req.version, req.kind
        );
        return allowed(uid, detail);
    }
    let job = match object {
        None => return denied(uid, "the CREATE request carries no object".into()),
        Some(Err(why)) => return denied(uid, why),
        Some(Ok(job)) => job,
    };
    match inject::decide(&job, req.namespace, config, opt_in) {
        Ok(Decision::Skip(reason)) => allowed(uid, reason.to_string()),
        Ok(Decision::Inject(plan)) => {
            let ops = plan.operations();
            let json = patch::to_json(&ops)
                .map_err(|e| e.to_string())
                .and_then(|patch| {
                    write(Response::Patched {
                        allowed: true,
                        patch: Base64(&patch),
                        patch_type: "JSONPatch",
                        status: Status::default(),
                        uid,
                        warnings: &plan.warnings,
                    })
                });
            Reviewed {
                outcome: Outcome::Injected,
                uid: uid.to_owned(),
                detail: format!("{} patch operations", ops.len()),
                json,
            }
        }
        Err(e) => denied(uid, e.to_string()),
    }
}

/// `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":...}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Review<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: Response<'a>,
}

/// The response, in the bytes kube's types have always written: their field order, but
/// sorted keys for a review with a patch (which went through a `serde_json::Value`).
#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum Response<'a> {
    Patched {
        allowed: bool,
        patch: Base64<'a>,
        patch_type: &'a str,
        status: Status<'a>,
        uid: &'a str,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        warnings: &'a [String],
    },
    Plain {
        uid: &'a str,
        allowed: bool,
        status: Status<'a>,
    },
}

/// kube's `Status`, as it serializes: empty fields left out.
#[derive(Serialize, Default)]
struct Status<'a> {
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

/// Bytes as the API server reads a `[]byte`: standard base64 with padding (SIMD when the CPU
/// has it), as k8s-openapi's `ByteString` writes them.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        use serde::ser::Error as _;
        static ENGINE: std::sync::LazyLock<base64::engine::Simd> = std::sync::LazyLock::new(|| {
            base64::engine::Simd::standard(base64::engine::general_purpose::PAD)
        });
        // Nothing in base64 needs escaping in JSON: the quoted string goes out as a raw value,
        // not through serde_json's escaper byte by byte (a third of a review's CPU otherwise).
        let mut quoted = String::with_capacity(self.0.len().div_ceil(3) * 4 + 2);
        quoted.push('"');
        ENGINE.encode_string(self.0, &mut quoted);
        quoted.push('"');
        serde_json::value::RawValue::from_string(quoted)
            .map_err(S::Error::custom)?
            .serialize(s)
    }
}

/// The one place an answer is written.
fn write(response: Response<'_>) -> Result<Bytes, String> {
    let review = Review {
        api_version: META_API_VERSION_V1,
        kind: META_KIND,
        response,
    };
    let mut out = Vec::with_capacity(4096);
    serde_json::to_writer(&mut out, &review)
        .map(|()| Bytes::from(out))
        .map_err(|e| format!("cannot write the AdmissionReview answer: {e}"))
}

fn allowed(uid: &str, detail: String) -> Reviewed {
    Reviewed {
        outcome: Outcome::Skipped,
        json: write(Response::Plain {
            uid,
            allowed: true,
            status: Status::default(),
        }),
        uid: uid.to_owned(),
        detail,
    }
}

fn denied(uid: &str, message: String) -> Reviewed {
    // 400 rather than the API server's default 403: the request is wrong, not forbidden.
    let status = Status {
        status: Some("Failure"),
        code: 400,
        message: &message,
        reason: "BadRequest",
    };
    Reviewed {
        outcome: Outcome::Denied,
        json: write(Response::Plain {
            uid,
            allowed: false,
            status,
        }),
        uid: uid.to_owned(),
        detail: message,
    }
}

fn invalid(uid: String, message: String) -> Reviewed {
    let status = Status {
        status: Some("Failure"),
        code: 0,
        message: &message,
        reason: "InvalidRequest",
    };
    Reviewed {
        outcome: Outcome::Invalid,
        json: write(Response::Plain {
            uid: &uid,
            allowed: false,
            status,
        }),
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
