#!/usr/bin/env bash
# Builds the real Pulumi engine, the Kubernetes provider, Helm and a Kubernetes API server from
# pinned Go modules, and the project's own plugins (e2e/plugins: the Python language host and the
# random and tls providers, whose upstream modules the module proxy refuses), into a cache
# outside the repository. Idempotent: a binary whose pin (or, for our plugins, whose source) is
# unchanged is not rebuilt. Concurrent runs are serialised by a lock, and a slot only appears
# once its build has finished, so an interrupted build never leaves a half-built binary behind.
#
#   e2e/toolchain.sh [NAME...]          build what is missing, print the bin directory on stdout
#   e2e/toolchain.sh --check [NAME...]  exit 0 if the binaries are already cached, 1 otherwise
#
# NAME is one of pulumi plugins kubernetes etcd control-plane helm opa otelcol jaeger (default: all).
#
# The bin directory holds the CLI with its bundled Python language host (the CLI looks for it
# beside its own executable), Helm and the control plane; it goes on PATH. The resource
# plugins are not on PATH: `plugins.tsv` in the bin directory lists name, version and binary,
# for `pulumi plugin install resource NAME VERSION -f BINARY` (see e2e/lib.sh).
#
# Cache: $API_PLATFORM_TOOLCHAIN_DIR (default ~/.cache/api-platform/toolchain).
set -euo pipefail

# The whole script is one brace group, read before it runs: editing this file while a build
# runs cannot change what that build executes.
{
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

# ---- pins -----------------------------------------------------------------------------------
# Plugin versions are the ones requirements.txt pins for the Python SDKs, so the engine loads
# exactly the version each SDK asks for.
pinned() { sed -n "s/^$1==\([0-9.]*\)$/\1/p" "$ROOT/requirements.txt"; }
PULUMI_VERSION="$(pinned pulumi)"
K8S_PROVIDER_VERSION="$(pinned pulumi-kubernetes)"
RANDOM_VERSION="$(pinned pulumi-random)"
TLS_VERSION="$(pinned pulumi-tls)"
# pulumi-kubernetes' provider module is untagged; this pseudo-version is the v4.25.0 tag commit.
K8S_PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
KUBE_VERSION=1.34.4
ETCD_VERSION=3.6.16
# The Helm library pulumi-kubernetes 4.25.0 itself renders charts with.
HELM_VERSION=3.18.6
# Open Policy Agent: the version of the image the stacks deploy beside Kong (policy tests, the
# loopback decision tests and the decision benchmark run this binary).
OPA_VERSION="$(grep -o 'openpolicyagent/opa:[0-9.]*' "$ROOT/components/models/policy.py" | head -1 | cut -d: -f2)"
# The trace pipeline the tests run (tests/test_traces.py). The OpenTelemetry Collector is our own
# distribution (e2e/otelcol: the components the program's configuration uses) at the version of
# the collector image the stacks deploy, which its go.mod pins.
COLLECTOR_VERSION="$(grep -o 'opentelemetry-collector-contrib:[0-9.]*' "$ROOT/components/models/observability.py" | head -1 | cut -d: -f2)"
# Jaeger v2 is the module's cmd/jaeger; the module keeps v1 tags (v1.76.0 is Jaeger v2.13.0). The
# pinned chart's appVersion is 2.19.0, whose v1.82.0 the module proxy does not serve: v1.76.0 is
# the newest it serves (README, "Processes the tests run").
JAEGER_MODULE_VERSION=1.76.0
JAEGER_VERSION=2.13.0
# ---------------------------------------------------------------------------------------------

PLUGINS_SRC="$ROOT/e2e/plugins"
OTELCOL_SRC="$ROOT/e2e/otelcol"
CACHE="${API_PLATFORM_TOOLCHAIN_DIR:-$HOME/.cache/api-platform/toolchain}"
BIN="$CACHE/bin"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
GO_BUILD=(go build -trimpath)

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for v in PULUMI_VERSION K8S_PROVIDER_VERSION RANDOM_VERSION TLS_VERSION; do
  [ -n "${!v}" ] || { echo "toolchain: no exact pin for $v in requirements.txt" >&2; exit 2; }
done

# Our plugins' slot is keyed by the versions they report and by their source (tests excluded).
source_hash() {  # source_hash DIR: the Go sources, go.mod and go.sum of a module of ours
  (cd "$1" && find . -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) |
    LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
}
declare -A KEYS=(
  [pulumi]="$PULUMI_VERSION"
  [plugins]="$PULUMI_VERSION-$RANDOM_VERSION-$TLS_VERSION-$(source_hash "$PLUGINS_SRC")"
  [kubernetes]="$K8S_PROVIDER_VERSION"
  [control-plane]="$KUBE_VERSION"
  [etcd]="$ETCD_VERSION"
  [helm]="$HELM_VERSION-k8s$KUBE_VERSION"
  [opa]="$OPA_VERSION"
  [otelcol]="$COLLECTOR_VERSION-$(source_hash "$OTELCOL_SRC")"
  [jaeger]="$JAEGER_VERSION"
)
ORDER=(pulumi plugins kubernetes etcd control-plane helm opa otelcol jaeger)

# slot NAME -> the directory that holds NAME's binaries for its current key
slot() { echo "$CACHE/$1-${KEYS[$1]}"; }
have() { [ -f "$(slot "$1")/.done" ]; }

CHECK=false
WANT=()
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=true ;;
    *) [ -n "${KEYS[$arg]:-}" ] || { echo "toolchain: unknown binary $arg (one of ${ORDER[*]})" >&2; exit 2; }
       WANT+=("$arg") ;;
  esac
done
[ ${#WANT[@]} -gt 0 ] || WANT=("${ORDER[@]}")
if $CHECK; then
  for n in "${WANT[@]}"; do have "$n" || exit 1; done
  exit 0
fi

command -v go >/dev/null || { echo "toolchain: Go is required (go1.25 or newer)" >&2; exit 2; }
mkdir -p "$CACHE"
# One build at a time per cache: a second run waits, then finds the slots built.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another toolchain build holds $CACHE/.lock; waiting"
  flock 9
fi

# wrapper_module DIR MODULE_PATH GO_VERSION: a fresh go.mod in DIR
wrapper_module() {
  rm -rf "$1" && mkdir -p "$1"
  printf 'module %s\n\ngo %s\n' "$2" "$3" >"$1/go.mod"
}

# Each builder writes its binaries into $OUT (a temporary directory that becomes the slot).
build_pulumi() {
  local w="$CACHE/work/pulumi"
  wrapper_module "$w" local.build/pulumi-cli 1.25.11
  (cd "$w"
    # pkg/go.mod's one non-local replace must be repeated in the main module.
    go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
    go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" >&2
    "${GO_BUILD[@]}" -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      -o "$OUT/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

# The project's own plugins (e2e/plugins, its go.sum committed): the Python language host, with
# the executor script the served sdk/v3 module ships beside it, and the random and tls providers,
# each stamped with the version requirements.txt pins so the engine finds no version to warn about.
build_plugins() {
  local sdk
  (cd "$PLUGINS_SRC"
    build_own() {  # build_own NAME VERSION
      "${GO_BUILD[@]}" -mod=readonly -ldflags "-s -w -X main.version=$2" -o "$OUT/$1" "./cmd/$1"
    }
    build_own pulumi-language-python "$PULUMI_VERSION"
    build_own pulumi-resource-random "$RANDOM_VERSION"
    build_own pulumi-resource-tls "$TLS_VERSION"
    sdk="$(go list -mod=readonly -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$OUT/pulumi-language-python-exec")
}

# The provider module embeds schema-embed.json, which upstream generates and does not ship in
# the module zip: copy the module out of the read-only cache, generate it, then build.
build_kubernetes() {
  local w p s; w="$CACHE/work/kubernetes"
  rm -rf "$w" && mkdir -p "$w"
  p="$(go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODULE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  s="$(go mod download -json "github.com/pulumi/pulumi-kubernetes/sdk/v4@v$K8S_PROVIDER_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  cp -r "$p" "$w/provider" && cp -r "$s" "$w/sdk" && chmod -R u+w "$w"
  (cd "$w/provider/cmd/pulumi-resource-kubernetes" && VERSION="$K8S_PROVIDER_VERSION" go run generate.go >&2)
  (cd "$w/provider"
    "${GO_BUILD[@]}" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
      -o "$OUT/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes)
  rm -rf "$w"
}

# kube-apiserver and kube-controller-manager (namespace finalization, garbage collection; no
# scheduler and no kubelet, so pods are accepted but never run). k8s.io/kubernetes requires its
# staging modules at v0.0.0 through local replaces; point each at the published v0.X.Y instead.
build_control_plane() {
  local w gomod minor; w="$CACHE/work/control-plane"
  minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
  wrapper_module "$w" local.build/control-plane 1.24.0
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
      "${GO_BUILD[@]}" -tags selinux,notest -ldflags "$ld" -o "$OUT/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done)
}

build_etcd() {
  local w="$CACHE/work/etcd"
  wrapper_module "$w" local.build/etcd 1.25.0
  (cd "$w"
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
    "${GO_BUILD[@]}" -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3)
}

# Helm defaults to rendering for Kubernetes 1.20, below several charts' kubeVersion: stamp the
# version the stacks target, as Helm's own Makefile does.
build_helm() {
  local w="$CACHE/work/helm" minor
  minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
  wrapper_module "$w" local.build/helm 1.24.0
  (cd "$w"
    go get "helm.sh/helm/v3@v$HELM_VERSION" >&2
    "${GO_BUILD[@]}" -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
      -o "$OUT/helm" helm.sh/helm/v3/cmd/helm)
}

build_opa() {
  local w="$CACHE/work/opa"
  wrapper_module "$w" local.build/opa 1.26.0
  (cd "$w"
    go get "github.com/open-policy-agent/opa@v$OPA_VERSION" >&2
    "${GO_BUILD[@]}" -ldflags "-s -w" -o "$OUT/opa" github.com/open-policy-agent/opa)
}

# Our collector distribution (its go.sum committed), stamped with the collector version it is.
build_otelcol() {
  (cd "$OTELCOL_SRC"
    "${GO_BUILD[@]}" -mod=readonly -ldflags "-s -w -X main.Version=$COLLECTOR_VERSION" -o "$OUT/otelcol" .)
}

build_jaeger() {
  local w="$CACHE/work/jaeger" v=github.com/jaegertracing/jaeger/internal/version
  wrapper_module "$w" local.build/jaeger 1.25.0
  (cd "$w"
    go get "github.com/jaegertracing/jaeger@v$JAEGER_MODULE_VERSION" >&2
    "${GO_BUILD[@]}" -ldflags "-s -w -X $v.latestVersion=v$JAEGER_VERSION -X $v.date=1970-01-01T00:00:00Z" \
      -o "$OUT/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
}

mkdir -p "$BIN"
for n in "${WANT[@]}"; do
  if have "$n"; then
    log "$n ${KEYS[$n]}: cached"
    continue
  fi
  start=$(date +%s)
  log "$n ${KEYS[$n]}: building"
  OUT="$CACHE/.building-$n"
  rm -rf "$OUT" "$(slot "$n")" && mkdir -p "$OUT"
  "build_${n//-/_}"
  touch "$OUT/.done" && mv "$OUT" "$(slot "$n")"
  log "$n ${KEYS[$n]}: built in $(($(date +%s) - start))s"
done

# The bin directory, refreshed from the slots one file at a time, each replaced atomically (a
# run using it meanwhile never misses a binary). Hard links, not symbolic ones: the CLI looks for
# its language host beside the resolved path of its own executable. Temporary names are fresh
# files: writing through a leftover link would overwrite the binary it points at.
publish() {  # publish SRC NAME: $BIN/NAME becomes SRC's file
  local tmp
  [ "$1" -ef "$BIN/$2" ] && return 0
  tmp="$(mktemp -u "$BIN/.link.XXXXXX")"
  ln "$1" "$tmp" && mv -f "$tmp" "$BIN/$2"
}
rm -f "$BIN"/.new "$BIN"/.link.* "$BIN"/.plugins.*
declare -A WANTED=([plugins.tsv]=1)
# The language host and its executor go beside the CLI; the providers are listed in plugins.tsv.
for n in pulumi plugins etcd control-plane helm opa otelcol jaeger; do
  have "$n" || continue
  for f in "$(slot "$n")"/*; do
    case "$(basename "$f")" in pulumi-resource-*) continue ;; esac
    publish "$f" "$(basename "$f")"
    WANTED[$(basename "$f")]=1
  done
done
plugins="$(mktemp "$BIN/.plugins.XXXXXX")"
{
  if have kubernetes; then
    printf 'kubernetes\t%s\t%s\n' "$K8S_PROVIDER_VERSION" "$(slot kubernetes)/pulumi-resource-kubernetes"
  fi
  if have plugins; then
    printf 'random\t%s\t%s\n' "$RANDOM_VERSION" "$(slot plugins)/pulumi-resource-random"
    printf 'tls\t%s\t%s\n' "$TLS_VERSION" "$(slot plugins)/pulumi-resource-tls"
  fi
} >"$plugins"
chmod 0644 "$plugins" && mv -f "$plugins" "$BIN/plugins.tsv"
# A file of no wanted slot goes only when no slot holds it any more (a single link): another
# checkout sharing the cache with other pins (a worktree, an older branch) keeps its binaries.
for f in "$BIN"/*; do
  [ -n "${WANTED[$(basename "$f")]:-}" ] || [ "$(stat -c %h "$f")" -gt 1 ] || rm -f "$f"
done
echo "$BIN"
exit
}
