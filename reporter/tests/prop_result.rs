//! Property tests for the adapter contract: whatever bytes an adapter leaves in its result
//! file, the parser never panics, and every result it accepts obeys the contract the Job
//! condition relies on (status success|failure, reason 1..=128 bytes, message 1..=1024 bytes).
//!
//! Case counts are bounded (see `config()`) so these run in the normal test command.
#![forbid(unsafe_code)]

use contract::result::{
    self, AdapterResult, DEFAULT_MESSAGE, DEFAULT_REASON, MAX_MESSAGE_BYTES, MAX_REASON_BYTES,
    ResultStatus,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter::read_result;

#[path = "../../fuzz/checks/result_parse.rs"]
mod checks;
#[path = "../../fuzz/checks/regressions.rs"]
mod regressions;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Regressions are kept as explicit tests below, not in proptest-regressions files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The contract every accepted result obeys (the `result_parse` fuzz target's check).
fn assert_contract(r: &AdapterResult) -> Result<(), TestCaseError> {
    checks::contract_holds(r).map_err(TestCaseError::fail)
}

/// What the contract says `raw` becomes: trimmed, defaulted, cut on a char boundary.
fn expected_text(raw: &str, default: &str, max: usize) -> String {
    let t = raw.trim();
    let t = if t.is_empty() { default } else { t };
    let mut end = t.len().min(max);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    t[..end].to_owned()
}

/// Strings that stress trimming and truncation: unicode of every width, whitespace runs,
/// and lengths around the 128/1024-byte limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "\\PC{0,300}",
        "[ \t\n\u{a0}\u{3000}]{0,5}[a-zA-Z0-9é€😀]{0,1100}[ \t\n]{0,5}",
        (
            0usize..1200,
            prop::sample::select(vec!["a", "é", "€", "😀", " "])
        )
            .prop_map(|(n, s)| s.repeat(n)),
    ]
}

/// A JSON value of bounded depth/size for `details` and wrong-typed fields.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Result-shaped objects: the status from a pool of near misses, fields present, absent,
/// null or wrong-typed.
fn result_object() -> impl Strategy<Value = Value> {
    let status = prop_oneof![
        Just(json!("success")),
        Just(json!("failure")),
        Just(json!("Success")),
        Just(json!(" success")),
        Just(json!("")),
        Just(Value::Null),
        Just(json!(true)),
        text().prop_map(Value::from),
    ];
    let field = prop_oneof![
        4 => text().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any_json(),
    ];
    (
        prop::option::of(status),
        prop::option::of(field.clone()),
        prop::option::of(field),
        prop::option::of(any_json()),
    )
        .prop_map(|(status, reason, message, details)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("status", status),
                ("reason", reason),
                ("message", message),
                ("details", details),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes: never a panic; accepted results obey the contract; a rejection becomes
    /// a condition message the apiserver accepts.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        checks::check_bytes(&bytes).map_err(TestCaseError::fail)?;
    }

    /// Bytes that are almost a result (a valid prefix/suffix around noise) reach deeper parser paths.
    #[test]
    fn mangled_results_never_panic(
        obj in result_object(),
        cut in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = serde_json::to_vec(&obj).unwrap_or_default();
        let at = cut.index(bytes.len() + 1);
        bytes.splice(at..at, noise);
        if let Ok(r) = result::parse(&bytes) {
            assert_contract(&r)?;
        }
    }

    /// Result-shaped objects: accepted exactly when status is "success"/"failure" and reason and
    /// message are strings or null/absent; then normalised exactly as the contract says.
    #[test]
    fn result_objects_follow_the_contract(obj in result_object()) {
        let bytes = serde_json::to_vec(&obj).unwrap_or_default();
        let text_ok = |k: &str| matches!(obj.get(k), None | Some(Value::Null) | Some(Value::String(_)));
        let status = match obj.get("status") {
            Some(Value::String(s)) if s == "success" => Some(ResultStatus::Success),
            Some(Value::String(s)) if s == "failure" => Some(ResultStatus::Failure),
            _ => None,
        };
        match (result::parse(&bytes), status) {
            (Ok(r), Some(want)) => {
                prop_assert!(text_ok("reason") && text_ok("message"), "accepted wrong-typed field: {obj}");
                assert_contract(&r)?;
                prop_assert_eq!(r.status, want);
                let raw = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                prop_assert_eq!(&r.reason, &expected_text(&raw("reason"), DEFAULT_REASON, MAX_REASON_BYTES));
                prop_assert_eq!(&r.message, &expected_text(&raw("message"), DEFAULT_MESSAGE, MAX_MESSAGE_BYTES));
            }
            (Ok(r), None) => prop_assert!(false, "accepted status {:?} from {obj}", r.status),
            (Err(e), Some(_)) => prop_assert!(
                !(text_ok("reason") && text_ok("message")),
                "rejected a valid result {obj}: {e}"
            ),
            (Err(_), None) => {}
        }
    }

    /// Deep nesting anywhere in the file is an error or a result, never a stack overflow
    /// (serde_json stops at depth 128).
    #[test]
    fn deep_nesting_is_refused_not_a_crash(depth in 100usize..20_000, open in prop::sample::select(vec!['[', '{'])) {
        let mut s = String::from(r#"{"status":"success","details":"#);
        for _ in 0..depth {
            s.push_str(if open == '[' { "[" } else { "{\"a\":" });
        }
        s.push('1');
        for _ in 0..depth {
            s.push(if open == '[' { ']' } else { '}' });
        }
        s.push('}');
        match result::parse(s.as_bytes()) {
            Ok(r) => {
                prop_assert!(depth < 128, "accepted depth {depth}");
                assert_contract(&r)?;
            }
            Err(e) => prop_assert!(e.to_string().contains("recursion limit"), "{e}"),
        }
    }
}

/// Files with arbitrary bytes go through the same bounded reader as the sidecar.
#[test]
fn arbitrary_files_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..4096), |bytes| {
            std::fs::write(&path, &bytes).expect("write");
            match read_result::read_file(&path) {
                Ok(r) => assert_contract(&r)?,
                Err(e) if bytes.is_empty() => {
                    prop_assert!(matches!(e, result::ResultError::Empty { .. }), "{e}")
                }
                Err(_) => {}
            }
            Ok(())
        })
        .expect("property holds");
}

#[test]
fn fuzz_regressions_result_parse() {
    for (name, bytes) in regressions::inputs("result_parse") {
        checks::check_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
