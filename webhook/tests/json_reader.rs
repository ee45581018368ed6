//! The one-pass review reader (`json_reader`) against serde_json, which it stands in for: on
//! every body it reads, serde_json reads the same views; on a body serde_json refuses, it
//! gives up too. Over the captured reviews, generated Jobs of every shape (compact, as the
//! apiserver sends them, and pretty-printed), and those same bodies mangled byte by byte.
#![forbid(unsafe_code)]

use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter_webhook::json_reader;
use status_reporter_webhook::review_view::ReviewView;

mod support;

use support::{job, known_keys};

/// The reader's views equal serde_json's whenever the reader takes the body.
fn agrees(text: &str) -> Result<bool, String> {
    let serde = serde_json::from_str::<ReviewView>(text).ok();
    match json_reader::review(text) {
        None => Ok(false),
        Some(fast) if Some(&fast) == serde.as_ref() => Ok(true),
        Some(fast) => Err(format!(
            "the reader and serde_json differ on\n{text}\n  reader: {fast:?}\n  serde_json: {serde:?}"
        )),
    }
}

#[test]
fn every_captured_review_reads_as_serde_json_reads_it() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/admission");
    let mut taken = Vec::new();
    for entry in std::fs::read_dir(dir).expect("tests/data/admission") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        if agrees(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            taken.push(
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    taken.sort();
    // Every body that is JSON of the views' shape is read here (the v1beta1 review and the
    // non-review too: their kind and apiVersion are checked after reading); only the
    // malformed one is left to serde_json, which refuses it.
    assert_eq!(
        taken,
        [
            "create-cronjob.json",
            "create-job-bad-adapter.json",
            "create-job-bad-annotation.json",
            "create-job-generate-name.json",
            "create-job-not-opted-in.json",
            "create-job.json",
            "create-pod.json",
            "delete-job.json",
            "not-a-review.json",
            "update-job-status.json",
            "update-job.json",
            "v1beta1-review.json",
        ]
    );
}

fn review(object: &Value, operation: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1b2c4d-0000-4000-8000-000000000001",
            "kind": {"group": "batch", "version": "v1", "kind": "Job"},
            "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
            "namespace": "adapters",
            "operation": operation,
            "userInfo": {"username": "prop", "groups": ["system:authenticated"], "extra": {}},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        }
    })
}

/// The bytes a mutation writes: JSON's structure, the starts of every value, escapes.
const INTERESTING: &[u8] = b"{}[],:\"\\ \n0123456789-+.eEtrufalsn\t/bux";

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    /// Copies `len` bytes from `from` to `to` (repeats a member, or cuts one in half).
    Splice {
        from: usize,
        len: usize,
        to: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop::sample::select(INTERESTING.to_vec());
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), 1usize..80, any::<usize>()).prop_map(|(from, len, to)| Mutation::Splice {
            from,
            len,
            to
        }),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Delete(at) => {
                bytes.remove(at % n);
            }
            Mutation::Insert(at, b) => bytes.insert(at % (n + 1), b),
            Mutation::Replace(at, b) => bytes[at % n] = b,
            Mutation::Splice { from, len, to } => {
                let from = from % n;
                let piece = bytes[from..(from + len).min(bytes.len())].to_vec();
                let to = to % (bytes.len() + 1);
                bytes.splice(to..to, piece);
            }
        }
        if bytes.is_empty() {
            return None;
        }
    }
    // Bodies that are not UTF-8 never reach either reader.
    String::from_utf8(bytes).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated reviews: the reader reads them as serde_json does, and takes every one that
    /// has nothing it could leave to serde_json (no escape, no negative number).
    #[test]
    fn generated_reviews_read_as_serde_json_reads_them(
        object in job(known_keys()),
        op in prop::sample::select(vec!["CREATE", "UPDATE", "DELETE"]),
    ) {
        let value = review(&object, op);
        for text in [
            serde_json::to_string(&value).unwrap_or_default(),
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        ] {
            let taken = agrees(&text).map_err(TestCaseError::fail)?;
            let plain = !text.contains('\\') && !text.contains(":-") && !text.contains(": -");
            if plain && serde_json::from_str::<ReviewView>(&text).is_ok() {
                prop_assert!(taken, "the reader left a plain review to serde_json:\n{}", text);
            }
        }
    }

    /// Mangled reviews: whatever the reader still takes, serde_json reads the same.
    #[test]
    fn mangled_reviews_are_read_as_serde_json_reads_them_or_left_to_it(
        object in job(known_keys()),
        pretty in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let value = review(&object, "CREATE");
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap_or_default()
        } else {
            serde_json::to_string(&value).unwrap_or_default()
        };
        if let Some(mangled) = mutate(&text, &mutations) {
            agrees(&mangled).map_err(TestCaseError::fail)?;
        }
    }
}

/// The mangling reaches both sides of the question: some mangled bodies are still read (a
/// byte changed inside a string), many are refused. A fixed sweep over every byte of
/// `create-job.json`, so it cannot pass by luck.
#[test]
fn mangling_create_job_json_byte_by_byte_keeps_the_reader_and_serde_json_agreeing() {
    let text = include_str!("../../tests/data/admission/create-job.json");
    let (mut taken, mut refused) = (0, 0);
    for at in 0..text.len() {
        let replaced = b"\"\\{],0".iter().map(|&b| Mutation::Replace(at, b));
        for m in replaced.chain([Mutation::Delete(at)]) {
            let Some(mangled) = mutate(text, &[m]) else {
                continue;
            };
            match agrees(&mangled) {
                Ok(true) => taken += 1,
                Ok(false) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(
        taken > 2_000 && refused > 2_000,
        "{taken} taken, {refused} refused"
    );
}
