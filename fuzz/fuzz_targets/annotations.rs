//! Arbitrary values for the known annotations (one per input line, on the Job and on the pod
//! template): never a panic; either injected with a patch that applies, or refused with a
//! message naming the annotation and what is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/admission.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::annotation_lines(&String::from_utf8_lossy(data)).unwrap_or_else(|e| panic!("{e}"));
});
