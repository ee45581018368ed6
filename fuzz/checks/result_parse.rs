//! What must hold for any bytes an adapter leaves in its result file: checked by the
//! `result_parse` fuzz target and by `reporter/tests/prop_result.rs` (which includes this file),
//! so the two cannot drift apart.
#![allow(dead_code)]

use contract::result::{self, AdapterResult, MAX_MESSAGE_BYTES, MAX_REASON_BYTES, ResultStatus};
use status_reporter::outcome::Outcome;

/// Largest condition message the apiserver accepts (`metav1.Condition` validation).
pub const APISERVER_MAX_CONDITION_MESSAGE: usize = 32 * 1024;

/// The contract every accepted result obeys: reason 1..=128 bytes, message 1..=1024 bytes,
/// both trimmed at the start (a cut may leave trailing whitespace), status as the condition's.
pub fn contract_holds(r: &AdapterResult) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {r:?}"));
    if r.reason.is_empty() || r.reason.len() > MAX_REASON_BYTES {
        return fail("reason length");
    }
    if r.message.is_empty() || r.message.len() > MAX_MESSAGE_BYTES {
        return fail("message length");
    }
    if r.reason.trim_start() != r.reason || r.message.trim_start() != r.message {
        return fail("not trimmed");
    }
    if Outcome::from_result(r).success != (r.status == ResultStatus::Success) {
        return fail("condition status differs from the result's");
    }
    Ok(())
}

/// Arbitrary bytes: an accepted result obeys the contract; a refusal becomes a condition
/// message the apiserver accepts.
pub fn check_bytes(data: &[u8]) -> Result<(), String> {
    match result::parse(data) {
        Ok(r) => contract_holds(&r),
        Err(e) => {
            let o = Outcome::invalid(&e);
            if o.success
                || o.message.is_empty()
                || o.message.len() > APISERVER_MAX_CONDITION_MESSAGE
            {
                return Err(format!("unusable refusal: {o:?}"));
            }
            Ok(())
        }
    }
}
