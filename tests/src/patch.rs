//! PATCH bodies: picking the patch type from the Content-Type and applying it.

use serde_json::Value;

use crate::status::ApiError;
use crate::strategic_merge;

/// The patch types the stand-in accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/json-patch+json`, RFC 6902.
    Json,
    /// `application/merge-patch+json`, RFC 7386.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

impl PatchType {
    /// The patch type named by a Content-Type header (parameters such as charset ignored).
    pub(crate) fn from_content_type(content_type: Option<&str>) -> Result<PatchType, ApiError> {
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            _ => Err(ApiError::UnsupportedMediaType(media.to_owned())),
        }
    }
}

/// Applies a patch body to `original`.
///
/// A failed JSON-patch `test` (also one on `/metadata/resourceVersion`) is 422 `Invalid`,
/// as the real server answers; a body that is not a patch document is 400 `BadRequest`.
pub(crate) fn apply(kind: PatchType, original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the patch body is not valid JSON: {e}")))?;
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the JSON patch is not a list of RFC 6902 operations (op, path, value/from): {e}"
                ))
            })?;
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| ApiError::PatchFailed(e.to_string()))?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a merge patch for an object must be a JSON object".to_owned(),
                ));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Strategic => {
            strategic_merge::apply(original, &patch).map_err(ApiError::BadRequest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_are_recognised_with_parameters() {
        let t = |ct| PatchType::from_content_type(Some(ct));
        assert_eq!(t("application/json-patch+json"), Ok(PatchType::Json));
        assert_eq!(
            t("application/merge-patch+json; charset=utf-8"),
            Ok(PatchType::Merge)
        );
        assert_eq!(
            t("application/strategic-merge-patch+json"),
            Ok(PatchType::Strategic)
        );
        assert!(matches!(
            t("application/apply-patch+yaml"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            PatchType::from_content_type(None),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let orig = json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}});
        let body = br#"{"status": {"conditions": [{"type": "C"}]}}"#;
        let out = apply(PatchType::Merge, &orig, body).unwrap();
        assert_eq!(out["status"]["conditions"], json!([{"type": "C"}]));
    }

    #[test]
    fn json_patch_test_failure_is_invalid() {
        let orig = json!({"metadata": {"resourceVersion": "5"}});
        let body = br#"[{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}]"#;
        assert!(matches!(
            apply(PatchType::Json, &orig, body),
            Err(ApiError::PatchFailed(_))
        ));
        let body = br#"[{"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
                        {"op": "add", "path": "/x", "value": 1}]"#;
        assert_eq!(apply(PatchType::Json, &orig, body).unwrap()["x"], 1);
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let orig = json!({});
        assert!(matches!(
            apply(PatchType::Merge, &orig, b"{"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            apply(PatchType::Json, &orig, b"{}"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            apply(PatchType::Merge, &orig, b"[]"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
