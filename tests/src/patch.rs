//! PATCH bodies. The stand-in takes only what the reporter sends: a strategic merge patch
//! (its record on `pods/status`). JSON and merge patches are the real API server's business
//! and are tested there (`real_*` suites), not re-implemented here.

use serde_json::Value;

use crate::status::ApiError;
use crate::strategic_merge;

/// The one patch media type the stand-in applies.
const STRATEGIC: &str = "application/strategic-merge-patch+json";

/// Refuses a Content-Type other than a strategic merge patch (parameters such as charset
/// ignored) with 415, as the real server refuses a type it does not know.
pub(crate) fn check_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    match media.eq_ignore_ascii_case(STRATEGIC) {
        true => Ok(()),
        false => Err(ApiError::UnsupportedMediaType(media.to_owned())),
    }
}

/// Applies a strategic merge patch body to `original`; a body that is not a JSON object is
/// 400 `BadRequest`.
pub(crate) fn apply(original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the patch body is not valid JSON: {e}")))?;
    strategic_merge::apply(original, &patch).map_err(ApiError::BadRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_strategic_merge_patches_are_taken() {
        assert_eq!(check_content_type(Some(STRATEGIC)), Ok(()));
        assert_eq!(
            check_content_type(Some(
                "application/strategic-merge-patch+json; charset=utf-8"
            )),
            Ok(())
        );
        for other in [
            "application/merge-patch+json",
            "application/json-patch+json",
        ] {
            assert!(matches!(
                check_content_type(Some(other)),
                Err(ApiError::UnsupportedMediaType(m)) if m == other
            ));
        }
        assert!(matches!(
            check_content_type(None),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let orig = json!({});
        assert!(matches!(apply(&orig, b"{"), Err(ApiError::BadRequest(_))));
    }
}
