//! The part of an AdmissionReview the decision reads, borrowed from the body by serde_json: its
//! type, and of the request the uid, kind, subresource, namespace, operation and the Job
//! ([`crate::job_view`]). `oldObject`, `userInfo`, `options` and the rest are skipped unread.

use kube::core::admission::Operation;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::job_view::{JobView, Text};

/// What the decision reads of an AdmissionReview.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView<'a> {
    /// `apiVersion`.
    #[serde(borrow)]
    pub api_version: Text<'a>,
    /// `kind`.
    #[serde(borrow)]
    pub kind: Text<'a>,
    /// `request`.
    #[serde(borrow, default)]
    pub request: Option<RequestView<'a>>,
}

/// What the decision reads of an AdmissionRequest. The fields kube's type requires are
/// required here too.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView<'a> {
    /// `uid`.
    #[serde(borrow)]
    pub uid: Text<'a>,
    /// `kind` (of the object).
    #[serde(borrow)]
    pub kind: KindView<'a>,
    /// `resource`: required, not read.
    pub resource: IgnoredAny,
    /// `subResource`.
    #[serde(borrow, default)]
    pub sub_resource: Option<Text<'a>>,
    /// `namespace`.
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
    /// `operation`.
    pub operation: Operation,
    /// `userInfo`: required, not read.
    pub user_info: IgnoredAny,
    /// `object`.
    #[serde(borrow, default)]
    pub object: Option<JobView<'a>>,
}

/// A group, version and kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KindView<'a> {
    /// `group`.
    #[serde(borrow)]
    pub group: Text<'a>,
    /// `version`.
    #[serde(borrow)]
    pub version: Text<'a>,
    /// `kind`.
    #[serde(borrow)]
    pub kind: Text<'a>,
}

/// The views of a review body, or why serde_json cannot read them.
pub fn read(body: &[u8]) -> serde_json::Result<ReviewView<'_>> {
    // UTF-8 checked once over the whole body (word at a time) rather than string by string, as
    // `from_slice` would: the same answer for fewer instructions. A body that is not UTF-8 goes
    // to `from_slice`, whose error says where.
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}
