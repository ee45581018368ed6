//! `status-reporter check-result FILE`: validates a result file for adapter authors' CI.

use std::path::Path;

use crate::outcome::Outcome;
use crate::result;

/// Checks `path`; returns the exit code (0 valid, 1 invalid), the text for stdout (valid:
/// the normalised result as JSON) and the text for stderr (invalid: the precise error, worded
/// as the condition message the reporter would write).
pub fn check(path: &Path) -> (i32, String, String) {
    match result::read_file(path) {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).unwrap_or_default();
            (0, json, String::new())
        }
        Err(e) => (1, String::new(), Outcome::invalid(&e).message),
    }
}
