#!/usr/bin/env bash
# `make bench`: a control plane of its own in .bench/ (apart from make test's .test/ and make dev's .dev/), the
# benchmark (bench/main.ts, flags as BENCH_* variables or NAME=value arguments), and the control plane stopped
# again whatever happens. Output: a table on stdout, bench/out/latest.json, operator logs in .bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$PWD/.bench
mkdir -p "$state"
# Everything in .bench/ is scratch; this keeps it out of git without touching the shared .gitignore.
echo '*' >"$state/.gitignore"

# The operator runs as the image runs it: compiled (BENCH_OPERATOR_ENTRY=src/main.ts runs the sources instead).
npx tsc -p tsconfig.build.json

hack/controlplane.sh up "$state/controlplane" "$state/kubeconfig"
trap 'hack/controlplane.sh down "$state/controlplane"' EXIT
KEYLESS_TEST_KUBECONFIG=$state/kubeconfig node bench/main.ts "$@"
