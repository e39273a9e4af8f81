#!/usr/bin/env bash
# `make test`: lint and type check, then every test suite in one node:test run against a real control plane that
# this script starts for the run (in .test/, apart from `make dev`'s .dev/) and always stops.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== lint and type check"
npx eslint .
npx tsc -p tsconfig.json --noEmit

echo "== kwok and the injection webhooks (built once, then cached)"
hack/peers.sh build

echo "== helm, for the chart's tests (built once, then cached)"
hack/helm.sh build

echo "== control plane"
state=$PWD/.test
hack/controlplane.sh up "$state/controlplane" "$state/kubeconfig"
trap 'hack/controlplane.sh down "$state/controlplane"' EXIT

echo "== tests"
# One file at a time: each end-to-end file runs its own operator, which watches the whole cluster and holds the
# one leader-election Lease, so two at once would reconcile each other's objects against the wrong emulators.
export KEYLESS_TEST_KUBECONFIG=$state/kubeconfig
# The chaos test restarts the API server (hack/controlplane.sh restart-apiserver) and needs its state directory.
export KEYLESS_TEST_CONTROLPLANE_STATE=$state/controlplane
node --test --test-reporter=spec --test-concurrency=1 \
  'src/**/*.test.ts' 'test/**/*.test.ts' 'bench/**/*.test.ts' 'chaos/**/*.test.ts'
