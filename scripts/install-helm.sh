#!/usr/bin/env bash
# Installs what the Helm chart's checks (test/packaging/helm.test.ts) need,
# pinned, from the Go module proxy:
#
#   .cache/tools/bin/helm            helm, built from its Go module
#   .cache/tools/cert-manager-crds/  cert-manager's Issuer, ClusterIssuer and
#                                    Certificate CRDs, from its module's
#                                    deploy/crds, so that the chart's
#                                    cert-manager objects are validated by the
#                                    real API server against the real schemas
#
# It uses the user's Go module and build caches, as the test control plane's
# build does (test/controlplane/build.sh). Idempotent: once done, it returns at
# once.
set -euo pipefail
HELM=v4.3.2
CERT_MANAGER=v1.21.2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=$root/.cache/tools
stamp=$tools/helm.stamp
key="helm $HELM cert-manager $CERT_MANAGER"
ready() { [[ -x "$tools/bin/helm" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; }
if ready; then exit 0; fi
command -v go >/dev/null || { echo "install-helm: 'go' is not on PATH" >&2; exit 1; }
mkdir -p "$tools/bin"
# One install at a time: suites may call this in parallel.
exec 9>"$tools/helm.lock"
flock 9
if ready; then exit 0; fi
start=$SECONDS
echo "install-helm: go install helm.sh/helm/v4/cmd/helm@$HELM" >&2
GOBIN=$tools/bin go install -trimpath -ldflags="-s -w" "helm.sh/helm/v4/cmd/helm@$HELM"
echo "install-helm: cert-manager $CERT_MANAGER CRDs" >&2
module=$(go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$module/deploy/crds" ]] || { echo "install-helm: no deploy/crds in the cert-manager module ($module)" >&2; exit 1; }
rm -rf "$tools/cert-manager-crds"
mkdir -p "$tools/cert-manager-crds"
for crd in cert-manager.io_issuers cert-manager.io_clusterissuers cert-manager.io_certificates; do
  cp "$module/deploy/crds/$crd.yaml" "$tools/cert-manager-crds/"
done
chmod -R u+w "$tools/cert-manager-crds"
printf '%s' "$key" >"$stamp"
echo "install-helm: done in $((SECONDS - start))s" >&2
