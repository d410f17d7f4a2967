#!/usr/bin/env bash
# Builds kube-apiserver v1.20.2 from Debian bookworm's source package with Debian's Go 1.19,
# into a cache outside the repository. Rebuilds only when the cached binary's --version differs.
# Facts and the four fixes: ../shared/reference/test-ground-notes.md, Part A.
# Usage: build-kube-apiserver.sh [--check]
set -euo pipefail

KUBE_VERSION=v1.20.2
SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
CACHE_DIR="${PRIMEHUB_SPAWNER_CACHE:-$HOME/.cache/primehub-spawner}"
BIN_DIR="$CACHE_DIR/bin"
BIN="$BIN_DIR/kube-apiserver"

# --check: exit 0 when the cached binary is the right version, 1 when a build is needed.
if [ -x "$BIN" ] && [ "$("$BIN" --version 2>/dev/null)" = "Kubernetes $KUBE_VERSION" ]; then
    echo "kube-apiserver: cached $BIN ($KUBE_VERSION)"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "kube-apiserver: $BIN is missing or not $KUBE_VERSION; a build is needed"
    exit 1
fi
rm -f "$BIN"
echo "kube-apiserver: building $KUBE_VERSION from Debian source (about 3 minutes)"

# Debian's Go 1.19 (golang-go), which this build was written for, whatever `go` on PATH is:
# machines may carry a newer Go first on PATH, which rejects Kubernetes 1.20's GOPATH build.
GO_ROOT=/usr/lib/go-1.19
if [ ! -x "$GO_ROOT/bin/go" ] || ! command -v dpkg-source >/dev/null; then
    echo "missing $GO_ROOT/bin/go or dpkg-source: run scripts/install-system-packages.sh" >&2
    exit 1
fi
export PATH="$GO_ROOT/bin:$PATH" GOROOT="$GO_ROOT"

mkdir -p "$CACHE_DIR"
SCRATCH="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
trap 'chmod -R u+w "$SCRATCH" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"

apt-get source -q --download-only "kubernetes=$SRC_VERSION" >/dev/null
dpkg-source -q -x kubernetes_*.dsc src >/dev/null
apt-get download -q golang-github-modern-go-reflect2-dev >/dev/null
dpkg-deb -x golang-github-modern-go-reflect2-dev_*.deb reflect2

# Fix 1: GOPATH mode, as Kubernetes 1.20's own build does.
export GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0
export GOPATH="$SCRATCH/gopath" GOCACHE="$SCRATCH/gocache"
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$SCRATCH/src" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

# Fix 3: vendored reflect2 1.0.1 crashes under Go >= 1.18; use Debian's 1.0.2.
rm -f vendor/github.com/modern-go/reflect2/*.go vendor/github.com/modern-go/reflect2/*.s
cp "$SCRATCH"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go \
   "$SCRATCH"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.s \
   vendor/github.com/modern-go/reflect2/ 2>/dev/null || \
cp "$SCRATCH"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go vendor/github.com/modern-go/reflect2/

# Fix 2: generate pkg/generated/openapi/zz_generated.openapi.go (not in the tarball).
go build -o "$SCRATCH/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
# Mirrors build/root/Makefile.generated_files: files tagged "// +k8s:" in every Go directory, minus
# code-generator and sample-apiserver, keeping those that ask for openapi-gen.
hack/make-rules/helpers/cache_go_dirs.sh "$SCRATCH/go-dirs.txt" >/dev/null
packages="$(
    grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' "$SCRATCH/go-dirs.txt" \
        | xargs -I{} find {} -maxdepth 1 -type f -name '*.go' \
        | xargs grep -l '^// *+k8s:' \
        | xargs grep -l '+k8s:openapi-gen=' \
        | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -
)"
count="$(tr ',' '\n' <<<"$packages" | wc -l)"
if [ "$count" -le 50 ]; then
    echo "openapi-gen input has only $count packages (expected about 80)" >&2
    exit 1
fi
"$SCRATCH/openapi-gen" --logtostderr -i "$packages" \
    -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$SCRATCH/violations.report" 2>"$SCRATCH/openapi-gen.log"
if ! diff -q "$SCRATCH/violations.report" api/api-rules/violation_exceptions.list >/dev/null; then
    echo "openapi-gen's API-rule report differs from upstream's: the input package set is wrong" >&2
    exit 1
fi

# Fix 4: version stamps for both version packages, as hack/lib/version.sh sets them.
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean"
done
mkdir -p "$BIN_DIR"
go build -trimpath -ldflags "$ldflags" -o "$BIN.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$BIN.tmp" "$BIN"
echo "kube-apiserver: built $("$BIN" --version) at $BIN"
