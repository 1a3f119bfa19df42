#!/usr/bin/env bash
# Starts the Java conformance driver (compiled by build.sh) as one JVM: exec, so
# a SIGSTOP to this process stops the driver itself.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
out="$root/.cache/conformance"
exec java -cp "$out/java-driver:$root/clients/java/target/classes:$(cat "$out/java-classpath.txt")" Driver
