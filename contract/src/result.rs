//! The adapter contract: the JSON result file an adapter writes, parsed, validated and
//! normalised exactly as the original Go reporter does. Reading the file (non-blocking, capped)
//! is the reporter's; the limits and the reasons a file is invalid are here.

use serde::Serialize;
use serde_json::Value;

/// Largest result file accepted (1 MiB), as the original.
pub const MAX_RESULT_FILE_SIZE: u64 = 1024 * 1024;
/// Default reason when the adapter gives none.
pub const DEFAULT_REASON: &str = "NoReasonProvided";
/// Default message when the adapter gives none.
pub const DEFAULT_MESSAGE: &str = "No message provided";
/// Reason is cut to this many bytes (on a UTF-8 boundary).
pub const MAX_REASON_BYTES: usize = 128;
/// Message is cut to this many bytes (on a UTF-8 boundary).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The adapter's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// `"success"` → condition `True`.
    Success,
    /// `"failure"` → condition `False`.
    Failure,
}

/// A valid, normalised adapter result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterResult {
    /// `success` or `failure`.
    pub status: ResultStatus,
    /// Trimmed, defaulted, at most 128 bytes.
    pub reason: String,
    /// Trimmed, defaulted, at most 1024 bytes.
    pub message: String,
    /// Free-form adapter data; never copied into the Job status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// Why a result file is not a valid result. The texts follow the original so condition
/// messages (`Failed to parse adapter result: <this>`) stay byte-identical where they can.
/// This crate's one error type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResultError {
    /// The file does not exist (not an error for the contract, the adapter just has not written it).
    #[error("failed to read result file path={path}: no such file or directory")]
    NotFound {
        /// The path that was read.
        path: String,
    },
    /// Zero bytes.
    #[error("result file is empty: path={path}")]
    Empty {
        /// The path that was read.
        path: String,
    },
    /// Over [`MAX_RESULT_FILE_SIZE`].
    #[error("result file too large: path={path} size={size} max={max}")]
    TooLarge {
        /// The path that was read.
        path: String,
        /// Size seen (at least max+1).
        size: u64,
        /// The cap.
        max: u64,
    },
    /// A directory, FIFO, socket or device where a regular file is expected.
    #[error(
        "result file is not a regular file: path={path} type={kind} (expected a regular JSON file)"
    )]
    NotRegularFile {
        /// The path that was read.
        path: String,
        /// What was found instead.
        kind: &'static str,
    },
    /// Any other I/O failure (permissions, ...).
    #[error("failed to read result file path={path}: {cause}")]
    Io {
        /// The path that was read.
        path: String,
        /// The OS error.
        cause: String,
    },
    /// Not JSON, or not the expected shape.
    #[error("failed to parse JSON: {0}")]
    Json(String),
    /// `status` missing or not exactly `success` / `failure`.
    #[error("invalid result format: status: must be either 'success' or 'failure'")]
    InvalidStatus,
}

/// Parses and normalises result bytes (no I/O).
pub fn parse(data: &[u8]) -> Result<AdapterResult, ResultError> {
    let value: Value =
        serde_json::from_slice(data).map_err(|e| ResultError::Json(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(ResultError::Json(format!(
            "expected a JSON object like {{\"status\": \"success\"}}, got {}",
            kind_of(&value)
        )));
    };
    let status = match map.get("status") {
        Some(Value::String(s)) if s == "success" => ResultStatus::Success,
        Some(Value::String(s)) if s == "failure" => ResultStatus::Failure,
        // Go decodes a JSON null into "" for a string field, which then fails validation.
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(ResultError::InvalidStatus);
        }
        Some(other) => return Err(wrong_type("status", other)),
    };
    let reason = text_field(&map, "reason")?;
    let message = text_field(&map, "message")?;
    let details = map.remove("details").filter(|d| !d.is_null());
    Ok(AdapterResult {
        status,
        reason: normalise(&reason, DEFAULT_REASON, MAX_REASON_BYTES),
        message: normalise(&message, DEFAULT_MESSAGE, MAX_MESSAGE_BYTES),
        details,
    })
}

fn text_field(map: &serde_json::Map<String, Value>, key: &str) -> Result<String, ResultError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(key, other)),
    }
}

fn wrong_type(key: &str, value: &Value) -> ResultError {
    ResultError::Json(format!(
        "field {key}: expected a string, got {}",
        kind_of(value)
    ))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Trims, substitutes the default when empty, and truncates to `max` bytes on a char boundary.
fn normalise(raw: &str, default: &str, max: usize) -> String {
    let trimmed = raw.trim();
    let text = if trimmed.is_empty() { default } else { trimmed };
    truncate_utf8(text, max).to_string()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> AdapterResult {
        parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn contract_table() {
        struct Case {
            json: &'static str,
            want: Result<(ResultStatus, &'static str, &'static str), &'static str>,
        }
        let cases = [
            Case {
                json: r#"{"status":"success","reason":"AllGood","message":"done"}"#,
                want: Ok((ResultStatus::Success, "AllGood", "done")),
            },
            Case {
                json: r#"{"status":"failure","reason":"DNS","message":"no record"}"#,
                want: Ok((ResultStatus::Failure, "DNS", "no record")),
            },
            Case {
                json: r#"{"status":"success"}"#,
                want: Ok((ResultStatus::Success, DEFAULT_REASON, DEFAULT_MESSAGE)),
            },
            Case {
                json: r#"{"status":"success","reason":"  ","message":"\t\n"}"#,
                want: Ok((ResultStatus::Success, DEFAULT_REASON, DEFAULT_MESSAGE)),
            },
            Case {
                json: r#"{"status":"success","reason":" R ","message":" m "}"#,
                want: Ok((ResultStatus::Success, "R", "m")),
            },
            Case {
                json: r#"{"status":"success","reason":null,"message":null,"details":{"a":[1,2]}}"#,
                want: Ok((ResultStatus::Success, DEFAULT_REASON, DEFAULT_MESSAGE)),
            },
            Case {
                json: r#"{"status":"Success"}"#,
                want: Err("invalid result format: status: must be either 'success' or 'failure'"),
            },
            Case {
                json: r#"{"status":"ok"}"#,
                want: Err("invalid result format: status: must be either 'success' or 'failure'"),
            },
            Case {
                json: r#"{"reason":"x"}"#,
                want: Err("invalid result format: status: must be either 'success' or 'failure'"),
            },
            Case {
                json: r#"{"status":""}"#,
                want: Err("invalid result format: status: must be either 'success' or 'failure'"),
            },
            Case {
                json: r#"{"status":true}"#,
                want: Err("failed to parse JSON: field status: expected a string, got a boolean"),
            },
            Case {
                json: r#"{"status":"success","reason":5}"#,
                want: Err("failed to parse JSON: field reason: expected a string, got a number"),
            },
            Case {
                json: r#"[1]"#,
                want: Err(
                    "failed to parse JSON: expected a JSON object like {\"status\": \"success\"}, got an array",
                ),
            },
            Case {
                json: r#"{"status":"success""#,
                want: Err("failed to parse JSON: EOF while parsing an object at line 1 column 19"),
            },
            Case {
                json: "not json",
                want: Err("failed to parse JSON: expected ident at line 1 column 2"),
            },
        ];
        for c in cases {
            let got = parse(c.json.as_bytes());
            match (got, c.want) {
                (Ok(r), Ok((s, reason, message))) => {
                    assert_eq!(
                        (r.status, r.reason.as_str(), r.message.as_str()),
                        (s, reason, message),
                        "{}",
                        c.json
                    )
                }
                (Err(e), Err(want)) => assert_eq!(e.to_string(), want, "{}", c.json),
                (got, want) => panic!("{}: got {got:?}, want {want:?}", c.json),
            }
        }
    }

    #[test]
    fn truncates_on_utf8_boundary() {
        // 'é' is 2 bytes: 127 ASCII + 'é' straddles byte 128, so it must be dropped whole.
        let reason = format!("{}é", "a".repeat(127));
        let r = ok(&format!(r#"{{"status":"success","reason":"{reason}"}}"#));
        assert_eq!(r.reason, "a".repeat(127));
        // '世' is 3 bytes: 1024/3 = 341 whole chars (1023 bytes).
        let message = "世".repeat(400);
        let r = ok(&format!(r#"{{"status":"failure","message":"{message}"}}"#));
        assert_eq!(r.message, "世".repeat(341));
        assert_eq!(r.message.len(), 1023);
        // Exactly at the limit stays whole.
        let r = ok(&format!(
            r#"{{"status":"success","reason":"{}"}}"#,
            "b".repeat(128)
        ));
        assert_eq!(r.reason.len(), 128);
        // Trimming happens before truncation.
        let r = ok(&format!(
            r#"{{"status":"success","reason":"   {}"}}"#,
            "c".repeat(130)
        ));
        assert_eq!(r.reason, "c".repeat(128));
    }
}
