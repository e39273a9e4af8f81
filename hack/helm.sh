#!/usr/bin/env bash
# The real Helm, for the chart's tests (test/chart/): built once from the Go module proxy and cached, like the control
# plane.
#
#   hack/helm.sh build        build (or reuse) helm; link bin/helm
#
# `go install helm.sh/helm/v3/cmd/helm@VERSION` builds with the versions Helm's own go.mod and go.sum pin, so no module
# of ours is needed. The binary is cached under $KEYLESS_CACHE (default ~/.cache/keyless)/helm-VERSION and linked into
# this checkout's bin/, wherever that points.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEYLESS_CACHE:-$HOME/.cache/keyless}
version=v3.22.0
out=$cache/helm-$version

build() {
  if [ ! -x "$out/helm" ]; then
    echo "helm: building Helm $version into $out (a cold build takes a few minutes)" >&2
    local started=$SECONDS
    # A directory of its own, so two checkouts building at once never mix their files; gone if the build fails.
    tmp=$(mkdir -p "$cache" && mktemp -d "$out.tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # Stamped as Helm's own Makefile does: its version, and the Kubernetes version `helm template` and `helm lint`
    # assume without a cluster (one minor past the client-go Helm builds with; unstamped, it is 1.20).
    local gomod k8s ldflags
    gomod=$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    k8s=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")
    [ -n "$k8s" ] || { echo "helm: no k8s.io/client-go in $gomod" >&2; exit 1; }
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
    for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
      ldflags+=" -X $pkg.k8sVersionMajor=$(($(echo "${k8s#v}" | cut -d. -f1) + 1)) -X $pkg.k8sVersionMinor=$(echo "$k8s" | cut -d. -f2)"
    done
    GOBIN=$tmp go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version"
    rm -rf "$out" && mv "$tmp" "$out"
    echo "helm: built in $((SECONDS - started))s" >&2
  fi
  mkdir -p "$root/bin"
  ln -sfn "$out/helm" "$root/bin/helm"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
