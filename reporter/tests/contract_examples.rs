//! The published JSON Schema and the code agree: every example in `tests/data/results/valid`
//! passes the schema AND `status-reporter check-result` (whose normalised output matches the
//! golden file in `normalised/`); every example in `invalid/` fails both, with a precise error.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/results")
}

fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/adapter-result.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn examples(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected examples in {kind}/");
    files
}

fn check_result(file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_status-reporter"))
        .arg("check-result")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn valid_examples_pass_schema_and_check_result() {
    let schema = validator();
    for file in examples("valid") {
        let instance: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert!(
            schema.is_valid(&instance),
            "schema rejects {}",
            file.display()
        );
        let (code, stdout, stderr) = check_result(&file);
        assert_eq!(code, 0, "{}: {stderr}", file.display());
        let golden = data_dir()
            .join("normalised")
            .join(file.file_name().unwrap());
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
        let got: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(got, want, "normalised output of {}", file.display());
    }
}

#[test]
fn invalid_examples_fail_schema_and_check_result() {
    let schema = validator();
    for file in examples("invalid") {
        let bytes = std::fs::read(&file).unwrap();
        if let Ok(instance) = serde_json::from_slice::<Value>(&bytes) {
            assert!(
                !schema.is_valid(&instance),
                "schema accepts {}",
                file.display()
            );
        }
        let (code, stdout, stderr) = check_result(&file);
        assert_eq!(code, 1, "{}", file.display());
        assert!(stdout.is_empty());
        assert!(
            stderr.starts_with("Failed to parse adapter result: "),
            "{}: {stderr}",
            file.display()
        );
    }
}

#[test]
fn check_result_errors_are_precise() {
    let dir = data_dir().join("invalid");
    let cases = [
        ("status-wrong-case.json", "Failed to parse adapter result: invalid result format: status: must be either 'success' or 'failure'".to_string()),
        ("empty.json", format!("Failed to parse adapter result: result file is empty: path={}", dir.join("empty.json").display())),
        ("reason-not-string.json", "Failed to parse adapter result: failed to parse JSON: field reason: expected a string, got a number".to_string()),
    ];
    for (name, want) in cases {
        let (code, _, stderr) = check_result(&dir.join(name));
        assert_eq!((code, stderr.trim_end()), (1, want.as_str()), "{name}");
    }
    let (code, _, stderr) = check_result(&data_dir());
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is not a regular file") && stderr.contains("type=directory"),
        "{stderr}"
    );
    let (code, _, stderr) = check_result(&dir.join("does-not-exist.json"));
    assert_eq!(code, 1);
    assert!(stderr.contains("no such file or directory"), "{stderr}");
}
