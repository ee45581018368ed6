//! API errors and the real `Status` bodies the kube-apiserver sends for them.

use serde_json::{Value, json};

use crate::store::Resource;

/// Every way a request can fail, with the code, reason and message the real server uses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ApiError {
    /// 400: malformed body, selector or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 404 for an object.
    #[error("{} \"{name}\" not found", resource.qualified())]
    NotFound { resource: Resource, name: String },
    /// 404 for a path the stand-in does not serve.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 405.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 409 for a stale resourceVersion.
    #[error(
        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
        resource.qualified()
    )]
    Conflict { resource: Resource, name: String },
    /// 409 for a create of an existing name.
    #[error("{} \"{name}\" already exists", resource.qualified())]
    AlreadyExists { resource: Resource, name: String },
    /// 413.
    #[error("Request entity too large: limit is {limit}")]
    TooLarge { limit: usize },
    /// 415.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/strategic-merge-patch+json (the stand-in applies only what the reporter sends; got {0:?})"
    )]
    UnsupportedMediaType(String),
    /// 422: the resulting object is not valid.
    #[error("{} \"{name}\" is invalid: {field}: {detail}", resource.kind_qualified())]
    Invalid {
        resource: Resource,
        name: String,
        field: String,
        detail: String,
    },
    /// An injected [`crate::FaultKind::Status`] answer.
    #[error("{}", injected_message(*code))]
    Injected { code: u16 },
    /// Not an answer: returned to hyper so it closes the socket without responding
    /// ([`crate::FaultKind::DropConnection`]).
    #[error("connection dropped by an injected fault")]
    ConnectionDropped,
}

fn injected_message(code: u16) -> String {
    match code {
        429 => "Too many requests, please try again later.".to_owned(),
        503 => "the server is currently unable to handle the request (injected fault)".to_owned(),
        _ => format!("Internal error occurred: injected fault (HTTP {code})"),
    }
}

/// The `reason` the real server uses for a bare HTTP code.
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

impl ApiError {
    /// HTTP status code.
    pub(crate) fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound { .. } | ApiError::NoRoute => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict { .. } | ApiError::AlreadyExists { .. } => 409,
            ApiError::TooLarge { .. } => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::Injected { code } => *code,
            // Never sent; logged as "no response".
            ApiError::ConnectionDropped => 0,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            other => reason_for_code(other.code()),
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            ApiError::NotFound { resource, name }
            | ApiError::Conflict { resource, name }
            | ApiError::AlreadyExists { resource, name } => Some(json!({
                "name": name, "group": resource.group(), "kind": resource.plural(),
            })),
            ApiError::Invalid {
                resource,
                name,
                field,
                detail,
            } => Some(json!({
                "name": name, "group": resource.group(), "kind": resource.kind(),
                "causes": [{ "reason": "FieldValueInvalid", "message": detail, "field": field }],
            })),
            _ => None,
        }
    }

    /// The `Status` object sent as the response body.
    pub(crate) fn status_body(&self) -> Value {
        status_body(
            self.code(),
            self.reason(),
            &self.to_string(),
            self.details(),
        )
    }
}

/// A `Failure` `Status` object, as in every kube-apiserver error response and watch ERROR event.
pub(crate) fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_has_the_real_message_and_details() {
        let err = ApiError::Conflict {
            resource: Resource::Jobs,
            name: "j".into(),
        };
        let body = err.status_body();
        assert_eq!(body["code"], 409);
        assert_eq!(body["reason"], "Conflict");
        assert_eq!(
            body["message"],
            "Operation cannot be fulfilled on jobs.batch \"j\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(
            body["details"],
            json!({"name": "j", "group": "batch", "kind": "jobs"})
        );
    }

    #[test]
    fn not_found_of_a_core_resource_has_no_group_suffix() {
        let err = ApiError::NotFound {
            resource: Resource::Pods,
            name: "p".into(),
        };
        assert_eq!(err.to_string(), "pods \"p\" not found");
        assert_eq!(err.status_body()["reason"], "NotFound");
    }

    #[test]
    fn injected_codes_get_real_reasons() {
        assert_eq!(
            ApiError::Injected { code: 429 }.status_body()["reason"],
            "TooManyRequests"
        );
        assert_eq!(
            ApiError::Injected { code: 500 }.status_body()["reason"],
            "InternalError"
        );
        assert_eq!(
            ApiError::Injected { code: 503 }.status_body()["reason"],
            "ServiceUnavailable"
        );
    }
}
