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

for stack in "${STACKS[@]}"; do
  POLICY=(--policy-pack "$WORK/project/policy" --policy-pack-config "$WORK/project/policy/config/$stack.json")
  select_stack "$stack"
  step "$stack:bad-config-refused" bad_config_refused "$stack"
  step "$stack:policy-enforced" policy_enforced "$stack"
  step "$stack:preview" pulumi preview --non-interactive --diff "${POLICY[@]}"
  step "$stack:up" pulumi up --yes --non-interactive --skip-preview "${POLICY[@]}"
  step "$stack:preview-no-changes" pulumi preview --non-interactive --expect-no-changes
  step "$stack:read-back" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack"
  step "$stack:destroy" pulumi destroy --yes --non-interactive --skip-preview
  step "$stack:nothing-left" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack" --gone
done
step plugins-from-the-plugin-cache plugin_warnings
e2e_log "timings (ms):"; column -t "$E2E_TIMINGS" >&2
e2e_log "passed: ${STACKS[*]}"
