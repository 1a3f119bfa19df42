#!/usr/bin/env bash
# Installs grpcurl, pinned, into .cache/tools/bin for the tests that check the
# daemon works with it and no proto files. Idempotent.
set -euo pipefail
GRPCURL=v1.9.4
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/.cache/tools/bin
stamp=$root/.cache/tools/grpcurl.stamp
if [[ -x "$bin/grpcurl" && -f "$stamp" && "$(cat "$stamp")" == "$GRPCURL" ]]; then exit 0; fi
mkdir -p "$bin"
echo "install-grpcurl: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL" >&2
GOBIN=$bin go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL"
printf '%s' "$GRPCURL" >"$stamp"
