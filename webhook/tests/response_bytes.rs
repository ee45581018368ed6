//! The answer to every captured AdmissionReview, byte for byte: the webhook's response body
//! (envelope, base64 patch, warnings, denial messages) is compared with
//! `tests/data/golden/responses/<fixture>.json`. The other goldens compare the patched Job;
//! these pin the exact bytes the apiserver receives, so a faster serializer cannot change them
//! unnoticed. `UPDATE_GOLDEN=1` rewrites them (review the diff).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use status_reporter_webhook::admission::review_as;
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::OptIn;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn config() -> InjectConfig {
    InjectConfig {
        // Fixed so goldens do not change with every release.
        reporter_image: "ghcr.io/openshift-hyperfleet/status-reporter:0.1.0".into(),
        ..InjectConfig::default()
    }
}

#[test]
fn every_admission_fixture_gets_its_golden_response_bytes() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(data("admission"))
        .expect("tests/data/admission")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 10, "{fixtures:?}");
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let name = fixture.file_stem().and_then(|s| s.to_str()).expect("name");
        let body = std::fs::read(fixture).expect("read fixture");
        for (opt_in, suffix) in [(OptIn::Annotation, ""), (OptIn::Namespace, ".namespace")] {
            let mut actual = review_as(&body, &config(), opt_in).json().unwrap().to_vec();
            actual.push(b'\n');
            let golden = data(&format!("golden/responses/{name}{suffix}.json"));
            if update {
                std::fs::create_dir_all(golden.parent().expect("dir")).expect("mkdir");
                std::fs::write(&golden, &actual).expect("write golden");
                continue;
            }
            let expected = std::fs::read(&golden).unwrap_or_else(|e| {
                panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", golden.display())
            });
            if actual != expected {
                failures.push(format!(
                    "{name}{suffix}:\n  golden: {}\n  actual: {}",
                    String::from_utf8_lossy(&expected).trim_end(),
                    String::from_utf8_lossy(&actual).trim_end()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "responses differ from their goldens (UPDATE_GOLDEN=1 rewrites them; review the diff):\n{}",
        failures.join("\n")
    );
}
