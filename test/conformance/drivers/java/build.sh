#!/usr/bin/env bash
# Builds the Java client and compiles the conformance driver against it, once
# per suite run; run.sh then starts it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
out="$root/.cache/conformance"
mkdir -p "$out/java-driver"
(cd "$root/clients/java" && mvn -B -q -ntp compile dependency:build-classpath -Dmdep.includeScope=runtime "-Dmdep.outputFile=$out/java-classpath.txt")
classpath="$root/clients/java/target/classes:$(cat "$out/java-classpath.txt")"
javac -d "$out/java-driver" -cp "$classpath" "$root/test/conformance/drivers/java/Driver.java"
