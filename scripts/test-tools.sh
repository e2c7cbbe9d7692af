#!/usr/bin/env bash
# The Engine API tests' real clients: the `docker` CLI from Debian's docker.io package, unpacked
# with dpkg-deb (the package's daemon, containerd and its service units are never installed or
# run). Only the client binary is kept, in .tools/bin (or $1); the tests run that binary, never a
# `docker` found on PATH. Idempotent: an existing binary is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.tools/bin}"
if [ -x "$dest/docker" ]; then exit 0; fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q docker.io >/dev/null)
dpkg-deb -x "$tmp"/docker.io_*.deb "$tmp/x"
install -m 0755 "$tmp/x/usr/bin/docker" "$dest/docker"
"$dest/docker" --version
