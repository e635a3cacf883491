#!/usr/bin/env bash
# Builds the real Pulumi engine, its plugins and a Kubernetes API server from pinned Go
# modules, into a cache outside the repository. Idempotent: a binary whose pin (or, for the
# project's own Go tools, whose source) is unchanged is not rebuilt.
#
#   e2e/toolchain.sh            build what is missing, print the bin directory on stdout
#   e2e/toolchain.sh --check    exit 0 if every binary is already cached, 1 otherwise
#
# Cache: $API_PLATFORM_TOOLCHAIN_DIR (default ~/.cache/api-platform/toolchain).
set -euo pipefail

# ---- pins -----------------------------------------------------------------------------------
# The Pulumi CLI and the Python SDK in requirements.txt share a version.
PULUMI_VERSION=3.252.0
# pulumi-kubernetes' provider module is untagged; this pseudo-version is the v4.25.0 tag commit,
# matching pulumi-kubernetes==4.25.0 in requirements.txt.
K8S_PROVIDER_VERSION=4.25.0
K8S_PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
KUBE_VERSION=1.34.4
ETCD_VERSION=3.6.16
# ---------------------------------------------------------------------------------------------

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${API_PLATFORM_TOOLCHAIN_DIR:-$HOME/.cache/api-platform/toolchain}"
BIN="$CACHE/bin"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
GO_BUILD=(go build -trimpath)

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

src_hash() { (cd "$1" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 |
  sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12); }

# slot NAME KEY -> directory that holds the binaries of NAME built for KEY
slot() { echo "$CACHE/$1-$2"; }
have() { [ -f "$(slot "$1" "$2")/.done" ]; }
done_slot() { touch "$(slot "$1" "$2")/.done"; }

LANGHOST_KEY="$PULUMI_VERSION-$(src_hash "$HERE/tools/pulumi-language-python")"
PROVIDERS_KEY="$(src_hash "$HERE/tools/providers")"
declare -A KEYS=(
  [pulumi]="$PULUMI_VERSION"
  [langhost]="$LANGHOST_KEY"
  [providers]="$PROVIDERS_KEY"
  [kubernetes]="$K8S_PROVIDER_VERSION"
  [control-plane]="$KUBE_VERSION"
  [etcd]="$ETCD_VERSION"
)

if [ "${1:-}" = "--check" ]; then
  for n in "${!KEYS[@]}"; do have "$n" "${KEYS[$n]}" || exit 1; done
  exit 0
fi

command -v go >/dev/null || { echo "toolchain: Go is required (go1.25 or newer)" >&2; exit 2; }

# wrapper_module DIR MODULE_PATH GO_VERSION: a fresh go.mod in DIR
wrapper_module() {
  rm -rf "$1" && mkdir -p "$1"
  printf 'module %s\n\ngo %s\n' "$2" "$3" >"$1/go.mod"
}

build_pulumi() {
  local out w; out="$(slot pulumi "$PULUMI_VERSION")"; w="$CACHE/work/pulumi"
  wrapper_module "$w" local.build/pulumi-cli 1.25.11
  (cd "$w"
    # pkg/go.mod's one non-local replace must be repeated in the main module.
    go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
    go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" >&2
    mkdir -p "$out"
    "${GO_BUILD[@]}" -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  done_slot pulumi "$PULUMI_VERSION"
}

build_langhost() {
  local out sdk; out="$(slot langhost "$LANGHOST_KEY")"; mkdir -p "$out"
  (cd "$HERE/tools/pulumi-language-python"
    "${GO_BUILD[@]}" -ldflags "-s -w -X main.version=$PULUMI_VERSION" -o "$out/pulumi-language-python" .
    sdk="$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out/pulumi-language-python-exec")
  done_slot langhost "$LANGHOST_KEY"
}

build_providers() {
  local out; out="$(slot providers "$PROVIDERS_KEY")"; mkdir -p "$out"
  (cd "$HERE/tools/providers"
    "${GO_BUILD[@]}" -ldflags "-s -w -X main.version=4.21.4" -o "$out/" ./cmd/pulumi-resource-random
    "${GO_BUILD[@]}" -ldflags "-s -w -X main.version=5.6.2" -o "$out/" ./cmd/pulumi-resource-tls)
  done_slot providers "$PROVIDERS_KEY"
}

# The provider module embeds schema-embed.json, which upstream generates and does not ship in
# the module zip: copy the module out of the read-only cache, generate it, then build.
build_kubernetes_provider() {
  local out w p s; out="$(slot kubernetes "$K8S_PROVIDER_VERSION")"; w="$CACHE/work/kubernetes"
  rm -rf "$w" && mkdir -p "$w" "$out"
  p="$(go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODULE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  s="$(go mod download -json "github.com/pulumi/pulumi-kubernetes/sdk/v4@v$K8S_PROVIDER_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  cp -r "$p" "$w/provider" && cp -r "$s" "$w/sdk" && chmod -R u+w "$w"
  (cd "$w/provider/cmd/pulumi-resource-kubernetes" && VERSION="$K8S_PROVIDER_VERSION" go run generate.go >&2)
  (cd "$w/provider"
    "${GO_BUILD[@]}" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
      -o "$out/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes)
  rm -rf "$w"
  done_slot kubernetes "$K8S_PROVIDER_VERSION"
}

# kube-apiserver and kube-controller-manager (namespace finalization, garbage collection; no
# scheduler and no kubelet, so pods are accepted but never run). k8s.io/kubernetes requires its
# staging modules at v0.0.0 through local replaces; point each at the published v0.X.Y instead.
build_control_plane() {
  local out w gomod minor; out="$(slot control-plane "$KUBE_VERSION")"; w="$CACHE/work/control-plane"
  minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
  wrapper_module "$w" local.build/control-plane 1.24.0
  mkdir -p "$out"
  (cd "$w"
    gomod="$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    grep -oE '^\s*k8s\.io/[A-Za-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | while read -r m; do
      go mod edit -replace "$m=$m@v0.$minor.${KUBE_VERSION##*.}"
    done
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@v$KUBE_VERSION" >&2
    local ld="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    for cmd in kube-apiserver kube-controller-manager; do
      "${GO_BUILD[@]}" -tags selinux,notest -ldflags "$ld" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done)
  done_slot control-plane "$KUBE_VERSION"
}

build_etcd() {
  local out w; out="$(slot etcd "$ETCD_VERSION")"; w="$CACHE/work/etcd"
  wrapper_module "$w" local.build/etcd 1.25.0
  mkdir -p "$out"
  (cd "$w"
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
    "${GO_BUILD[@]}" -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  done_slot etcd "$ETCD_VERSION"
}

declare -A BUILDERS=(
  [pulumi]=build_pulumi [langhost]=build_langhost [providers]=build_providers
  [kubernetes]=build_kubernetes_provider [control-plane]=build_control_plane [etcd]=build_etcd
)

mkdir -p "$CACHE" "$BIN"
for n in pulumi langhost providers kubernetes etcd control-plane; do
  if have "$n" "${KEYS[$n]}"; then
    log "$n ${KEYS[$n]}: cached"
  else
    start=$(date +%s)
    log "$n ${KEYS[$n]}: building"
    "${BUILDERS[$n]}"
    log "$n ${KEYS[$n]}: built in $(( $(date +%s) - start ))s"
  fi
  # Refresh the links in the shared bin directory to this key's binaries.
  for f in "$(slot "$n" "${KEYS[$n]}")"/*; do ln -sfn "$f" "$BIN/$(basename "$f")"; done
done
echo "$BIN"
