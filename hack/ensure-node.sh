#!/usr/bin/env bash
# Prints a directory whose `node` and `npm` are Node 24 LTS, for the Makefile to put first on PATH.
# The machine's own Node is used when it is already 24; otherwise Node 24 comes from the npm registry's `node`
# package (which ships the binary) into a cache that survives between runs on the same machine.
set -euo pipefail
want_major=24
want_version=${KEYLESS_NODE_VERSION:-24.21.0}
cache=${KEYLESS_CACHE:-$HOME/.cache/keyless}

if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" = "$want_major" ]; then
  dirname "$(command -v node)"
  exit 0
fi

prefix="$cache/node-$want_version"
if [ ! -x "$prefix/node_modules/node/bin/node" ]; then
  echo "ensure-node: installing Node $want_version from the npm registry into $prefix" >&2
  rm -rf "$prefix.tmp"
  mkdir -p "$prefix.tmp"
  npm install --prefix "$prefix.tmp" --no-save --no-audit --no-fund --loglevel=error "node@$want_version" >&2
  rm -rf "$prefix"
  mv "$prefix.tmp" "$prefix"
fi
# npm itself runs on whichever node is first on PATH, so the same directory serves both.
mkdir -p "$prefix/bin"
ln -sf "$prefix/node_modules/node/bin/node" "$prefix/bin/node"
ln -sf "$(command -v npm)" "$prefix/bin/npm" 2>/dev/null || true
ln -sf "$(command -v npx)" "$prefix/bin/npx" 2>/dev/null || true
echo "$prefix/bin"
