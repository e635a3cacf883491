#!/usr/bin/env bash
# End-to-end: deploy the dev and prod stacks with the real Pulumi engine to a local Kubernetes
# control plane, check them, and destroy them. One command; exits non-zero on any failure.
#
#   e2e/run.sh [STACK ...]        default: dev prod
#
# For each stack: preview with the policy pack (prod: mandatory, dev: advisory) -> up -> preview
# that must show no changes -> read back from the API server -> destroy -> nothing left behind.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=e2e/lib.sh
source "$ROOT/e2e/lib.sh"

STACKS=("${@:-dev}")
[ $# -eq 0 ] && STACKS=(dev prod)

"$ROOT/scripts/setup" >&2
BIN="$(step toolchain "$ROOT/e2e/toolchain.sh")"
export PATH="$BIN:$PATH"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/api-platform-e2e.XXXXXX")"
export E2E_TIMINGS="$WORK/timings"
cleanup() {
  local rc=$?
  cluster_down "$WORK/cluster"
  if [ $rc -ne 0 ]; then
    e2e_log "failed; logs kept in $WORK/cluster/logs"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

step cluster-up cluster_up "$WORK/cluster"
pulumi_workspace "$WORK"
cd "$WORK/project"
# The policy pack must bite: an image from a registry it does not allow fails prod's preview
# (mandatory) and is only reported in dev (advisory).
policy_enforced() {
  local stack="$1" out rc
  pulumi config set --path platform.kong.image registry.invalid/kong:3.9.1
  set +e; out="$(pulumi preview --non-interactive "${POLICY[@]}" 2>&1)"; rc=$?; set -e
  pulumi config rm --path platform.kong.image
  grep -q "pinned-images" <<<"$out" || { echo "$out" >&2; echo "no pinned-images violation reported" >&2; return 1; }
  if [ "$stack" = prod ]; then
    [ $rc -ne 0 ] || { echo "prod preview passed despite a mandatory violation" >&2; return 1; }
  else
    [ $rc -eq 0 ] || { echo "$out" >&2; echo "dev preview failed on an advisory violation" >&2; return 1; }
  fi
}

# A bad stack file is refused by the real engine with the one readable message, no traceback,
# and nothing registered.
bad_config_refused() {
  local out rc
  # Keys absent from the committed stack files, so removing them restores the stack as it was.
  pulumi config set --path platform.kong.autoscalling.minReplicas 3
  pulumi config set --path platform.kong.maxUnavailable 0
  set +e; out="$(pulumi preview --non-interactive 2>&1)"; rc=$?; set -e
  pulumi config rm --path platform.kong.autoscalling
  pulumi config rm --path platform.kong.maxUnavailable
  grep -q "Pulumi.$1.yaml: invalid stack configuration" <<<"$out" && [ $rc -ne 0 ] &&
    ! grep -q "Traceback" <<<"$out" && ! grep -qE "^ *\+ +kubernetes:" <<<"$out" ||
    { echo "$out" >&2; return 1; }
}

# With the operator releases on (charts from the shared chart sources), a preview renders every
# release through the Kubernetes provider's own Helm, for this API server's version and APIs.
releases_render() {
  local stack="$1" out rc missing=""
  with_local_releases
  set +e; out="$(pulumi preview --non-interactive "${POLICY[@]}" 2>&1)"; rc=$?; set -e
  without_local_releases
  [ $rc -eq 0 ] || { echo "$out" >&2; echo "the preview with the releases on failed" >&2; return 1; }
  while read -r chart version; do
    grep -q "rendered $chart $version: [0-9]* objects" <<<"$out" || missing="$missing $chart-$version"
  done < <(expected_releases "$stack")
  [ -z "$missing" ] || { echo "$out" >&2; echo "not rendered:$missing" >&2; return 1; }
  grep -o "rendered [a-z-]* [v0-9.]*: [0-9]* objects" <<<"$out" | sort -u
  # A value the chart's schema refuses stops the preview, naming the release, without a traceback.
  with_local_releases
  pulumi config set --path platform.certManager.release.values.replicaCount two
  set +e; out="$(pulumi preview --non-interactive 2>&1)"; rc=$?; set -e
  pulumi config rm --path platform.certManager.release.values
  without_local_releases
  [ $rc -ne 0 ] && grep -q "Helm release cert-manager (cert-manager v1.21.1) does not render" <<<"$out" &&
    ! grep -q "Traceback" <<<"$out" || { echo "$out" >&2; echo "a refused chart value was not reported" >&2; return 1; }
}

# Kong's admission webhook is enforced by the API server: with failurePolicy Fail and no
# controller to answer, exactly the objects Kong validates (its resources, credential Secrets) are
# refused, while other Secrets and Services are not. Then back to Ignore, which the e2e runs with.
webhook_enforced() {
  local rc
  pulumi config set --path platform.kong.controller.admissionWebhook.failurePolicy Fail
  pulumi up --yes --non-interactive --skip-preview >/dev/null
  set +e; "$E2E_PYTHON" "$ROOT/e2e/kube.py" webhook-probe kong; rc=$?; set -e
  pulumi config set --path platform.kong.controller.admissionWebhook.failurePolicy Ignore
  pulumi up --yes --non-interactive --skip-preview >/dev/null
  return $rc
}

for stack in "${STACKS[@]}"; do
  POLICY=(--policy-pack "$WORK/project/policy" --policy-pack-config "$WORK/project/policy/config/$stack.json")
  select_stack "$stack"
  step "$stack:bad-config-refused" bad_config_refused "$stack"
  step "$stack:policy-enforced" policy_enforced "$stack"
  step "$stack:releases-render" releases_render "$stack"
  step "$stack:preview" pulumi preview --non-interactive --diff "${POLICY[@]}"
  step "$stack:up" pulumi up --yes --non-interactive --skip-preview "${POLICY[@]}"
  step "$stack:webhook-enforced" webhook_enforced
  step "$stack:preview-no-changes" pulumi preview --non-interactive --expect-no-changes
  step "$stack:read-back" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack"
  step "$stack:destroy" pulumi destroy --yes --non-interactive --skip-preview
  step "$stack:nothing-left" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack" --gone
done
step plugins-from-the-plugin-cache plugin_warnings
e2e_log "timings (ms):"; column -t "$E2E_TIMINGS" >&2
e2e_log "passed: ${STACKS[*]}"
