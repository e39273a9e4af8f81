#!/usr/bin/env bash
# `make chaos`: a control plane of its own in .chaos/ (apart from make test's .test/, make dev's .dev/ and make
# bench's .bench/), one chaos run (chaos/main.ts, flags as CHAOS_* variables or NAME=value arguments), and the
# control plane stopped again whatever happens. Output: the figures on stdout, chaos/out/latest.json, logs in .chaos/.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$PWD/.chaos
mkdir -p "$state"
echo '*' >"$state/.gitignore"
rm -rf "$state/run"

hack/controlplane.sh up "$state/controlplane" "$state/kubeconfig"
trap 'hack/controlplane.sh down "$state/controlplane"' EXIT
KEYLESS_TEST_KUBECONFIG=$state/kubeconfig KEYLESS_CHAOS_STATE=$state node chaos/main.ts "$@"
