#!/usr/bin/env bash
# The parts of a managed cluster the local control plane lacks, built once per version and run beside it on
# 127.0.0.1: kwok with one fake node (so pods are scheduled and reach Running), and the real upstream injection
# webhooks behind MutatingWebhookConfigurations — the EKS pod identity webhook (IRSA and EKS Pod Identity) and the
# Azure workload identity webhook.
#
#   hack/peers.sh build                         build (or reuse) the binaries; link them in bin/
#   hack/peers.sh up STATE_DIR KUBECONFIG [OPTIONS]   start in the background (idempotent), register the webhooks and
#                                               the node, and wait until a new pod gets both injections
#   hack/peers.sh down|status STATE_DIR
#
# OPTIONS (each with its default):
#   --region us-east-1                          AWS_REGION / AWS_DEFAULT_REGION the EKS webhook injects
#   --pod-identity-emulator URL                 EKS Pod Identity: inject for the ServiceAccounts that have an
#   --pod-identity-cluster local                  association in this cluster of the in-project EKS emulator
#                                                 (test/emulators/eks-pod-identity); without it, for none
#   --container-credentials-full-uri URL        AWS_CONTAINER_CREDENTIALS_FULL_URI for those pods: the Pod Identity
#                                                 Agent (default http://169.254.170.23/v1/credentials, its address
#                                                 on an EKS node; locally, the emulators' agent endpoint)
#   --azure-tenant-id 00000000-0000-0000-0000-000000000002   AZURE_TENANT_ID unless the ServiceAccount names one
#   --azure-authority-host URL                  AZURE_AUTHORITY_HOST (default: Azure public cloud's,
#                                                 https://login.microsoftonline.com/; locally, the Azure emulator)
#
# Binaries are cached under $KEYLESS_CACHE (default ~/.cache/keyless), keyed by the three pinned versions and a
# hash of test/tools (the Go modules that pin them) and the Go toolchain, as hack/controlplane.sh does.
# Everything listens on 127.0.0.1 except the EKS webhook, whose upstream flags take a port but no address: its
# webhook and metrics ports are free ports on all interfaces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/test/tools
cache=${KEYLESS_CACHE:-$HOME/.cache/keyless}

version_of() { awk -v m="$1" '$1 == m { print $2 }' "$tools/$2/go.mod"; }
kwok_version=$(version_of sigs.k8s.io/kwok kwok)
eks_version=$(version_of github.com/aws/amazon-eks-pod-identity-webhook eks-pod-identity-webhook)
azure_version=$(version_of github.com/Azure/azure-workload-identity azure-workload-identity)
key=$( (cd "$tools" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs cat && go version) | sha256sum | cut -c1-12)
out=$cache/peers-kwok-$kwok_version-eks-$eks_version-azwi-$azure_version-$key

# kwok's own stage files (kustomize/stage/fast: the node becomes Ready and keeps its lease; pods become Running,
# Jobs' pods complete, deleted pods go), copied next to the binary so a cleaned module cache cannot lose them.
stages=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)
binaries=(kwok eks-pod-identity-webhook azure-workload-identity-webhook)

build() {
  local b complete=true
  for b in "${binaries[@]}"; do [ -x "$out/$b" ] || complete=false; done
  if ! $complete; then
    echo "peers: building kwok $kwok_version, EKS pod identity webhook $eks_version and Azure workload identity webhook $azure_version into $out (a cold build takes several minutes)" >&2
    local started=$SECONDS kwok_dir s
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/stages"
    (cd "$tools/kwok" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)
    (cd "$tools/eks-pod-identity-webhook" && go build -trimpath -ldflags "-s -w -X main.webhookVersion=$eks_version" \
      -o "$out.tmp/eks-pod-identity-webhook" github.com/aws/amazon-eks-pod-identity-webhook)
    (cd "$tools/azure-workload-identity" && go build -trimpath \
      -ldflags "-s -w -X github.com/Azure/azure-workload-identity/pkg/version.BuildVersion=$azure_version" \
      -o "$out.tmp/azure-workload-identity-webhook" .)
    kwok_dir=$(cd "$tools/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    for s in "${stages[@]}"; do cp "$kwok_dir/kustomize/stage/$s" "$out.tmp/stages/"; done
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "peers: built in $((SECONDS - started))s" >&2
  fi
  mkdir -p "$root/bin"
  for b in "${binaries[@]}"; do ln -sfn "$out/$b" "$root/bin/$b"; done
}

# The processes `up` starts, each with STATE_DIR/NAME.pid and STATE_DIR/NAME.log.
processes=(kwok eks-pod-identity-webhook azure-workload-identity-webhook pod-identity-sync)
node_name=kwok-node
eks_config=pod-identity-webhook
azure_config=azure-wi-webhook-mutating-webhook-configuration
probe=keyless-peers-probe

# alive STATE NAME: whether NAME runs; every command line has an argument in STATE, so a recycled pid never counts.
alive() {
  local pid args
  pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  args=" $(tr '\0' ' ' <"/proc/$pid/cmdline") "
  [[ $args == *" $1/"* || $args == *" $1 "* ]]
}

kube() { "$root/bin/kubectl" --kubeconfig "$state/kubeconfig" --request-timeout=20s "$@"; }

# free_ports N: N distinct free ports on 127.0.0.1, one a line (all held open until all are known).
free_ports() {
  node -e 'const net = require("net"); const n = Number(process.argv[1]);
    Promise.all(Array.from({ length: n }, () => new Promise((ok) => { const s = net.createServer().listen(0, "127.0.0.1", () => ok(s)); })))
      .then((all) => { for (const s of all) { console.log(s.address().port); s.close(); } });' "$1"
}

start() {
  local name=$1
  shift
  setsid "$@" >"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

# wait_until NAME WHAT CHECK...: runs CHECK until it succeeds; fails with NAME's log if NAME is a process that
# stops, or when 60s pass.
wait_until() {
  local name=$1 what=$2 deadline=$((SECONDS + 60))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -f "$state/$name.pid" ] && ! alive "$state" "$name"; then
      echo "peers: $name stopped before it would $what; last lines of $state/$name.log:" >&2
      tail -n 20 "$state/$name.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "peers: $name did not $what within 60s; see $state/" >&2
      return 1
    fi
    sleep 0.2
  done
}

serving() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$state/tls.crt" "$1")" != 000 ]; }
node_schedulable() {
  [ "$(kube get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}/{.spec.taints}')" = True/ ]
}

# injected: a pod created now (server-side dry run, so nothing is stored) gets both injections — the webhook
# configurations have reached the apiserver and the EKS webhook's ServiceAccount cache has synced.
injected() {
  local names
  names=$(kube create --dry-run=server -o jsonpath='{.spec.containers[0].env[*].name}' -f - <<POD
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$probe", "namespace": "kube-system", "labels": {"azure.workload.identity/use": "true"}},
 "spec": {"serviceAccountName": "$probe", "containers": [{"name": "probe", "image": "registry.example/probe:1"}]}}
POD
  ) || return 1
  [[ " $names " == *" AWS_ROLE_ARN "* && " $names " == *" AZURE_CLIENT_ID "* ]]
}

# register: the node kwok plays and both webhook configurations, as upstream ships them (deploy/ of each project)
# with a URL on 127.0.0.1 instead of an in-cluster Service; a probe ServiceAccount for `injected`.
register() {
  local ca eks_port azure_port
  ca=$(base64 -w0 <"$state/tls.crt")
  eks_port=$(cat "$state/eks-pod-identity-webhook.port")
  azure_port=$(cat "$state/azure-workload-identity-webhook.port")
  kube apply --server-side --force-conflicts --field-manager=keyless-peers -f - >/dev/null <<MANIFESTS
{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Node",
  "metadata": {"name": "$node_name", "annotations": {"kwok.x-k8s.io/node": "fake"},
   "labels": {"kubernetes.io/hostname": "$node_name", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}}},
 {"apiVersion": "v1", "kind": "ServiceAccount",
  "metadata": {"name": "$probe", "namespace": "kube-system",
   "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::000000000000:role/$probe",
    "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"}}},
 {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
  "metadata": {"name": "$eks_config"},
  "webhooks": [{"name": "pod-identity-webhook.amazonaws.com", "failurePolicy": "Ignore",
   "clientConfig": {"url": "https://127.0.0.1:$eks_port/mutate", "caBundle": "$ca"},
   "objectSelector": {"matchExpressions": [{"key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "DoesNotExist"}]},
   "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
   "sideEffects": "None", "admissionReviewVersions": ["v1beta1"]}]},
 {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
  "metadata": {"name": "$azure_config"},
  "webhooks": [{"name": "mutation.azure-workload-identity.io", "failurePolicy": "Fail", "matchPolicy": "Equivalent",
   "clientConfig": {"url": "https://127.0.0.1:$azure_port/mutate-v1-pod", "caBundle": "$ca"},
   "objectSelector": {"matchLabels": {"azure.workload.identity/use": "true"}}, "reinvocationPolicy": "IfNeeded",
   "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
   "sideEffects": "None", "admissionReviewVersions": ["v1", "v1beta1"]}]}
]}
MANIFESTS
}

# unregister: the webhook configurations first, so the apiserver never calls a webhook that is gone; then the
# node (the pod garbage collector removes what was left on it) and the probe.
unregister() {
  [ -f "$state/kubeconfig" ] || return 0
  kube delete --ignore-not-found --wait=false mutatingwebhookconfiguration "$eks_config" "$azure_config" >/dev/null 2>&1 || true
  kube delete --ignore-not-found --wait=false node "$node_name" >/dev/null 2>&1 || true
  kube delete --ignore-not-found --wait=false -n kube-system serviceaccount "$probe" >/dev/null 2>&1 || true
}

# stop_processes: SIGTERM to all at once (each takes a few seconds to shut down gracefully), SIGKILL after 10s.
stop_processes() {
  local name pids=()
  for name in "${processes[@]}"; do
    if alive "$state" "$name"; then pids+=("$(cat "$state/$name.pid")"); fi
    rm -f "$state/$name.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.1; done
  kill -9 "${pids[@]}" 2>/dev/null || true
}

up() {
  local region=us-east-1 pod_identity_emulator='' pod_identity_cluster=local
  local full_uri=http://169.254.170.23/v1/credentials tenant=00000000-0000-0000-0000-000000000002 authority=''
  local options="$*"
  while [ $# -gt 0 ]; do
    case "$1" in
      --region) region=$2 ;;
      --pod-identity-emulator) pod_identity_emulator=$2 ;;
      --pod-identity-cluster) pod_identity_cluster=$2 ;;
      --container-credentials-full-uri) full_uri=$2 ;;
      --azure-tenant-id) tenant=$2 ;;
      --azure-authority-host) authority=$2 ;;
      *) echo "peers up: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2 || { echo "peers up: $1 needs a value" >&2; exit 2; }
  done
  build
  mkdir -p "$state"

  # Running ones are kept only if all of them run, for the same cluster, with the same options.
  local name needed=(kwok eks-pod-identity-webhook azure-workload-identity-webhook) reuse=true ports
  [ -z "$pod_identity_emulator" ] || needed+=(pod-identity-sync)
  for name in "${needed[@]}"; do alive "$state" "$name" || reuse=false; done
  cmp -s "$kubeconfig" "$state/kubeconfig" || reuse=false
  [ "$(cat "$state/options" 2>/dev/null)" = "$options" ] || reuse=false
  if ! $reuse; then
    stop_processes
    cp "$kubeconfig" "$state/kubeconfig"
    echo "$options" >"$state/options"
    if [ ! -f "$state/tls.key" ]; then
      # One self-signed serving certificate for both webhooks, trusted through the configurations' caBundle.
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=keyless-peers \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$state/tls.key" -out "$state/tls.crt" 2>/dev/null
    fi
    mapfile -t ports < <(free_ports 3)
    echo "${ports[0]}" >"$state/eks-pod-identity-webhook.port"
    echo "${ports[1]}" >"$state/azure-workload-identity-webhook.port"

    # Pod IPs from a range of their own, apart from the Services' 10.0.0.0/24.
    local kwok_args=(--kubeconfig "$state/kubeconfig" --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake
      --cidr 10.244.0.0/16)
    for s in "${stages[@]}"; do kwok_args+=(--config "$out/stages/$(basename "$s")"); done
    start kwok "$root/bin/kwok" "${kwok_args[@]}"

    # The managed webhook learns the associations from EKS; here a small loop copies them from the emulator into
    # the file the upstream webhook watches. Without an emulator the file stays empty.
    local associations=$state/pod-identity-associations.json
    echo '{}' >"$associations"
    if [ -n "$pod_identity_emulator" ]; then
      start pod-identity-sync node "$root/hack/pod-identity-sync.ts" --emulator "$pod_identity_emulator" \
        --cluster "$pod_identity_cluster" --file "$associations"
    fi
    start eks-pod-identity-webhook "$root/bin/eks-pod-identity-webhook" --in-cluster=false \
      --kubeconfig "$state/kubeconfig" --tls-cert "$state/tls.crt" --tls-key "$state/tls.key" \
      --port "$(cat "$state/eks-pod-identity-webhook.port")" --metrics-port "${ports[2]}" \
      --aws-default-region "$region" --sts-regional-endpoint=true \
      --watch-container-credentials-config "$associations" --container-credentials-full-uri "$full_uri"

    local azure_env=(KUBECONFIG="$state/kubeconfig" AZURE_TENANT_ID="$tenant" AZURE_ENVIRONMENT=AzurePublicCloud)
    if [ -n "$authority" ]; then
      # A cloud of one's own, as Azure Stack defines one: the webhook injects its activeDirectoryEndpoint.
      printf '{"name": "AzureStackCloud", "activeDirectoryEndpoint": "%s"}\n' "$authority" >"$state/azure-environment.json"
      azure_env=(KUBECONFIG="$state/kubeconfig" AZURE_TENANT_ID="$tenant" AZURE_ENVIRONMENT=AzureStackCloud
        AZURE_ENVIRONMENT_FILEPATH="$state/azure-environment.json")
    fi
    start azure-workload-identity-webhook env "${azure_env[@]}" "$root/bin/azure-workload-identity-webhook" \
      --webhook-cert-dir "$state" --host 127.0.0.1 --port "$(cat "$state/azure-workload-identity-webhook.port")"
  fi

  wait_until eks-pod-identity-webhook serve serving "https://127.0.0.1:$(cat "$state/eks-pod-identity-webhook.port")/healthz"
  wait_until azure-workload-identity-webhook serve serving "https://127.0.0.1:$(cat "$state/azure-workload-identity-webhook.port")/"
  register
  wait_until kwok "make node $node_name Ready and schedulable" node_schedulable
  wait_until "the webhooks" "inject into a new pod" injected
  echo "peers ready: node $node_name (kwok), EKS pod identity webhook on :$(cat "$state/eks-pod-identity-webhook.port"), Azure workload identity webhook on 127.0.0.1:$(cat "$state/azure-workload-identity-webhook.port") (logs in $state)"
}

status() {
  local name code=0 started=false
  for name in "${processes[@]}"; do
    [ -f "$state/$name.pid" ] || continue
    started=true
    if alive "$state" "$name"; then echo "$name: running (pid $(cat "$state/$name.pid"))"; else echo "$name: stopped (see $state/$name.log)"; code=1; fi
  done
  $started || { echo "not running" >&2; return 1; }
  if [ -f "$state/kubeconfig" ]; then
    echo "node $node_name: $(kube get node "$node_name" -o jsonpath='Ready={.status.conditions[?(@.type=="Ready")].status}' 2>&1)"
  fi
  return $code
}

case "${1:-}" in
  build) build ;;
  up)
    [ $# -ge 3 ] || { echo "usage: $0 up STATE_DIR KUBECONFIG [OPTIONS]" >&2; exit 2; }
    state=$(mkdir -p "$2" && cd "$2" && pwd) kubeconfig=$3
    shift 3
    up "$@"
    ;;
  down)
    [ $# -eq 2 ] || { echo "usage: $0 down STATE_DIR" >&2; exit 2; }
    [ -d "$2" ] || exit 0
    state=$(cd "$2" && pwd)
    unregister
    stop_processes
    echo "peers stopped"
    ;;
  status)
    [ $# -eq 2 ] || { echo "usage: $0 status STATE_DIR" >&2; exit 2; }
    [ -d "$2" ] || { echo "not running" >&2; exit 1; }
    state=$(cd "$2" && pwd)
    status
    ;;
  *) echo "usage: $0 build | up STATE_DIR KUBECONFIG [OPTIONS] | down STATE_DIR | status STATE_DIR" >&2; exit 2 ;;
esac
