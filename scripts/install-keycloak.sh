#!/usr/bin/env bash
# Installs Keycloak (the server distribution `org.keycloak:keycloak-quarkus-dist` from Maven Central)
# into the cache and pre-builds it once, so every start is `kc.sh start --optimized`.
# The version lives in devstack/data/keycloak-version; idempotent: a second run with the same
# version and build options does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="$(tr -d '[:space:]' <"$ROOT/devstack/data/keycloak-version")"
CACHE_DIR="${PRIMEHUB_SPAWNER_CACHE:-$HOME/.cache/primehub-spawner}"
HOME_DIR="$CACHE_DIR/keycloak/$VERSION"
# Debian's OpenJDK 17 (supported by Keycloak 26), whatever `java` on PATH or JAVA_HOME is.
export JAVA_HOME="/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)"
MVN=/usr/bin/mvn
# A pinned plugin: a newer one might need a newer Maven than Debian's 3.8.7.
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
# Build-time options: health and metrics on the management port, H2 in a file (a development
# database: each home directory keeps its own under data/h2).
BUILD_OPTIONS=(--db=dev-file --health-enabled=true --metrics-enabled=true)
MARKER="$HOME_DIR/.primehub-built"

built() { [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "${BUILD_OPTIONS[*]}" ]; }
if built; then
    echo "keycloak: cached $HOME_DIR (built with ${BUILD_OPTIONS[*]})"
    exit 0
fi
mkdir -p "$CACHE_DIR/keycloak"
# One installer at a time per cache (two set-ups sharing it would remove each other's tree).
exec 9>"$CACHE_DIR/keycloak/.install.lock"
flock 9
if built; then
    echo "keycloak: cached $HOME_DIR (installed meanwhile by another set-up)"
    exit 0
fi
for tool in "$JAVA_HOME/bin/java" "$MVN"; do
    [ -x "$tool" ] || { echo "missing $tool: run scripts/install-system-packages.sh" >&2; exit 1; }
done

SCRATCH="$(mktemp -d "$CACHE_DIR/keycloak/download.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
started=$SECONDS
echo "keycloak: fetching org.keycloak:keycloak-quarkus-dist:$VERSION from Maven Central"
"$MVN" -B -q -Dstyle.color=never -Dmaven.repo.local="$CACHE_DIR/maven" "$DEPENDENCY_PLUGIN:copy" \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:tar.gz" -DoutputDirectory="$SCRATCH"
archive="$SCRATCH/keycloak-quarkus-dist-$VERSION.tar.gz"
echo "keycloak: $(du -m "$archive" | cut -f1) MB downloaded; unpacking"
tar -xzf "$archive" -C "$SCRATCH"
rm -f "$archive"
rm -rf "$CACHE_DIR/maven/org/keycloak"  # Maven's own copy of the archive; the unpacked tree is kept
rm -rf "$HOME_DIR"
mv "$SCRATCH/keycloak-$VERSION" "$HOME_DIR"

echo "keycloak: kc.sh build ${BUILD_OPTIONS[*]}"
"$HOME_DIR/bin/kc.sh" build "${BUILD_OPTIONS[@]}" >"$SCRATCH/build.log" 2>&1 || {
    cat "$SCRATCH/build.log" >&2
    exit 1
}
rm -rf "$HOME_DIR/data"  # what the build left; every instance gets a data directory of its own
echo "${BUILD_OPTIONS[*]}" >"$MARKER"
echo "keycloak: $VERSION ready in $HOME_DIR ($((SECONDS - started)) s)"
