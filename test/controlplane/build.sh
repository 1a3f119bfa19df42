#!/usr/bin/env bash
# Build kube-apiserver, etcd and etcdctl from the pinned Go modules into
#   <repo>/.cache/controlplane/<hash-of-pins>/bin/
# and print that bin directory as the only line on stdout (progress goes to
# stderr). Does nothing but print the path when the binaries for the current
# pins already exist.
#
# The pins are the committed go.mod/go.sum files in kube-apiserver/ and etcd/
# (regenerate them with pin.sh). The hash covers those files and the build
# flags below, so changing either builds into a new directory.
#
# Environment:
#   CONTROLPLANE_CACHE_DIR  cache root (default <repo>/.cache/controlplane)
#   GOFLAGS, GOCACHE, ...   passed through to go
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${CONTROLPLANE_CACHE_DIR:-$REPO_ROOT/.cache/controlplane}
START=$SECONDS
k8s_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes"{print $3}' "$HERE/kube-apiserver/go.mod")
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$HERE/etcd/go.mod")
[[ -n "$k8s_version" && -n "$etcd_version" ]] || { echo "build.sh: cannot read the pinned versions from the go.mod files" >&2; exit 1; }
BUILD_FLAGS=(-trimpath "-ldflags=-s -w")
# Without these, /version reports gitVersion "v0.0.0-master+$Format:%H$" (a placeholder).
k8s_minor=${k8s_version#v1.}; k8s_minor=${k8s_minor%%.*}
version_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
k8s_x=""
for p in "${version_pkgs[@]}"; do
  k8s_x+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done
K8S_BUILD_FLAGS=(-trimpath "-ldflags=-s -w$k8s_x")

log() { printf '[controlplane build +%ss] %s\n' "$((SECONDS - START))" "$*" >&2; }

pin_files=(kube-apiserver/go.mod kube-apiserver/go.sum etcd/go.mod etcd/go.sum)
hash=$(
  cd "$HERE"
  {
    for f in "${pin_files[@]}"; do printf '== %s\n' "$f"; cat "$f"; done
    printf '== flags\n%s\n%s\n' "${BUILD_FLAGS[*]}" "${K8S_BUILD_FLAGS[*]}"
  } | sha256sum | cut -c1-16
)
OUT="$CACHE_ROOT/$hash"
BIN="$OUT/bin"
want=(kube-apiserver etcd etcdctl)

have_all() {
  local b
  for b in "${want[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

if have_all; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH (Go >= 1.26 needed)" >&2; exit 1; }

mkdir -p "$BIN"
# One build at a time per pin set (parallel test runs may all call this).
exec 9>"$OUT/.lock"
if ! flock -n 9; then
  log "another build of $hash is running; waiting for it"
  flock 9
  if have_all; then echo "$BIN"; exit 0; fi
fi

log "pins: k8s.io/kubernetes $k8s_version, go.etcd.io/etcd $etcd_version ($(go version | cut -d' ' -f3)); output $BIN"

# Print a heartbeat while a long go build runs so CI logs show progress.
build_one() { # name module-dir package flags...
  local name=$1 dir=$2 pkg=$3 t0=$SECONDS hb
  shift 3
  local flags=("$@")
  if [[ -x "$BIN/$name" ]]; then log "$name: already built"; return; fi
  log "$name: go build $pkg"
  ( while sleep 30; do log "$name: still building ($((SECONDS - t0))s)"; done ) &
  hb=$!
  # shellcheck disable=SC2064
  trap "kill $hb 2>/dev/null || true" EXIT
  if ! (cd "$HERE/$dir" && go build "${flags[@]}" -o "$BIN/.$name.tmp" "$pkg"); then
    kill "$hb" 2>/dev/null || true
    rm -f "$BIN/.$name.tmp"
    log "$name: BUILD FAILED"
    exit 1
  fi
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  mv -f "$BIN/.$name.tmp" "$BIN/$name"
  log "$name: done in $((SECONDS - t0))s ($(du -h "$BIN/$name" | cut -f1))"
}

build_one etcd etcd go.etcd.io/etcd/server/v3 "${BUILD_FLAGS[@]}"
build_one etcdctl etcd go.etcd.io/etcd/etcdctl/v3 "${BUILD_FLAGS[@]}"
log "kube-apiserver is the big one: a first build takes several minutes on 2 cores"
build_one kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "${K8S_BUILD_FLAGS[@]}"

cat >"$OUT/versions.txt" <<EOF
k8s.io/kubernetes $k8s_version
go.etcd.io/etcd $etcd_version
$(go version)
built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - START))s
EOF
# Binaries of older pins are ~150 MB each set: drop them.
for old in "$CACHE_ROOT"/*/; do
  old=${old%/}
  [[ "$old" != "$OUT" && $(basename "$old") =~ ^[0-9a-f]{16}$ ]] || continue
  log "removing binaries of older pins: $old"
  rm -rf "$old"
done
log "all built in $((SECONDS - START))s"
echo "$BIN"
