#!/usr/bin/env bash
# In-process A/B of the webhook's review handler: this tree's `admission::review` against the
# one at BASE (a commit), both linked into one benchmark binary and run in alternating batches
# of 100 reviews, so a noisy machine slows both sides alike. Prints, per fixture, each side's
# fastest and median batch and the median of the per-round ratio new/base with its quartiles.
# Fixtures: `create-job.json`, the same compact, and the same Job in 16 shapes answered in turn
# (each patch different: the webhook's patch cache, 8 per thread, never has it).
#
#   bash tests/ab-handler.sh BASE [ROUNDS]      # e.g. bash tests/ab-handler.sh 40c6b90 300
#
# Why: on a shared VM the same binary's handler p50 moves by up to 2x from one run to the next
# (docs/benchmarks.md), so alternating whole runs of two binaries cannot resolve a few percent;
# alternating batches inside one process can. BASE's `webhook` and `contract` packages are
# renamed in a throwaway worktree so cargo can link both versions. The two sides are built
# with the same profile (thin LTO; the release profile's fat LTO adds minutes and changes
# both alike). Needs the BASE commit to have `admission::review` and `Reviewed::to_json`.
set -euo pipefail

base=${1:?usage: bash tests/ab-handler.sh BASE_COMMIT [ROUNDS]}
rounds=${2:-300}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${AB_WORK_DIR:-$here/target/ab-handler}
mkdir -p "$work"

worktree="$work/base"
git -C "$here" worktree remove --force "$worktree" 2>/dev/null || rm -rf "$worktree"
git -C "$here" worktree prune
git -C "$here" worktree add --quiet --detach "$worktree" "$base"
trap 'git -C "$here" worktree remove --force "$worktree" 2>/dev/null || true' EXIT

# Rename BASE's packages so they can sit next to this tree's in one build.
sed -i '0,/^name = "status-reporter-webhook"$/s//name = "status-reporter-webhook-base"/' \
  "$worktree/webhook/Cargo.toml"
sed -i '0,/^name = "status-reporter-contract"$/s//name = "status-reporter-contract-base"/' \
  "$worktree/contract/Cargo.toml"
sed -i 's/package = "status-reporter-contract"/package = "status-reporter-contract-base"/' \
  "$worktree/Cargo.toml"

bench="$work/bench"
mkdir -p "$bench/src"
cp "$here/Cargo.lock" "$bench/Cargo.lock"
cat >"$bench/Cargo.toml" <<EOF
[package]
name = "ab-handler"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
new = { package = "status-reporter-webhook", path = "$here/webhook" }
base = { package = "status-reporter-webhook-base", path = "$worktree/webhook" }
serde_json = "1"

[profile.release]
codegen-units = 1
lto = "thin"
panic = "abort"

[profile.release.package."*"]
codegen-units = 16

[workspace]
EOF
cat >"$bench/src/main.rs" <<'EOF'
//! Alternating batches of this tree's review handler and BASE's, same fixtures, one process.
use std::time::Instant;

fn main() {
    let dir = std::env::var("AB_FIXTURES").expect("AB_FIXTURES");
    let pretty = std::fs::read(format!("{dir}/create-job.json")).expect("create-job.json");
    let value: serde_json::Value = serde_json::from_slice(&pretty).expect("fixture is JSON");
    let compact = serde_json::to_vec(&value).expect("serialize");
    // The same Job in 16 shapes (each its own condition type, so its own patch), answered in
    // turn: more than the webhook's patch cache keeps, so every patch is written afresh.
    let shapes: Vec<Vec<u8>> = (0..16)
        .map(|i| {
            let mut review = value.clone();
            review["request"]["object"]["metadata"]["annotations"]
                ["status-reporter.hyperfleet.io/condition-type"] = format!("Check{i:02}").into();
            serde_json::to_vec_pretty(&review).expect("serialize")
        })
        .collect();
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    let new_config = new::config::InjectConfig::default();
    let base_config = base::config::InjectConfig::default();
    let new = |b: &[u8]| new::admission::review(b, &new_config).to_json();
    let old = |b: &[u8]| base::admission::review(b, &base_config).to_json();
    for (name, bodies) in [
        ("create-job.json", vec![pretty.clone()]),
        ("compact", vec![compact.clone()]),
        ("16 shapes", shapes.clone()),
    ] {
        for body in &bodies {
            assert_eq!(new(body), old(body), "{name}: the two sides answer differently");
        }
        let body = |i: usize| &bodies[i % bodies.len()];
        let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            for i in 0..100 {
                std::hint::black_box(old(std::hint::black_box(body(i))));
            }
            let x = t.elapsed().as_secs_f64() * 1e6 / 100.0;
            let t = Instant::now();
            for i in 0..100 {
                std::hint::black_box(new(std::hint::black_box(body(i))));
            }
            let y = t.elapsed().as_secs_f64() * 1e6 / 100.0;
            a.push(x);
            b.push(y);
            ratio.push(y / x);
        }
        for v in [&mut a, &mut b, &mut ratio] {
            v.sort_by(f64::total_cmp);
        }
        let (q1, m, q3) = (rounds / 4, rounds / 2, 3 * rounds / 4);
        println!(
            "{name:16} base min {:.2} p50 {:.2} us | new min {:.2} p50 {:.2} us | new/base p50 {:.3} (quartiles {:.3}-{:.3})",
            a[0], a[m], b[0], b[m], ratio[m], ratio[q1], ratio[q3]
        );
    }
}
EOF

cargo build --quiet --release --manifest-path "$bench/Cargo.toml" --target-dir "$work/target"
pin=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then pin=(taskset -c 1); fi
AB_FIXTURES="$here/tests/data/admission" "${pin[@]}" "$work/target/release/ab-handler" "$rounds"
