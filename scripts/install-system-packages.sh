#!/usr/bin/env bash
# Installs the Debian packages the test ground needs (idempotent; needs root).
#   etcd-server          the API server's datastore
#   golang-1.19-go dpkg-dev  build kube-apiserver from Debian's source package with Debian's Go 1.19
#   openjdk-17-jre-headless maven  run Keycloak, fetch it from Maven Central
#   openssl curl         throw-away PKI, readiness polling
#   bubblewrap           sandbox for the local kubelet's pod processes
#   chromium             browser for the end-to-end tests
set -euo pipefail

packages=(etcd-server etcd-client golang-1.19-go dpkg-dev openjdk-17-jre-headless maven openssl curl bubblewrap chromium)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

deb_src=/etc/apt/sources.list.d/primehub-spawner-debian-src.sources
need_update=0
if [ ! -f "$deb_src" ]; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root tee "$deb_src" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_update=1
fi

if [ "${#missing[@]}" -eq 0 ] && [ "$need_update" -eq 0 ]; then
    echo "system packages: all present"
    exit 0
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
if [ "${#missing[@]}" -gt 0 ]; then
    echo "system packages: installing ${missing[*]}"
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's etcd package starts a system etcd on 2379; the test ground runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    as_root systemctl disable --now etcd || true
fi
