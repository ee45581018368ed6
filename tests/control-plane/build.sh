#!/usr/bin/env bash
# Builds the pinned Kubernetes control plane the end-to-end suites run on — kube-apiserver,
# kube-controller-manager, kubectl, kubelet, etcd (and Helm for the current release) — from their
# Go modules, into a cache directory keyed by the pinned versions, and prints that directory on
# its last line. A directory already built is reused (a warm call takes well under a second).
#
#   bash tests/control-plane/build.sh            # the current release (current/go.mod)
#   bash tests/control-plane/build.sh --oldest   # the oldest release we support (oldest/go.mod)
#   bash tests/control-plane/build.sh --node     # the test node's container runtime: containerd,
#                                                # containerd-shim-runc-v2, ctr (node/go.mod)
#   bash tests/control-plane/build.sh --sync     # after a version bump: rewrite the staging
#                                                # `replace` lines and go.sum, then build
#
# A version bump is one line: the `k8s.io/kubernetes` requirement in current/go.mod (or
# oldest/go.mod), then `--sync`. etcd is built from the very etcd module that Kubernetes release
# itself requires (its integration tests run that etcd), so it always matches.
#
# Go compiles with a build cache of its own under the cache directory, deleted once the binaries
# are in place: a Kubernetes build leaves 5-6 GB of it, and the binaries are what is reused
# (STATUS_REPORTER_KEEP_GO_CACHE=1 keeps it, for a faster rebuild after a version bump).
#
# Env: STATUS_REPORTER_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/status-reporter),
#      STATUS_REPORTER_KEEP_GO_CACHE.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
release=current
sync=0
for arg in "$@"; do
  case "$arg" in
    --oldest) release=oldest ;;
    --current) release=current ;;
    --node) release=node ;;
    --sync) sync=1 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg' (accepted: --oldest, --current, --node, --sync, --help)" >&2; exit 2 ;;
  esac
done

if ! command -v go >/dev/null; then
  echo "build.sh: Go (>= 1.26) is needed to build the Kubernetes control plane from its Go modules; install Go, then run: bash tests/control-plane/build.sh" >&2
  exit 1
fi

mod="$here/$release"
cd "$mod"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
log() { printf 'build.sh: %s\n' "$*" >&2; }
cache_root="${STATUS_REPORTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-reporter}"
export GOCACHE="$cache_root/go-build-$release"

# Installs a finished build directory ($1, a temporary one) as $2 and prints $2.
finish() {
  touch "$1/.complete"
  [[ ${STATUS_REPORTER_KEEP_GO_CACHE:-0} == 1 ]] || go clean -cache
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  mv "$1" "$2"
  trap - EXIT
  log "built in $((SECONDS - start)) s"
  echo "$2"
}

if [[ $release == node ]]; then
  # containerd's own module, not Kubernetes': runc, the CNI loopback plugin and busybox come from
  # Debian packages (runc, containernetworking-plugins, busybox-static).
  containerd_version="$(go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)"
  dir="$cache_root/control-plane/containerd-$containerd_version-$(cat go.mod go.sum | sha256sum | cut -c1-10)"
  if [[ -f "$dir/.complete" ]]; then
    log "reusing $dir"
    echo "$dir"
    exit 0
  fi
  log "building containerd $containerd_version into $dir (cold: about 1-2 minutes on 2 cores)"
  start=$SECONDS
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin"
  trap 'rm -rf "$tmp"' EXIT
  # Static binaries without the snapshotters the node does not use (they need C libraries).
  CGO_ENABLED=0 go build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
    -o "$tmp/bin/" $(sed -n '/^tool (/,/^)/{/^tool (/d;/^)/d;s/^[[:space:]]*//;p}' go.mod)
  "$tmp/bin/containerd" --version >&2
  finish "$tmp" "$dir"
  exit 0
fi

# The pinned release, from the one line that pins it.
kube_version="$(sed -n 's#^[[:space:]]*k8s.io/kubernetes \(v[0-9][^ ]*\).*#\1#p; s#^require k8s.io/kubernetes \(v[0-9][^ ]*\).*#\1#p' go.mod | head -n 1)"
[[ "$kube_version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { log "cannot read the k8s.io/kubernetes version from $mod/go.mod (found '$kube_version')"; exit 1; }
minor="${BASH_REMATCH[1]}"
patch="${BASH_REMATCH[2]}"
staging_version="v0.$minor.$patch"

if [[ $sync == 1 ]]; then
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging
  # paths; a module that depends on it pins each to the matching published v0.<minor>.<patch>.
  log "syncing $release/go.mod to Kubernetes $kube_version (staging modules at $staging_version)"
  kmod="$(go mod download -json "k8s.io/kubernetes@$kube_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$kmod" ]] || { log "could not download k8s.io/kubernetes@$kube_version's go.mod"; exit 1; }
  staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$kmod" | sort -u)"
  required="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) v0.0.0$#\1#p' "$kmod" | sort -u)"
  for old in $(go mod edit -json | sed -n 's#^[[:space:]]*"Path": "\(k8s.io/[a-z0-9-]*\)"$#\1#p' | sort -u); do
    go mod edit -dropreplace="$old" 2>/dev/null || true
  done
  for m in $(comm -12 <(echo "$staging") <(echo "$required")); do
    go mod edit -replace="$m=$m@$staging_version"
  done
  go mod tidy
fi

tools="$(sed -n '/^tool (/,/^)/{/^tool (/d;/^)/d;s/^[[:space:]]*//;p}' go.mod)"
[[ -n "$tools" ]] || { log "no tool directives in $mod/go.mod"; exit 1; }
etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
helm_version=""
if grep -q 'helm.sh/helm/v3' <<<"$tools"; then helm_version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"; fi

key="kubernetes-$kube_version-etcd-$etcd_version${helm_version:+-helm-$helm_version}-$(cat go.mod go.sum | sha256sum | cut -c1-10)"
dir="$cache_root/control-plane/$key"

if [[ -f "$dir/.complete" ]]; then
  log "reusing $dir"
  echo "$dir"
  exit 0
fi

log "building Kubernetes $kube_version, etcd $etcd_version${helm_version:+, Helm $helm_version} into $dir"
log "(cold: about 4-8 minutes on 2 cores, Go modules downloaded included)"
start=$SECONDS
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT
# The version variables `make` would stamp (kubectl and the API server report them; kubectl
# warns about version skew against v0.0.0).
pkg=k8s.io/component-base/version
client_pkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in $pkg $client_pkg; do
  ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
if [[ -n "$helm_version" ]]; then
  ldflags+=" -X helm.sh/helm/v3/internal/version.version=$helm_version"
fi
# shellcheck disable=SC2086 # one package per word
go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" $tools
# etcd's main package is the module go.etcd.io/etcd/server/v3, so go names the binary "server".
if [[ -f "$tmp/bin/server" ]]; then mv "$tmp/bin/server" "$tmp/bin/etcd"; fi
cat >"$tmp/versions" <<EOF
kubernetes $kube_version
etcd $etcd_version
${helm_version:+helm $helm_version}
EOF
"$tmp/bin/kube-apiserver" --version >&2
finish "$tmp" "$dir"
