#!/usr/bin/env bash
# End-to-end: deploy the dev and prod stacks with the real Pulumi engine to a local Kubernetes
# control plane, check them, operate them as a platform team would, and tear them down. One
# command; exits non-zero on any failure.
#
#   e2e/run.sh [STACK ...]        default: dev prod
#
# Every stack: a bad stack file refused -> the policy pack enforced -> every operator release
# rendered by the provider's Helm -> preview -> up -> Kong's admission webhook enforced -> no-change
# preview -> read back (as declared, nothing orphaned, nothing duplicated) -> the pinned hosts' keys
# are the pins clients get -> a team's catalogue stack on it -> destroy -> nothing left.
# Prod also: its first `up` is killed and recovered by the runbook; drift is detected and
# restored; an `up` survives an API-server outage by a rerun; day-2 changes have exact plans; a
# destroy is refused (protection) and the stack is torn down the deliberate way.
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
    e2e_log "failed; logs kept in $WORK/cluster/logs and $WORK/pulumi.log"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

step cluster-up cluster_up "$WORK/cluster"
export KUBECONFIG="$WORK/cluster/kubeconfig" E2E_CLUSTER_DIR="$WORK/cluster"  # set in the step's subshell
pulumi_workspace "$WORK"
cd "$WORK/project"
KUBE=("$E2E_PYTHON" "$ROOT/e2e/kube.py")
OURS="app.kubernetes.io/part-of=api-platform"
UP=(pulumi up --yes --non-interactive --skip-preview)

# expect_failure PATTERN COMMAND...: the command must fail, and print PATTERN (grep -E).
expect_failure() {
  local pattern="$1" out rc; shift
  set +e; out="$("$@" 2>&1)"; rc=$?; set -e
  [ $rc -ne 0 ] && grep -qE "$pattern" <<<"$out" || { echo "$out" >&2; echo "expected a failure matching: $pattern" >&2; return 1; }
}

# wait_for_objects SELECTOR COUNT: until the API server holds COUNT objects matching SELECTOR.
wait_for_objects() {
  local n=0
  for _ in $(seq 600); do
    n="$("${KUBE[@]}" count "$1")"; [ "$n" -ge "$2" ] && return 0; sleep 0.1
  done
  echo "only $n objects match $1" >&2; return 1
}

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
# and nothing registered; so is a key the program would ignore.
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
  pulumi config set minReplicas 5  # what a Pulumi user types first: api-platform:minReplicas
  set +e; out="$(pulumi preview --non-interactive 2>&1)"; rc=$?; set -e
  pulumi config rm minReplicas
  [ $rc -ne 0 ] && grep -q "pulumi config set --path platform.kong.autoscaling.minReplicas" <<<"$out" ||
    { echo "$out" >&2; echo "a stray key was not refused" >&2; return 1; }
}

# With the operator releases on (charts from the shared chart sources), a preview renders every
# release through the Kubernetes provider's own Helm, for this API server's version and APIs.
releases_render() {
  local stack="$1" out rc missing=""
  with_local_releases
  set +e; out="$(pulumi preview --non-interactive "${POLICY[@]}" 2>&1)"; rc=$?; set -e
  without_local_releases
  [ $rc -eq 0 ] || { echo "$out" >&2; echo "the preview with the releases on failed" >&2; return 1; }
  while read -r chart version _repository; do
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
  "${UP[@]}" >/dev/null
  set +e; "${KUBE[@]}" webhook-probe kong; rc=$?; set -e
  pulumi config set --path platform.kong.controller.admissionWebhook.failurePolicy Ignore
  "${UP[@]}" >/dev/null
  return $rc
}

# Read back: every object as declared, nothing of ours undeclared, no object held twice.
read_back() {
  pulumi stack export --file "$WORK/state.json"
  "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$1" --state "$WORK/state.json"
}

# kill_midway SELECTOR COUNT LOG COMMAND...: run an update in a process group of its own and, once
# COUNT objects match SELECTOR, SIGKILL the whole group (as a preempted CI runner is); fails if the
# update ended before the kill landed.
kill_midway() {
  local selector="$1" count="$2" log="$3" pid rc; shift 3
  setsid "$@" >"$log" 2>&1 &
  pid=$!
  wait_for_objects "$selector" "$count"
  kill -KILL -- "-$pid" 2>/dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  [ $rc -eq 137 ] || { echo "the update ended (exit $rc) before it could be interrupted: $log" >&2; return 1; }
}

# The first `up` is killed mid-way (SIGKILL to the engine's process group, as a preempted CI
# runner). The next update is refused (lock); the runbook's recovery (python -m stacks.recover)
# releases the lock, stops the plugins the engine left running, clears the pending creates and
# refreshes; then `up` converges.
interrupted_up_recovers() {
  local stack="$1"
  kill_midway "$OURS" 30 "$WORK/killed-up.log" pulumi up --yes --non-interactive --skip-preview
  e2e_log "engine killed with $("${KUBE[@]}" count "$OURS") objects of ours in the cluster"
  expect_failure "the stack is currently locked" "${UP[@]}"
  "$E2E_PYTHON" -m stacks.recover "$stack" || true  # the diagnosis: exit 1, something to repair
  "$E2E_PYTHON" -m stacks.recover "$stack" --apply >"$WORK/recover.log" || { cat "$WORK/recover.log" >&2; return 1; }
  grep -E "^(released|stopped|recovered)" "$WORK/recover.log"
  # nothing left to repair but the update itself (grep reads it all: `grep -q` could break the pipe)
  "$E2E_PYTHON" -m stacks.recover "$stack" | grep "no lock" >/dev/null
  "${UP[@]}" >/dev/null
}

# Changes made behind the program's back (the HPA scaled, a plugin edited) fail a refreshing
# no-change preview that names them; `up --refresh` puts the declared values back.
drift_detected_and_restored() {
  local hpa=/apis/autoscaling/v2/namespaces/kong/horizontalpodautoscalers/kong
  local plugin=/apis/configuration.konghq.com/v1/kongclusterplugins/global-prometheus
  "${KUBE[@]}" edit "$hpa" '{"spec":{"minReplicas":7}}'
  "${KUBE[@]}" edit "$plugin" '{"config":{"per_consumer":true}}'
  expect_failure "HorizontalPodAutoscaler::kong-hpa\]" pulumi preview --refresh --expect-no-changes --diff --non-interactive
  expect_failure "KongClusterPlugin::apis-global-prometheus\]" pulumi preview --refresh --expect-no-changes --diff --non-interactive
  "${UP[@]}" --refresh >/dev/null
  [ "$("${KUBE[@]}" get "$hpa" spec.minReplicas)" = 3 ] && [ "$("${KUBE[@]}" get "$plugin" config.per_consumer)" = false ] ||
    { echo "drift was not restored" >&2; return 1; }
  pulumi preview --refresh --expect-no-changes --non-interactive >/dev/null
}

# An `up` that loses the API server for 20 seconds fails; a rerun converges.
outage_survived() {
  local stack="$1" pid rc
  pulumi config set --path platform.labels.drill outage  # touches every object
  command pulumi up --yes --non-interactive --skip-preview >"$WORK/outage-up.log" 2>&1 &
  pid=$!
  wait_for_objects "drill=outage" 10
  apiserver_stop "$E2E_CLUSTER_DIR"
  sleep 20
  apiserver_start "$E2E_CLUSTER_DIR"
  set +e; wait "$pid"; rc=$?; set -e
  e2e_log "the update during the outage exited with $rc; $("${KUBE[@]}" count drill=outage) objects updated"
  "$E2E_PYTHON" -m stacks.recover "$stack" | sed 's/^/  /' || true
  "${UP[@]}" >/dev/null
  pulumi preview --expect-no-changes --non-interactive >/dev/null
  read_back "$stack"
  pulumi config rm --path platform.labels.drill
  "${UP[@]}" >/dev/null
}

# The README's one use of PULUMI_SKIP_CHECKPOINTS: a catalogue stack's first deploy. Killed midway,
# it leaves objects in the cluster that its state does not record; the documented way back is the
# runbook's lock release and a rerun, which adopts them (server-side apply upserts).
first_deploy_without_checkpoints() {
  local team="$1" recorded found
  # Awaiting readiness, its Services wait for endpoints no kubelet gives here: the kill lands midway.
  pulumi config set --path catalogue.cluster.skipAwait false
  kill_midway "team=research" 5 "$WORK/first-deploy.log" \
    env PULUMI_SKIP_CHECKPOINTS=true pulumi up --yes --non-interactive --skip-preview "${POLICY[@]}"
  pulumi config set --path catalogue.cluster.skipAwait true
  found="$("${KUBE[@]}" count "team=research")"
  recorded="$(pulumi stack export | "$E2E_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)["deployment"].get("resources") or []))')"
  e2e_log "first deploy killed: $found objects in the cluster, $recorded resources in the state"
  [ "$recorded" -eq 0 ] || { echo "skipped checkpoints still recorded $recorded resources" >&2; return 1; }
  expect_failure "the stack is currently locked" "${UP[@]}"
  (cd .. && "$E2E_PYTHON" -m stacks.recover "$team" --project-dir catalogue --apply) >"$WORK/recover-team.log" ||
    { cat "$WORK/recover-team.log" >&2; return 1; }
  grep -E "^(released|stopped)" "$WORK/recover-team.log"
  PULUMI_SKIP_CHECKPOINTS=true "${UP[@]}" "${POLICY[@]}" >/dev/null
}

# A team's catalogue stack (catalogue/, project api-catalogue) on the platform stack just deployed:
# refused when it reaches outside the namespaces the platform gave it, then deployed with the
# policy pack (a first deploy without checkpoints, killed and rerun), read back, a no-change
# preview, the platform stack's own preview still clean, and destroyed.
team_catalogue() {
  local stack="$1" team="$1-research" out rc
  cd "$WORK/project/catalogue"
  pulumi stack init "$team" --non-interactive >/dev/null 2>&1 || pulumi stack select "$team" --non-interactive
  pulumi config set --path catalogue.cluster.context e2e
  pulumi config set --path catalogue.cluster.kubeconfigPath "$KUBECONFIG"
  pulumi config set --path catalogue.cluster.skipAwait true
  pulumi config set --path catalogue.cluster.deletionPropagation background
  pulumi config set --path 'catalogue.catalogue.apis[0].backend.namespace' ai-services
  set +e; out="$(pulumi preview --non-interactive 2>&1)"; rc=$?; set -e
  pulumi config set --path 'catalogue.catalogue.apis[0].backend.namespace' research
  [ $rc -ne 0 ] && grep -q "refused by the platform stack organization/api-platform/$stack" <<<"$out" &&
    grep -q "namespace ai-services is not one the platform gave catalogue research" <<<"$out" &&
    ! grep -q "Traceback" <<<"$out" && ! grep -qE "^ *\+ +kubernetes:" <<<"$out" ||
    { echo "$out" >&2; echo "the platform did not refuse a catalogue outside its namespaces" >&2; return 1; }
  pulumi preview --non-interactive "${POLICY[@]}" >/dev/null
  first_deploy_without_checkpoints "$team"
  pulumi preview --non-interactive --expect-no-changes >/dev/null
  pulumi stack export --file "$WORK/catalogue-state.json"
  "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$team" --catalogue --state "$WORK/catalogue-state.json"
  (cd "$WORK/project" && pulumi preview --non-interactive --expect-no-changes >/dev/null)
  pulumi destroy --yes --non-interactive --skip-preview >/dev/null
  "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$team" --catalogue --gone
}

# Dynamic policy evaluation as the API server holds it: OPA beside Kong, its Data API on loopback
# only, the ConfigMaps it loads (the platform's policy and the catalogue's, with their data), and
# the opa-authz plugin on the APIs with a policy.
policy_engine_read_back() {
  local deployment=/apis/apps/v1/namespaces/kong/deployments/kong configmaps=/api/v1/namespaces/kong/configmaps
  [ "$("${KUBE[@]}" get "$deployment" spec.template.spec.containers.1.name)" = '"opa"' ] ||
    { echo "no opa container beside Kong" >&2; return 1; }
  "${KUBE[@]}" get "$deployment" spec.template.spec.containers.1.args | grep -q '"--addr=127.0.0.1:8181"' ||
    { echo "OPA's Data API is not bound to loopback" >&2; return 1; }
  "${KUBE[@]}" get "$configmaps/kong-opa-platform" data | grep -q 'package platform.gateway' ||
    { echo "the platform policy is not in its ConfigMap" >&2; return 1; }
  "${KUBE[@]}" get "$configmaps/kong-opa-apis-platform" data | grep -q 'package apis.platform.assistant' ||
    { echo "the catalogue's API policies are not in their ConfigMap" >&2; return 1; }
  "${KUBE[@]}" dump --ours | grep -cE "^KongPlugin[[:space:]]ai-services[[:space:]]opa-authz-" | grep -qx 2 ||
    { echo "not one opa-authz KongPlugin per policed API" >&2; return 1; }
}

# Protection: a destroy of prod is refused and changes nothing.
destroy_refused() {
  expect_failure "because it is protected" pulumi destroy --yes --non-interactive
  read_back "$1"
}

# The deliberate teardown of a protected stack (README, "Tearing a stack down").
teardown_deliberately() {
  pulumi state unprotect --all --yes
  pulumi destroy --yes --non-interactive --skip-preview >/dev/null
  "${KUBE[@]}" dump --ours | grep -v "^Namespace" | sort >"$WORK/retained"
  echo "retained in the cluster:"; cat "$WORK/retained"
  grep -q "^Cluster" "$WORK/retained" && grep -q "^Elasticsearch" "$WORK/retained" ||
    { echo "the data objects were not retained" >&2; return 1; }
  "${KUBE[@]}" delete-namespaces databases observability  # once their data is no longer needed
}

for stack in "${STACKS[@]}"; do
  POLICY=(--policy-pack "$WORK/project/policy" --policy-pack-config "$WORK/project/policy/config/$stack.json")
  select_stack "$stack"
  step "$stack:bad-config-refused" bad_config_refused "$stack"
  step "$stack:policy-enforced" policy_enforced "$stack"
  step "$stack:releases-render" releases_render "$stack"
  step "$stack:preview" pulumi preview --non-interactive --diff "${POLICY[@]}"
  if [ "$stack" = prod ]; then
    step "$stack:interrupted-up-recovers" interrupted_up_recovers "$stack"
  else
    step "$stack:up" "${UP[@]}" "${POLICY[@]}"
  fi
  step "$stack:webhook-enforced" webhook_enforced
  step "$stack:preview-no-changes" pulumi preview --non-interactive --expect-no-changes
  step "$stack:read-back" read_back "$stack"
  step "$stack:served-pins" "$E2E_PYTHON" "$ROOT/e2e/served_pins.py"
  step "$stack:policy-engine-read-back" policy_engine_read_back
  step "$stack:team-catalogue" team_catalogue "$stack"
  if [ "$stack" = prod ]; then
    step "$stack:drift-detected-and-restored" drift_detected_and_restored
    step "$stack:outage-survived" outage_survived "$stack"
    step "$stack:day-2-plans" "$E2E_PYTHON" "$ROOT/e2e/day2.py" "$stack"
    step "$stack:destroy-refused" destroy_refused "$stack"
    step "$stack:teardown-deliberately" teardown_deliberately
  else
    step "$stack:destroy" pulumi destroy --yes --non-interactive --skip-preview
  fi
  step "$stack:nothing-left" "$E2E_PYTHON" "$ROOT/e2e/assert_stack.py" "$stack" --gone
done
step plugins-from-the-plugin-cache plugin_warnings
e2e_log "timings (ms):"; column -t "$E2E_TIMINGS" >&2
e2e_log "passed: ${STACKS[*]}"
