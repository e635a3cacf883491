# shellcheck shell=bash
# Shared by e2e/run.sh and scripts/preview: a local Kubernetes control plane on loopback
# (etcd + kube-apiserver + kube-controller-manager, no scheduler, no kubelet) and a Pulumi
# engine with a local file backend. Source this file; it defines functions only.

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_PYTHON="$E2E_ROOT/.venv/bin/python"
# The upstream CRDs: ../shared/crds beside the repository, or a directory given explicitly.
E2E_CRDS="${API_PLATFORM_CRDS_DIR:-$E2E_ROOT/../shared/crds}"
# The pinned charts' sources (no chart repository is reachable): ../shared/charts, or as given.
E2E_CHARTS="${API_PLATFORM_CHARTS_DIR:-$E2E_ROOT/../shared/charts}"

e2e_log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

free_port() { "$E2E_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# step NAME COMMAND...: run a command (a function: in a subshell with errexit, so any failing
# command fails the step), print its duration, fail loudly.
step() {
  local name="$1" start rc; shift
  start=$(date +%s%N)
  e2e_log "step $name: start"
  set +e; (set -e; "$@"); rc=$?; set -e
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  e2e_log "step $name: $( [ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)" ) in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s"
  echo "$name $ms" >>"${E2E_TIMINGS:-/dev/null}"
  return $rc
}

# certificates DIR: a CA, the API server's serving certificate, an admin client certificate
# (group system:masters) and the service-account signing key pair.
_certificates() {
  local d="$1"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=e2e-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  _signed "$d" apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth"
  _signed "$d" admin "/O=system:masters/CN=e2e-admin" "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

_signed() {
  local d="$1" name="$2" subject="$3" ext="$4"
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf '%b\n' "$ext") -out "$d/$name.crt" 2>/dev/null
}

_kubeconfig() {
  local d="$1" server="$2"
  cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "$server", certificate-authority: "$d/ca.crt"}
users:
- name: e2e-admin
  user: {client-certificate: "$d/admin.crt", client-key: "$d/admin.key"}
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e-admin}
current-context: e2e
EOF
}

# cluster_up DIR: start the control plane; exports KUBECONFIG and E2E_CLUSTER_DIR.
cluster_up() {
  local d="$1" etcd_port peer_port api_port
  mkdir -p "$d/etcd" "$d/logs" "$d/pids"
  _certificates "$d"
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  echo "https://127.0.0.1:$api_port" >"$d/server"
  echo "$etcd_port" >"$d/etcd-port"
  _kubeconfig "$d" "https://127.0.0.1:$api_port"
  etcd --data-dir "$d/etcd" --log-level warn \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" >"$d/logs/etcd.log" 2>&1 &
  echo $! >"$d/pids/etcd"
  export KUBECONFIG="$d/kubeconfig" E2E_CLUSTER_DIR="$d"
  apiserver_start "$d" || return 1
  kube-controller-manager --kubeconfig "$d/kubeconfig" --authentication-kubeconfig "$d/kubeconfig" \
    --authorization-kubeconfig "$d/kubeconfig" --leader-elect=false --secure-port 0 \
    --service-account-private-key-file "$d/sa.key" --root-ca-file "$d/ca.crt" \
    --controllers '*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route' \
    >"$d/logs/kube-controller-manager.log" 2>&1 &
  echo $! >"$d/pids/kube-controller-manager"
  [ -d "$E2E_CRDS" ] || { e2e_log "CRD directory $E2E_CRDS not found (set API_PLATFORM_CRDS_DIR)"; return 1; }
  "$E2E_PYTHON" "$E2E_ROOT/e2e/kube.py" install-crds "$E2E_CRDS" >&2
}

# apiserver_start DIR: (re)start kube-apiserver on the cluster's port and wait until it is ready.
apiserver_start() {
  local d="$1" api_port
  api_port="$(sed 's/.*://' "$d/server")"
  kube-apiserver --etcd-servers "http://127.0.0.1:$(cat "$d/etcd-port")" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" --client-ca-file "$d/ca.crt" \
    --service-cluster-ip-range 10.96.0.0/16 --authorization-mode RBAC \
    --service-account-issuer "https://127.0.0.1:$api_port" --service-account-key-file "$d/sa.pub" \
    --service-account-signing-key-file "$d/sa.key" --disable-admission-plugins ServiceAccount \
    --endpoint-reconciler-type none --enable-aggregator-routing \
    >>"$d/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$d/pids/kube-apiserver"
  "$E2E_PYTHON" "$E2E_ROOT/e2e/kube.py" wait-ready || { tail -20 "$d/logs/kube-apiserver.log" >&2; return 1; }
}

# stop_process FILE: stop the process whose pid FILE holds (TERM, then KILL), and forget it.
stop_process() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

# apiserver_stop DIR: take the API server down (an outage: etcd keeps the data).
apiserver_stop() { stop_process "$1/pids/kube-apiserver"; }

# cluster_down DIR: stop every process cluster_up started.
cluster_down() {
  local d="$1" name
  [ -d "$d/pids" ] || return 0
  for name in kube-controller-manager kube-apiserver etcd; do stop_process "$d/pids/$name"; done
}

# pulumi_workspace DIR: a copy of the project (git-tracked files plus working-tree edits) using
# the repository's virtualenv, a local file backend and a fixed passphrase; exports PULUMI_*.
# The resource plugins the toolchain built are installed into this Pulumi home the way a user
# installs them (`pulumi plugin install`), and nothing is taken from PATH: the CLI's bundled
# language host sits beside it, every provider comes from the plugin cache.
pulumi_workspace() {
  local w="$1" plugins name version binary
  mkdir -p "$w/project" "$w/state" "$w/home"
  # tracked and new files as they are in the working tree (a file deleted there is not copied)
  (cd "$E2E_ROOT" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$w/project")
  ln -s "$E2E_ROOT/.venv" "$w/project/.venv"
  export PULUMI_HOME="$w/home" PULUMI_BACKEND_URL="file://$w/state" PULUMI_CONFIG_PASSPHRASE=e2e-only \
    PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
    PULUMI_IGNORE_AMBIENT_PLUGINS=true E2E_PULUMI_LOG="$w/pulumi.log"
  plugins="$(dirname "$(type -P pulumi)")/plugins.tsv"
  [ -f "$plugins" ] || { e2e_log "no $plugins: run e2e/toolchain.sh"; return 1; }
  while IFS=$'\t' read -r name version binary; do
    command pulumi plugin install resource "$name" "$version" --file "$binary" >/dev/null 2>&1 ||
      { e2e_log "could not install the $name $version plugin from $binary"; return 1; }
  done <"$plugins"
}

# pulumi ARGS...: the CLI, with everything it prints also kept in $E2E_PULUMI_LOG, so a run can
# check afterwards that no plugin came from PATH and no plugin version was questioned.
pulumi() {
  if [ -z "${E2E_PULUMI_LOG:-}" ]; then command pulumi "$@"; return; fi
  command pulumi "$@" > >(tee -a "$E2E_PULUMI_LOG") 2> >(tee -a "$E2E_PULUMI_LOG" >&2)
}

# plugin_warnings: fail when the CLI warned about where a plugin came from or its version.
plugin_warnings() {
  local found
  [ -s "$E2E_PULUMI_LOG" ] || { echo "no Pulumi output was captured in $E2E_PULUMI_LOG" >&2; return 1; }
  found="$(grep -iE 'from \$PATH|warning:.*plugin|plugin.*(older|newer|version mismatch)' "$E2E_PULUMI_LOG" || true)"
  [ -z "$found" ] || { echo "plugin warnings from the Pulumi CLI:" >&2; echo "$found" >&2; return 1; }
}

# select_stack STACK: create the stack in the workspace and point it at the local cluster with
# the settings only this configuration uses: no kubelet (skip readiness waits), no chart
# repositories (operators off; their CRDs are installed from ../shared/crds), test secrets.
select_stack() {
  local stack="$1" key
  pulumi stack init "$stack" --non-interactive >/dev/null 2>&1 || pulumi stack select "$stack" --non-interactive
  pulumi config set --path platform.cluster.context e2e
  pulumi config set --path platform.cluster.kubeconfigPath "$KUBECONFIG"
  pulumi config set --path platform.cluster.skipAwait true
  pulumi config set --path platform.cluster.deletionPropagation background
  pulumi config set --path platform.installOperators false
  # No controller runs to answer Kong's admission webhook (see webhook_enforced in e2e/run.sh).
  pulumi config set --path platform.kong.controller.admissionWebhook.failurePolicy Ignore
  for key in $("$E2E_PYTHON" -c 'from stacks.loader import SECURE_KEYS; print(*SECURE_KEYS)'); do
    pulumi config set --secret "$key" "placeholder-$key"
  done
}

# with_local_releases: switch the operator releases on, reading their charts from $E2E_CHARTS
# (the program renders each with the provider's own Helm before registering it).
with_local_releases() {
  [ -d "$E2E_CHARTS" ] || { e2e_log "chart directory $E2E_CHARTS not found (set API_PLATFORM_CHARTS_DIR)"; return 1; }
  pulumi config set --path platform.installOperators true
  pulumi config set --path platform.chartsDirectory "$(cd "$E2E_CHARTS" && pwd)"
  pulumi config set --path platform.kong.controller.crdsSource "$(cd "$E2E_CRDS" && pwd)/kong/custom-resource-definitions.yaml"
}

# without_local_releases: back to what select_stack set.
without_local_releases() {
  pulumi config set --path platform.installOperators false
  pulumi config rm --path platform.chartsDirectory
  pulumi config rm --path platform.kong.controller.crdsSource
}

# expected_releases STACK: "chart version repository" of every release the committed stack file installs.
expected_releases() {
  "$E2E_PYTHON" -m stacks.validate --releases "$E2E_ROOT/Pulumi.$1.yaml"
}
