#!/usr/bin/env bash
# Builds the local control plane (test/controlplane) once per version and runs it.
#
#   hack/controlplane.sh build                        build (or reuse) the binaries; link bin/controlplane, bin/kubectl
#   hack/controlplane.sh up STATE_DIR KUBECONFIG      build if needed, start in the background, wait until ready
#   hack/controlplane.sh down|status STATE_DIR
#   hack/controlplane.sh restart-apiserver STATE_DIR [--expire-watches]
#                                                     restart kube-apiserver alone (same port, same etcd)
#
# Binaries are cached under $KEYLESS_CACHE (default ~/.cache/keyless), keyed by the Kubernetes version and a hash
# of the module's sources, go.mod and go.sum and the Go toolchain, so a warm start takes seconds and any change to
# the pinned versions rebuilds. Go's own module and build caches make a rebuild after a small change quick.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/test/controlplane
cache=${KEYLESS_CACHE:-$HOME/.cache/keyless}

k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$src/go.mod")
key=$( (cd "$src" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-12)
out=$cache/controlplane-$k8s_version-$key

build() {
  if [ -x "$out/controlplane" ] && [ -x "$out/kubectl" ]; then
    :
  else
    echo "controlplane: building Kubernetes $k8s_version into $out (a cold build takes several minutes)" >&2
    local started=$SECONDS version_flags
    version_flags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitTreeState=clean"
      version_flags+=" -X $pkg.gitMajor=$(echo "${k8s_version#v}" | cut -d. -f1) -X $pkg.gitMinor=$(echo "$k8s_version" | cut -d. -f2)"
    done
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    (cd "$src" && go build -trimpath -ldflags "$version_flags" -o "$out.tmp/controlplane" . \
              && go build -trimpath -ldflags "$version_flags" -o "$out.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl)
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "controlplane: built in $((SECONDS - started))s" >&2
  fi
  mkdir -p "$root/bin"
  ln -sfn "$out/controlplane" "$root/bin/controlplane"
  ln -sfn "$out/kubectl" "$root/bin/kubectl"
}

case "${1:-}" in
  build) build ;;
  up)
    [ $# -eq 3 ] || { echo "usage: $0 up STATE_DIR KUBECONFIG" >&2; exit 2; }
    build
    "$root/bin/controlplane" up --state "$2" --kubeconfig "$3"
    ;;
  down | status)
    [ $# -eq 2 ] || { echo "usage: $0 $1 STATE_DIR" >&2; exit 2; }
    if [ -x "$root/bin/controlplane" ]; then
      "$root/bin/controlplane" "$1" --state "$2"
    elif [ "$1" = status ]; then
      echo "not built" >&2; exit 1
    fi
    ;;
  restart-apiserver)
    [ $# -ge 2 ] || { echo "usage: $0 restart-apiserver STATE_DIR [--expire-watches]" >&2; exit 2; }
    build
    "$root/bin/controlplane" restart-apiserver --state "$2" "${@:3}"
    ;;
  *) echo "usage: $0 build | up STATE_DIR KUBECONFIG | down STATE_DIR | status STATE_DIR | restart-apiserver STATE_DIR [--expire-watches]" >&2; exit 2 ;;
esac
