#!/usr/bin/env bash
# Writes DEV_DIR/env (shell exports for the local system) and, with --usage, prints how to use it.
set -euo pipefail
dev=$1
root=$(cd "$(dirname "$0")/.." && pwd)
cat > "$dev/env" <<ENV
# Source this file to use the local Keyless system: . .dev/env
export KUBECONFIG=$dev/kubeconfig
export PATH=$root/bin:\$PATH
ENV
if [ "${2:-}" = --usage ]; then
  cat <<USAGE

The local control plane is running (kube-apiserver, etcd and kube-controller-manager on 127.0.0.1).

  . .dev/env                      # KUBECONFIG and bin/kubectl for this shell
  kubectl get namespaces
  kubectl get --raw /.well-known/openid-configuration
  make controlplane-status
  make dev-down                   # stop everything

USAGE
fi
