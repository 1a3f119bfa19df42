#!/usr/bin/env bash
# Build the Curator peer and the ZooKeeper server launcher (this Maven project)
# into
#   <repo>/.cache/bench/curator/<hash>/lib/   the project's jar and every jar it needs
# and print that lib directory as the only line on stdout (progress goes to
# stderr); run them with `java -cp '<lib>/*' io.metaparticle.bench.curator.CuratorPeer`
# (or .ZooKeeperLauncher). The hash covers this script, pom.xml, the Java
# sources and the major version of the JDK, so a new pin or a source change
# builds into a new directory; when the jars for the current hash exist this
# only prints the path.
# Maven builds a copy of the project inside that directory, so the source tree
# gets no target/ folder.
#
# Environment: BENCH_CACHE_DIR (default <repo>/.cache/bench); MAVEN_OPTS, ... passed to mvn.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../../.." && pwd)
CACHE_ROOT=${BENCH_CACHE_DIR:-$REPO_ROOT/.cache/bench}/curator
START=$SECONDS

log() { printf '[curator build +%ss] %s\n' "$((SECONDS - START))" "$*" >&2; }

for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "curator/build.sh: '$tool' not found on PATH" >&2; exit 1; }
done
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/{print $2}')
hash=$(
  cd "$HERE"
  {
    for f in build.sh pom.xml $(find src -name '*.java' | LC_ALL=C sort); do printf '== %s\n' "$f"; cat "$f"; done
    printf '== java\n%s\n' "$java_major"
  } | sha256sum | cut -c1-16
)
OUT="$CACHE_ROOT/$hash"
LIB="$OUT/lib"

if [[ -f "$OUT/done" ]]; then
  echo "$LIB"
  exit 0
fi
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if [[ -f "$OUT/done" ]]; then echo "$LIB"; exit 0; fi

log "Curator $(sed -n 's:.*<curator.version>\(.*\)</curator.version>.*:\1:p' "$HERE/pom.xml"), ZooKeeper $(sed -n 's:.*<zookeeper.version>\(.*\)</zookeeper.version>.*:\1:p' "$HERE/pom.xml"), Java $java_major; output $LIB"
rm -rf "$OUT/project" "$LIB"
mkdir -p "$OUT/project"
cp -R "$HERE/pom.xml" "$HERE/src" "$OUT/project/"
if ! (cd "$OUT/project" && mvn -B -ntp -Dstyle.color=never package \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB") >"$OUT/build.log" 2>&1; then
  tail -n 40 "$OUT/build.log" >&2
  echo "curator/build.sh: mvn failed; whole log in $OUT/build.log" >&2
  exit 1
fi
cp "$OUT/project/target/bench-curator-peer-"*.jar "$LIB/"
touch "$OUT/done"
log "built in $((SECONDS - START))s"
# Older builds are of no further use.
for d in "$CACHE_ROOT"/*/; do
  [[ "${d%/}" == "$OUT" ]] || rm -rf "$d"
done
echo "$LIB"
