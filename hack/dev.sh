#!/usr/bin/env bash
# The local Keyless system for `make dev`, `make dev-up` and `make dev-down`, all on 127.0.0.1, no cloud account:
# the control plane, moto as AWS, the in-project GCP and Azure emulators, the CRDs, CloudAccounts `local-aws`,
# `local-gcp` and `local-azure`, and the operator.
#
#   hack/dev.sh up [--no-operator]   start everything in the background (idempotent); writes .dev/env
#   hack/dev.sh operator             run the operator in the foreground (what `make dev` ends with)
#   hack/dev.sh usage                print how to use the running system
#   hack/dev.sh down                 stop everything `up` started
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dev=$root/.dev
cd "$root"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_moto() {
  if alive "$dev/moto.pid"; then return; fi
  local port
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  setsid .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$dev/moto.log" 2>&1 < /dev/null &
  echo $! >"$dev/moto.pid"
  echo "http://127.0.0.1:$port" >"$dev/moto.endpoint"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto did not start; see $dev/moto.log" >&2; exit 1; }
}

# moto has no EKS Pod Identity routes: the in-project emulator serves them and forwards the rest of EKS to moto.
start_pod_identity() {
  if alive "$dev/pod-identity.pid"; then return; fi
  setsid node test/emulators/eks-pod-identity/main.ts --upstream "$(cat "$dev/moto.endpoint")" >"$dev/pod-identity.endpoint" 2>"$dev/pod-identity.log" < /dev/null &
  echo $! >"$dev/pod-identity.pid"
  for _ in $(seq 100); do
    [ -s "$dev/pod-identity.endpoint" ] && return
    sleep 0.1
  done
  echo "the Pod Identity emulator did not start; see $dev/pod-identity.log" >&2
  exit 1
}

# The in-project GCP emulator, seeded with the project, bucket, topic and secret config/samples/gcp-*.yaml use.
start_gcp() {
  if alive "$dev/gcp.pid"; then return; fi
  setsid node test/emulators/gcp/main.ts --port 0 --project keyless-dev:123456789012 --bucket your-org-book-covers \
    --topic keyless-dev/orders --secret keyless-dev/db-password >"$dev/gcp.endpoint" 2>"$dev/gcp.log" < /dev/null &
  echo $! >"$dev/gcp.pid"
  for _ in $(seq 100); do
    [ -s "$dev/gcp.endpoint" ] && return
    sleep 0.1
  done
  echo "the GCP emulator did not start; see $dev/gcp.log" >&2
  exit 1
}

# The in-project Azure ARM emulator over HTTPS, with a CA of its own in .dev/azure (trusted via NODE_EXTRA_CA_CERTS),
# subscription 00000000-0000-0000-0000-000000000001 and the resource groups config/samples/*azure*.yaml use.
start_azure() {
  if alive "$dev/azure.pid"; then return; fi
  setsid node test/emulators/azure/main.ts --port 0 --ca-dir "$dev/azure" --tenant 00000000-0000-0000-0000-000000000002 \
    --resource-group 00000000-0000-0000-0000-000000000001/keyless-identities \
    --resource-group 00000000-0000-0000-0000-000000000001/bookstore-data >"$dev/azure.json" 2>"$dev/azure.log" < /dev/null &
  echo $! >"$dev/azure.pid"
  for _ in $(seq 100); do
    if [ -s "$dev/azure.json" ]; then
      sed -E 's/.*"endpoint":"([^"]+)".*/\1/' "$dev/azure.json" >"$dev/azure.endpoint"
      return
    fi
    sleep 0.1
  done
  echo "the Azure emulator did not start; see $dev/azure.log" >&2
  exit 1
}

write_env() {
  local moto eks gcp
  moto=$(cat "$dev/moto.endpoint")
  eks=$(cat "$dev/pod-identity.endpoint")
  gcp=$(cat "$dev/gcp.endpoint")
  cat >"$dev/env" <<ENV
# Source this file to use the local Keyless system: . .dev/env
export KUBECONFIG=$dev/kubeconfig
export PATH=$root/bin:\$PATH
# moto stands in for AWS (IAM, STS, EKS clusters), behind the in-project Pod Identity emulator; any credentials work.
export AWS_ENDPOINT_URL_IAM=$moto AWS_ENDPOINT_URL_EKS=$eks AWS_ENDPOINT_URL_STS=$moto
export AWS_ACCESS_KEY_ID=AKIDKEYLESSDEV AWS_SECRET_ACCESS_KEY=keyless-dev AWS_REGION=us-east-1
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
# The in-project emulator stands in for Google Cloud (IAM, Resource Manager, Storage, Pub/Sub, Secret Manager).
export KEYLESS_GCP_ENDPOINT=$gcp KEYLESS_GCP_ACCESS_TOKEN=keyless-dev
# The in-project ARM emulator stands in for Azure (managed identities, role assignments); HTTPS with its own CA.
export KEYLESS_AZURE_ENDPOINT=$(cat "$dev/azure.endpoint") KEYLESS_AZURE_CREDENTIAL=static NODE_EXTRA_CA_CERTS=$dev/azure/ca.crt
ENV
}

operator_env() {
  # shellcheck source=/dev/null
  . "$dev/env"
  export KUBECONFIG=$dev/operator.kubeconfig KEYLESS_LEADER_ELECTION_NAMESPACE=keyless-system KEYLESS_RESYNC_SECONDS=60
}

case "${1:-}" in
  up)
    mkdir -p "$dev"
    hack/controlplane.sh up "$dev/controlplane" "$dev/kubeconfig"
    start_moto
    start_pod_identity
    start_gcp
    start_azure
    write_env
    KEYLESS_TEST_KUBECONFIG=$dev/kubeconfig node hack/dev-setup.ts "$dev" "$(cat "$dev/moto.endpoint")" "$(cat "$dev/gcp.endpoint")" "$(cat "$dev/azure.endpoint")"
    if [ "${2:-}" = --no-operator ] && alive "$dev/operator.pid"; then
      kill "$(cat "$dev/operator.pid")" && rm -f "$dev/operator.pid" && echo "stopped the background operator; it runs in the foreground now"
    fi
    if [ "${2:-}" != --no-operator ] && ! alive "$dev/operator.pid"; then
      (operator_env && exec setsid node src/main.ts >"$dev/operator.log" 2>&1 < /dev/null) &
      echo $! >"$dev/operator.pid"
      KUBECONFIG=$dev/kubeconfig bin/kubectl wait --for=condition=Ready --timeout=60s cloudaccount/local-aws cloudaccount/local-gcp cloudaccount/local-azure >/dev/null
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

Azure (CloudAccount local-azure: subscription 00000000-0000-0000-0000-000000000001 in the in-project ARM emulator):

  kubectl apply -f config/samples/azure-workload-identity.yaml
  kubectl wait --for=condition=Ready -n bookstore workloadidentity/inventory
  kubectl get sa -n bookstore inventory-sa -o jsonpath='{.metadata.annotations}'
  curl -s --cacert .dev/azure/ca.crt \$KEYLESS_AZURE_ENDPOINT/__emulator/state      # identities, credentials, role assignments

Stop with Ctrl-C (the operator) and make dev-down (everything else).

USAGE
    ;;
  down)
    for name in operator pod-identity moto gcp azure; do
      if alive "$dev/$name.pid"; then kill "$(cat "$dev/$name.pid")" && echo "$name stopped"; fi
      rm -f "$dev/$name.pid"
    done
    hack/controlplane.sh down "$dev/controlplane"
    ;;
  *) echo "usage: $0 up [--no-operator] | operator | usage | down" >&2; exit 2 ;;
esac
