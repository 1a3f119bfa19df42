#!/usr/bin/env bash
# Build the benchmark peers (client-go leader election candidate, etcd
# concurrency peer) from the pinned Go modules into
#   <repo>/.cache/bench/peers/<hash>/bin/
# and print that bin directory as the only line on stdout (progress goes to
# stderr). The hash covers go.mod, go.sum and the Go sources, so a new pin or
# a source change builds into a new directory; when the binaries for the
# current hash exist this only prints the path.
#
# Environment: BENCH_CACHE_DIR (default <repo>/.cache/bench); GOFLAGS, GOCACHE, ... passed to go.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${BENCH_CACHE_DIR:-$REPO_ROOT/.cache/bench}/peers
START=$SECONDS
BUILD_FLAGS=(-trimpath "-ldflags=-s -w")
want=(clientgo-candidate etcd-peer)

log() { printf '[peers build +%ss] %s\n' "$((SECONDS - START))" "$*" >&2; }

hash=$(
  cd "$HERE"
  {
    for f in go.mod go.sum $(find cmd internal -name '*.go' | LC_ALL=C sort); do printf '== %s\n' "$f"; cat "$f"; done
    printf '== flags\n%s\n' "${BUILD_FLAGS[*]}"
  } | sha256sum | cut -c1-16
)
OUT="$CACHE_ROOT/$hash"
BIN="$OUT/bin"

have_all() {
  local b
  for b in "${want[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

if have_all; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "peers/build.sh: 'go' not found on PATH" >&2; exit 1; }
mkdir -p "$BIN"
exec 9>"$OUT/.lock"
flock 9
if have_all; then echo "$BIN"; exit 0; fi

log "client-go $(awk '$1=="k8s.io/client-go"{print $2}' "$HERE/go.mod"), etcd client $(awk '$1=="go.etcd.io/etcd/client/v3"{print $2}' "$HERE/go.mod"), $(go version | cut -d' ' -f3); output $BIN"
for b in "${want[@]}"; do
  t0=$SECONDS
  (cd "$HERE" && go build -mod=readonly "${BUILD_FLAGS[@]}" -o "$BIN/$b.tmp" "./cmd/$b")
  mv "$BIN/$b.tmp" "$BIN/$b"
  log "$b built in $((SECONDS - t0))s"
done
# Older builds are of no further use.
for d in "$CACHE_ROOT"/*/; do
  [[ "${d%/}" == "$OUT" ]] || rm -rf "$d"
done
echo "$BIN"
