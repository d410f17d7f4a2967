#!/usr/bin/env bash
# Builds Toxiproxy (the fault-injection proxy the tests put between the hub and Keycloak) from its
# Go module, through the Go module proxy, with Debian's Go 1.19 whatever `go` on PATH is.
# Idempotent: a cached binary of the right version is kept.
set -euo pipefail

VERSION=v2.5.0   # the newest Toxiproxy whose go.mod accepts Go 1.19
CACHE_DIR="${PRIMEHUB_SPAWNER_CACHE:-$HOME/.cache/primehub-spawner}"
BIN="$CACHE_DIR/bin/toxiproxy-server"
GO=/usr/lib/go-1.19/bin/go

if [ -x "$BIN" ] && "$BIN" -version 2>/dev/null | grep -qF "${VERSION#v}"; then
    echo "toxiproxy: cached $BIN ($VERSION)"
    exit 0
fi
[ -x "$GO" ] || { echo "missing $GO: run scripts/install-system-packages.sh" >&2; exit 1; }
mkdir -p "$CACHE_DIR/bin"
SCRATCH="$(mktemp -d "$CACHE_DIR/toxiproxy.XXXXXX")"
trap 'chmod -R u+w "$SCRATCH" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
echo "toxiproxy: building github.com/Shopify/toxiproxy/v2 $VERSION"
env GOROOT=/usr/lib/go-1.19 GOTOOLCHAIN=local GO111MODULE=on GOFLAGS= CGO_ENABLED=0 \
    GOPATH="$SCRATCH/gopath" GOCACHE="$SCRATCH/gocache" GOBIN="$SCRATCH/bin" \
    GOPROXY="${GOPROXY:-https://proxy.golang.org}" \
    "$GO" install -trimpath -ldflags "-s -w -X github.com/Shopify/toxiproxy/v2.Version=${VERSION#v}" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION"
mv "$SCRATCH/bin/server" "$BIN"
echo "toxiproxy: built $("$BIN" -version 2>&1 | head -1) at $BIN"
