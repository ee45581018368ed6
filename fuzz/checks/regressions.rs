//! The inputs under `tests/data/fuzz-regressions/<target>/` (what the fuzzers found, and
//! hand-picked edge cases), replayed by the property suites of the crate that includes this file.
#![allow(dead_code)]

use std::path::Path;

/// Every input of `target`, sorted by name, as (path, bytes); panics if there are none.
pub fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/fuzz-regressions")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}
