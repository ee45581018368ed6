//! The part of an AdmissionReview the decision reads, borrowed from the body: its type, and of
//! the request the uid, kind, subresource, namespace, operation and the Job
//! ([`crate::job_view`]). `oldObject`, `userInfo`, `options` and the rest are skipped unread.
//!
//! [`read`] tries the one-pass [`crate::json_reader`] first and serde_json (through the
//! `Deserialize` impls here) on whatever that reader leaves to it; both read the same views.

use kube::core::admission::Operation;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::job_view::{JobView, Text};
use crate::json_reader;

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

/// The views of a review body: by the one-pass reader, or (for what it leaves) by serde_json.
/// `None` when serde_json cannot read them either.
pub fn read(text: &str) -> Option<ReviewView<'_>> {
    json_reader::review(text).or_else(|| serde_json::from_str(text).ok())
}
