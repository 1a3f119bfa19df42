#!/usr/bin/env bash
# Installs, from the package registries only, what the Go, Python, Java and
# Rust clients need to be generated (`npm run generate`; Rust's build.rs) and
# tested (the go, python, java, rust and crosslang suites), at the exact
# versions pinned here and in the clients' own manifests:
#
#   .cache/tools/bin   protoc-gen-go, protoc-gen-go-grpc (go install)
#   .cache/tools/venv  clients/python/requirements-dev.txt (PyPI)
#   PostgreSQL         Debian's postgresql, when no /usr/lib/postgresql/*/bin
#                      has a server (the fencing suite starts its own)
#   user caches        the Go modules of clients/go, test/crosslang/go,
#                      examples/go, test/fencing/holders/go and
#                      test/packaging/gomodzip, the Maven
#                      artifacts and plugins of
#                      clients/java (among them the protoc and
#                      protoc-gen-grpc-java its build generates the stubs
#                      with), and the crates in clients/rust/Cargo.lock
#                      (which the rust suite then builds offline)
#
# Needs go, python3, java, mvn and cargo on PATH. Idempotent: a step whose stamp
# matches its pinned versions is skipped, so a second run takes about a second.
set -euo pipefail

# Plugin versions. (Java's protoc and protoc-gen-grpc-java are pinned in
# clients/java/pom.xml, whose build runs them.)
PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.6.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=$root/.cache/tools
mkdir -p "$tools/bin"

for tool in go python3 java mvn cargo; do
  command -v "$tool" >/dev/null || { echo "install-toolchains: $tool is not on PATH" >&2; exit 1; }
done

# up_to_date STEP KEY: true when STEP last completed with the same KEY.
up_to_date() { [[ -f "$tools/$1.stamp" && "$(cat "$tools/$1.stamp")" == "$2" ]]; }
done_with() { printf '%s' "$2" >"$tools/$1.stamp"; echo "install-toolchains: $1 ready"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Go: the protoc plugins, and the modules of the client and the contender.
go_modules=(clients/go test/crosslang/go examples/go test/fencing/holders/go test/packaging/gomodzip)
key="$PROTOC_GEN_GO $PROTOC_GEN_GO_GRPC $(cd "$root" && hash_of "${go_modules[@]/%//go.sum}")"
if ! up_to_date go "$key" || [[ ! -x "$tools/bin/protoc-gen-go" || ! -x "$tools/bin/protoc-gen-go-grpc" ]]; then
  GOBIN="$tools/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
  GOBIN="$tools/bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
  for module in "${go_modules[@]}"; do (cd "$root/$module" && go mod download); done
  done_with go "$key"
fi

# Python: one venv for grpcio-tools' protoc, the mypy-protobuf plugins and pytest.
key=$(hash_of "$root/clients/python/requirements-dev.txt")
if ! up_to_date python "$key" || ! "$tools/venv/bin/python" -c "import grpc_tools" 2>/dev/null; then
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/clients/python/requirements-dev.txt"
  done_with python "$key"
fi

# Java: everything `mvn test`, the conformance driver and the cross-language
# test resolve, among them protoc and protoc-gen-grpc-java (executables on
# Maven Central), which the build runs to generate the stubs from proto/
# (clients/java/pom.xml pins their versions and picks the platform's build).
# Running the build once, with no test selected, resolves the dependencies, the
# plugins, those executables and Surefire's JUnit provider; build-classpath is
# what the conformance driver and the cross-language test run.
mvn=(mvn -B -ntp -q -Dstyle.color=never)
key="$(hash_of "$root/clients/java/pom.xml")"
if ! up_to_date java "$key"; then
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  (cd "$root/clients/java" && "${mvn[@]}" test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false \
    dependency:build-classpath -Dmdep.outputFile="$download/classpath.txt")
  done_with java "$key"
fi

# Rust: the crates of the client, at the versions in its Cargo.lock; its
# build.rs runs the protoc that one of them ships.
rust=(cargo fetch --locked --manifest-path "$root/clients/rust/Cargo.toml")
key=$(hash_of "$root/clients/rust/Cargo.lock")
if ! up_to_date rust "$key" || ! "${rust[@]}" --offline >/dev/null 2>&1; then
  "${rust[@]}"
  done_with rust "$key"
fi

# PostgreSQL: the fencing suite (test/fencing) runs a real server of its own
# (test/support/postgres.ts) from Debian's binaries. Machine images usually
# have them; otherwise apt installs them (as root, as CI runs).
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-toolchains: PostgreSQL is missing: run apt-get install postgresql as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  echo "install-toolchains: postgresql installed"
fi
