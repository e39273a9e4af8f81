#!/usr/bin/env bash
# The local Keyless system for `make dev`, `make dev-up` and `make dev-down`, all on 127.0.0.1, no cloud account:
# the control plane, moto as AWS, the in-project GCP and Azure emulators, the CRDs, CloudAccounts `local-aws`,
# `local-gcp` and `local-azure`, and the operator; kwok's node and the EKS and Azure injection webhooks run the pods.
#
#   hack/dev.sh up [--no-operator]   start everything in the background (idempotent); writes .dev/env
#   hack/dev.sh operator             run the operator in the foreground (what `make dev` ends with)
#   hack/dev.sh usage                print how to use the running system
#   hack/dev.sh down                 stop everything `up` started
#
# `up` waits up to KEYLESS_DEV_START_TIMEOUT seconds (default 60) for each emulator to write its endpoint.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dev=$root/.dev
cd "$root"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# An endpoint counts only as a complete line, so a write still under way (no newline yet) is never taken for one.
endpoint_pattern='^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]+)?(/[^[:space:]]*)?$'
json_endpoint_pattern='"endpoint":"([^"]*)"'

# endpoint_in FILE [json]: prints the http(s) URL that FILE's first line is (or, with json, holds as "endpoint");
# fails while that line is missing, incomplete or something else.
endpoint_in() {
  local line
  [ -f "$1" ] || return 1
  IFS= read -r line <"$1" || return 1
  if [ "${2:-}" = json ]; then
    [[ $line =~ $json_endpoint_pattern ]] || return 1
    line=${BASH_REMATCH[1]}
  fi
  [[ $line =~ $endpoint_pattern ]] || return 1
  printf '%s\n' "$line"
}

# wait_for NAME WHAT CHECK...: runs CHECK until it succeeds, failing loudly with NAME's log if the process in
# $dev/NAME.pid stops first or KEYLESS_DEV_START_TIMEOUT seconds (60 unless set: a loaded machine is slow) pass.
wait_for() {
  local name=$1 what=$2 timeout=${KEYLESS_DEV_START_TIMEOUT:-60} deadline
  shift 2
  [[ $timeout =~ ^[1-9][0-9]*$ ]] || { echo "KEYLESS_DEV_START_TIMEOUT wants whole seconds, not '$timeout'" >&2; exit 2; }
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null; do
    if ! alive "$dev/$name.pid"; then
      echo "$name stopped before it would $what; see $dev/$name.log" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$name did not $what within ${timeout}s (KEYLESS_DEV_START_TIMEOUT); see $dev/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# wait_endpoint NAME FILE [json]: waits for the endpoint of emulator NAME in FILE, also when an earlier `up` started
# the emulator and gave up before that endpoint came.
wait_endpoint() { wait_for "$1" "write a complete http(s) endpoint to $2" endpoint_in "$2" "${3:-}"; }

# dev_endpoint NAME: the endpoint in $dev/NAME.endpoint, or a loud failure rather than an empty one.
dev_endpoint() {
  endpoint_in "$dev/$1.endpoint" && return
  echo "no complete http(s) endpoint in $dev/$1.endpoint; run make dev-up (after make dev-down if it persists)" >&2
  exit 1
}

start_moto() {
  local endpoint
  if ! alive "$dev/moto.pid"; then
    local port
    port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    # Written whole (a rename is atomic), so no reader ever sees half an endpoint.
    echo "http://127.0.0.1:$port" >"$dev/moto.endpoint.tmp"
    mv "$dev/moto.endpoint.tmp" "$dev/moto.endpoint"
    setsid .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$dev/moto.log" 2>&1 < /dev/null &
    echo $! >"$dev/moto.pid"
  fi
  wait_endpoint moto "$dev/moto.endpoint"
  endpoint=$(dev_endpoint moto) || exit 1
  wait_for moto "answer at $endpoint" curl -sf --max-time 2 -o /dev/null "$endpoint/moto-api/"
}

# moto has no EKS Pod Identity routes: the in-project emulator serves them and forwards the rest of EKS to moto.
start_pod_identity() {
  if ! alive "$dev/pod-identity.pid"; then
    local upstream
    upstream=$(dev_endpoint moto) || exit 1
    rm -f "$dev/pod-identity.endpoint"  # the redirect below truncates it only once the background job runs: never read the last run's endpoint
    setsid node test/emulators/eks-pod-identity/main.ts --upstream "$upstream" >"$dev/pod-identity.endpoint" 2>"$dev/pod-identity.log" < /dev/null &
    echo $! >"$dev/pod-identity.pid"
  fi
  wait_endpoint pod-identity "$dev/pod-identity.endpoint"
}

# The in-project GCP emulator, seeded with the project, bucket, topic and secret config/samples/gcp-*.yaml use.
start_gcp() {
  if ! alive "$dev/gcp.pid"; then
    rm -f "$dev/gcp.endpoint"
    setsid node test/emulators/gcp/main.ts --port 0 --project keyless-dev:123456789012 --bucket your-org-book-covers \
      --topic keyless-dev/orders --secret keyless-dev/db-password >"$dev/gcp.endpoint" 2>"$dev/gcp.log" < /dev/null &
    echo $! >"$dev/gcp.pid"
  fi
  wait_endpoint gcp "$dev/gcp.endpoint"
}

# The in-project Azure ARM emulator over HTTPS, with a CA of its own in .dev/azure (trusted via NODE_EXTRA_CA_CERTS),
# subscription 00000000-0000-0000-0000-000000000001 and the resource groups config/samples/*azure*.yaml use.
start_azure() {
  if ! alive "$dev/azure.pid"; then
    rm -f "$dev/azure.json"
    setsid node test/emulators/azure/main.ts --port 0 --ca-dir "$dev/azure" --tenant 00000000-0000-0000-0000-000000000002 \
      --resource-group 00000000-0000-0000-0000-000000000001/keyless-identities \
      --resource-group 00000000-0000-0000-0000-000000000001/bookstore-data >"$dev/azure.json" 2>"$dev/azure.log" < /dev/null &
    echo $! >"$dev/azure.pid"
  fi
  wait_endpoint azure "$dev/azure.json" json
  endpoint_in "$dev/azure.json" json >"$dev/azure.endpoint.tmp"
  mv "$dev/azure.endpoint.tmp" "$dev/azure.endpoint"
}

# The checking STS / EKS Auth front (test/emulators/aws-sts) in front of the Pod Identity emulator, and the Pod
# Identity Agent of EKS cluster `local` on a port of its own: exchanges are checked against this control plane's keys.
start_aws_sts() {
  local line
  if ! alive "$dev/aws-sts.pid"; then
    local upstream
    upstream=$(dev_endpoint pod-identity) || exit 1
    rm -f "$dev/aws-sts.json"
    setsid node test/emulators/aws-sts/main.ts --upstream "$upstream" --kubeconfig "$dev/kubeconfig" --cluster local \
      --agent-cluster local >"$dev/aws-sts.json" 2>"$dev/aws-sts.log" < /dev/null &
    echo $! >"$dev/aws-sts.pid"
  fi
  wait_endpoint aws-sts "$dev/aws-sts.json" json
  endpoint_in "$dev/aws-sts.json" json >"$dev/aws-sts.endpoint.tmp"
  mv "$dev/aws-sts.endpoint.tmp" "$dev/aws-sts.endpoint"
  IFS= read -r line <"$dev/aws-sts.json"
  [[ $line =~ \"agentUri\":\"([^\"]*)\" ]] || { echo "no agentUri in $dev/aws-sts.json; see $dev/aws-sts.log" >&2; exit 1; }
  printf '%s\n' "${BASH_REMATCH[1]}" >"$dev/pod-identity-agent.endpoint.tmp"
  mv "$dev/pod-identity-agent.endpoint.tmp" "$dev/pod-identity-agent.endpoint"
}

# The GCP and Azure emulators verify this control plane's ServiceAccount tokens: its issuer and keys, trusted by
# Entra ID and by the workload pool keyless-dev.svc.id.goog (any identity provider in the STS audience).
trust_cluster_issuer() {
  local config jwks issuer gcp azure
  config=$(bin/kubectl --kubeconfig "$dev/kubeconfig" get --raw /.well-known/openid-configuration) || exit 1
  jwks=$(bin/kubectl --kubeconfig "$dev/kubeconfig" get --raw /openid/v1/jwks) || exit 1
  [[ $config =~ \"issuer\":\"([^\"]*)\" ]] || { echo "no issuer in the control plane's OIDC discovery document" >&2; exit 1; }
  issuer=${BASH_REMATCH[1]}
  gcp=$(dev_endpoint gcp) || exit 1
  azure=$(dev_endpoint azure) || exit 1
  curl -sSf -o /dev/null -H 'content-type: application/json' \
    -d "{\"pool\":\"keyless-dev.svc.id.goog\",\"issuer\":\"$issuer\",\"jwks\":$jwks}" "$gcp/__emulator/pools"
  curl -sSf -o /dev/null --cacert "$dev/azure/ca.crt" -H 'content-type: application/json' \
    -d "{\"issuer\":\"$issuer\",\"jwks\":$jwks}" "$azure/__emulator/issuers"
}

# Appends the checking token-exchange endpoints to .dev/env (after write_env, whose STS endpoint this replaces), for
# SDKs and the aws CLI used by hand and for the operator's CredentialsVerified check.
write_exchange_env() {
  local sts agent gcp azure
  sts=$(dev_endpoint aws-sts) || exit 1
  agent=$(dev_endpoint pod-identity-agent) || exit 1
  gcp=$(dev_endpoint gcp) || exit 1
  azure=$(dev_endpoint azure) || exit 1
  cp "$dev/env" "$dev/env.tmp"
  cat >>"$dev/env.tmp" <<ENV
# Token exchanges, checked as the clouds check them (signature against this cluster's keys, issuer, audience, expiry,
# trust): STS and EKS Auth in front of moto; the Pod Identity Agent of cluster local (what the pod identity webhook
# injects as AWS_CONTAINER_CREDENTIALS_FULL_URI); Entra ID, whose authority host is the ARM emulator; Google STS
# (/v1/token) and IAM Credentials (generateAccessToken), served by the GCP emulator's root.
export AWS_ENDPOINT_URL_STS=$sts AWS_ENDPOINT_URL_EKS_AUTH=$sts KEYLESS_POD_IDENTITY_AGENT_URI=$agent
export AZURE_AUTHORITY_HOST=$azure KEYLESS_AZURE_AUTHORITY_HOST=$azure
export KEYLESS_GCP_STS_ENDPOINT=$gcp KEYLESS_GCP_IAMCREDENTIALS_ENDPOINT=$gcp
ENV
  mv "$dev/env.tmp" "$dev/env"
}

write_env() {
  local moto eks gcp azure
  # Read up front: a failing command substitution inside the heredoc would not stop the script (set -e ignores it).
  moto=$(dev_endpoint moto) || exit 1
  eks=$(dev_endpoint pod-identity) || exit 1
  gcp=$(dev_endpoint gcp) || exit 1
  azure=$(dev_endpoint azure) || exit 1
  cat >"$dev/env.tmp" <<ENV
# Source this file to use the local Keyless system: . .dev/env
export KUBECONFIG=$dev/kubeconfig
# bin/kubectl, and plugins/kubectl-keyless for \`kubectl keyless\`.
export PATH=$root/bin:$root/plugins:\$PATH
# moto stands in for AWS (IAM, STS, EKS clusters), behind the in-project Pod Identity emulator; any credentials work.
export AWS_ENDPOINT_URL_IAM=$moto AWS_ENDPOINT_URL_EKS=$eks AWS_ENDPOINT_URL_STS=$moto
export AWS_ACCESS_KEY_ID=AKIDKEYLESSDEV AWS_SECRET_ACCESS_KEY=keyless-dev AWS_REGION=us-east-1
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
# The in-project emulator stands in for Google Cloud (IAM, Resource Manager, Storage, Pub/Sub, Secret Manager).
export KEYLESS_GCP_ENDPOINT=$gcp KEYLESS_GCP_ACCESS_TOKEN=keyless-dev
# The in-project ARM emulator stands in for Azure (managed identities, role assignments); HTTPS with its own CA.
export KEYLESS_AZURE_ENDPOINT=$azure KEYLESS_AZURE_CREDENTIAL=static NODE_EXTRA_CA_CERTS=$dev/azure/ca.crt
ENV
  mv "$dev/env.tmp" "$dev/env"
}

operator_env() {
  local var
  # shellcheck source=/dev/null
  . "$dev/env"
  # A .dev/env from before write_env checked its endpoints may hold an empty one, which the operator dies on.
  for var in AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_EKS AWS_ENDPOINT_URL_STS KEYLESS_GCP_ENDPOINT KEYLESS_AZURE_ENDPOINT; do
    if ! [[ ${!var:-} =~ $endpoint_pattern ]]; then
      echo "$var in $dev/env is not an http(s) endpoint; run make dev-up (after make dev-down if it persists)" >&2
      exit 1
    fi
  done
  export KUBECONFIG=$dev/operator.kubeconfig KEYLESS_LEADER_ELECTION_NAMESPACE=keyless-system KEYLESS_RESYNC_SECONDS=60
}

# kwok's node and the real EKS and Azure injection webhooks (hack/peers.sh, state in .dev/peers), after the emulators
# they point pods at. EKS Pod Identity follows the associations of cluster `local` in the Pod Identity emulator, as the
# webhook EKS manages follows its cluster's; AZURE_AUTHORITY_HOST is the Azure emulator, which serves Entra ID.
# AWS_CONTAINER_CREDENTIALS_FULL_URI is the Pod Identity Agent in .dev/pod-identity-agent.endpoint once an emulator
# serves one, and until then a loopback placeholder nothing answers (the webhook's injection is the same either way).
start_peers() {
  local eks azure agent
  eks=$(dev_endpoint pod-identity) || exit 1
  azure=$(dev_endpoint azure) || exit 1
  agent=$(endpoint_in "$dev/pod-identity-agent.endpoint") || agent=http://127.0.0.1:80/v1/credentials
  hack/peers.sh up "$dev/peers" "$dev/kubeconfig" --pod-identity-emulator "$eks" --pod-identity-cluster local \
    --container-credentials-full-uri "$agent" --azure-tenant-id 00000000-0000-0000-0000-000000000002 \
    --azure-authority-host "$azure"
}

stop_peers() { hack/peers.sh down "$dev/peers"; }

# Sourced (test/hack/dev-endpoints.test.ts does), this file only defines the functions above.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi

case "${1:-}" in
  up)
    mkdir -p "$dev"
    hack/controlplane.sh up "$dev/controlplane" "$dev/kubeconfig"
    start_moto
    start_pod_identity
    start_aws_sts
    start_gcp
    start_azure
    write_env
    trust_cluster_issuer
    write_exchange_env
    start_peers
    moto=$(dev_endpoint moto) && gcp=$(dev_endpoint gcp) && azure=$(dev_endpoint azure) || exit 1
    KEYLESS_TEST_KUBECONFIG=$dev/kubeconfig node hack/dev-setup.ts "$dev" "$moto" "$gcp" "$azure"
    if [ "${2:-}" = --no-operator ] && alive "$dev/operator.pid"; then
      kill "$(cat "$dev/operator.pid")" && rm -f "$dev/operator.pid" && echo "stopped the background operator; it runs in the foreground now"
    fi
    if [ "${2:-}" != --no-operator ] && ! alive "$dev/operator.pid"; then
      (operator_env && exec setsid node src/main.ts >"$dev/operator.log" 2>&1 < /dev/null) &
      echo $! >"$dev/operator.pid"
      KUBECONFIG=$dev/kubeconfig bin/kubectl wait --for=condition=Ready --timeout=60s cloudaccount/local-aws cloudaccount/local-gcp cloudaccount/local-gcp-federation cloudaccount/local-azure >/dev/null
      echo "operator running in the background (logs: .dev/operator.log)"
    fi
    ;;
  operator)
    operator_env
    exec node src/main.ts
    ;;
  usage)
    cat <<USAGE

Keyless is running locally: control plane, moto (AWS), CloudAccount local-aws. In another shell:

  . .dev/env
  kubectl apply -f config/samples/aws-irsa.yaml
  kubectl wait --for=condition=Ready -n bookstore workloadidentity/catalog
  kubectl get wi -A -o wide
  kubectl describe wi -n bookstore catalog
  aws --endpoint-url \$AWS_ENDPOINT_URL_IAM iam get-role --role-name \$(kubectl get wi -n bookstore catalog -o jsonpath='{.status.aws.roleName}')   # if you have the aws CLI

Google Cloud (CloudAccount local-gcp: project keyless-dev in the in-project emulator):

  kubectl apply -f config/samples/gcp-workload-identity.yaml
  kubectl wait --for=condition=Ready -n bookstore workloadidentity/reviews workloadidentity/orders
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM=\$KEYLESS_GCP_ENDPOINT/ CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER=\$KEYLESS_GCP_ENDPOINT/ CLOUDSDK_AUTH_ACCESS_TOKEN=dev
  gcloud iam service-accounts list --project keyless-dev; gcloud projects get-iam-policy keyless-dev   # gcloud, pointed at the emulator

One pod, two clouds (CloudAccount local-gcp-federation: Workload Identity Federation through the emulator's pool
local-clusters, which trusts this cluster's issuer; docs/any-cluster-any-cloud.md):

  kubectl apply -f config/samples/cross-cloud.yaml
  kubectl wait --for=condition=Ready -n bookstore workloadidentity/shipping-aws workloadidentity/shipping
  kubectl get cm -n bookstore shipping-gcp-credentials -o jsonpath='{.data.credential-configuration\.json}'

Azure (CloudAccount local-azure: subscription 00000000-0000-0000-0000-000000000001 in the in-project ARM emulator):

  kubectl apply -f config/samples/azure-workload-identity.yaml
  kubectl wait --for=condition=Ready -n bookstore workloadidentity/inventory
  kubectl get sa -n bookstore inventory-sa -o jsonpath='{.metadata.annotations}'
  curl -s --cacert .dev/azure/ca.crt \$KEYLESS_AZURE_ENDPOINT/__emulator/state      # identities, credentials, role assignments

Token exchanges, checked as the clouds check them (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_EKS_AUTH, AZURE_AUTHORITY_HOST,
KEYLESS_GCP_STS_ENDPOINT in .dev/env), e.g. the IRSA role of the sample above for its ServiceAccount's token:

  aws sts assume-role-with-web-identity --role-session-name me --role-arn \$(kubectl get wi -n bookstore catalog -o jsonpath='{.status.aws.roleArn}') \\
    --web-identity-token \$(kubectl create token -n bookstore catalog-sa --audience sts.amazonaws.com)

Pods run on kwok's node, and the real EKS pod identity and Azure workload identity webhooks inject credentials when a
pod is created; the AWS and Azure samples have a Deployment (GKE has no webhook: its metadata server, which the local
cluster lacks, makes the exchange). Once its WorkloadIdentity is Ready (a pod created before that has
no credentials: kubectl rollout restart, as WorkloadsUpToDate says), see what a pod got:

  kubectl get pods -n bookstore -o wide                                                       # Running on kwok-node
  kubectl get pod -n bookstore -l app=catalog -o jsonpath='{range .items[0].spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}'     # IRSA
  kubectl get pod -n shop -l app=orders -o jsonpath='{range .items[0].spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}'          # EKS Pod Identity (config/samples/aws-pod-identity.yaml)
  kubectl get pod -n bookstore -l app=inventory -o jsonpath='{range .items[0].spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}'   # AKS
  kubectl get pod -n bookstore -l app=catalog -o jsonpath='{.items[0].spec.volumes[*].name}'                                             # the projected token volumes

The kubectl plugin (docs/kubectl-plugin.md): every identity and its first step not Ready, one workload's whole chain,
and the WorkloadIdentities that would adopt identities made by hand (it writes nothing):

  kubectl keyless status -A
  kubectl keyless explain deploy/catalog -n bookstore
  kubectl keyless migrate -A

Every local CloudAccount has verification on: Keyless mints each ServiceAccount's token and makes the exchange a pod
would, and CredentialsVerified says what the cloud answered (docs/verification.md):

  kubectl get wi -A -o custom-columns='NS:.metadata.namespace,NAME:.metadata.name,VERIFIED:.status.conditions[?(@.type=="CredentialsVerified")].reason'
  kubectl get wi -n bookstore catalog -o jsonpath='{.status.conditions[?(@.type=="CredentialsVerified")].message}'

Stop with Ctrl-C (the operator) and make dev-down (everything else).

USAGE
    ;;
  down)
    stop_peers
    for name in operator aws-sts pod-identity moto gcp azure; do
      if alive "$dev/$name.pid"; then kill "$(cat "$dev/$name.pid")" && echo "$name stopped"; fi
      rm -f "$dev/$name.pid"
    done
    hack/controlplane.sh down "$dev/controlplane"
    ;;
  *) echo "usage: $0 up [--no-operator] | operator | usage | down" >&2; exit 2 ;;
esac
