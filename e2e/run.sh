#!/usr/bin/env bash
# End-to-end: deploy the dev and prod stacks with the real Pulumi engine to a local Kubernetes
# control plane, check them, and destroy them. One command; exits non-zero on any failure.
#
#   e2e/run.sh [STACK ...]        default: dev prod
#
# For each stack: preview (with the policy pack when present) -> up -> preview that must show
# no changes -> read back from the API server -> destroy -> nothing left behind.
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
POLICY=()
[ -f policy/PulumiPolicy.yaml ] && POLICY=(--policy-pack "$WORK/project/policy")

for stack in "${STACKS[@]}"; do
  select_stack "$stack"
  step "$stack:preview" pulumi preview --non-interactive --diff "${POLICY[@]}"
  step "$stack:up" pulumi up --yes --non-interactive --skip-preview "${POLICY[@]}"
  step "$stack:preview-no-changes" pulumi preview --non-interactive --expect-no-changes
  step "$stack:read-back" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack"
  step "$stack:destroy" pulumi destroy --yes --non-interactive --skip-preview
  step "$stack:nothing-left" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack" --gone
done
e2e_log "timings (ms):"; column -t "$E2E_TIMINGS" >&2
e2e_log "passed: ${STACKS[*]}"
