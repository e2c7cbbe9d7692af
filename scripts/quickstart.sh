#!/usr/bin/env bash
# The README's quick start, in one command, on a fresh Debian 12 machine as root:
#   1. install what tsrun needs (Debian packages, npm ci, the native helpers build) and `npm link`;
#   2. since Docker Hub cannot be reached from this kind of machine, start a LOCAL REGISTRY MIRROR
#      (Debian's docker-registry on 127.0.0.1:5000) and seed it with a demo image, `busybox`, built
#      here from Debian's busybox-static package; a registries.conf drop-in makes it a mirror of
#      docker.io, exactly as a pull-through mirror would be configured;
#   3. run the main job with the real CLI: pull the image, list it, run a container from it
#      (--rm: nothing is left behind), a detached one that is listed, logged and removed, and a
#      web server on the bridge network published on the host's port 8080 and fetched with curl.
# Everything it adds is listed at the end, with how to remove it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (it installs packages and starts a local registry)" >&2; exit 1; }

echo "==> installing Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends docker-registry zstd runc busybox-static openssl ca-certificates make g++ python3 containernetworking-plugins iptables iproute2 curl >/dev/null
echo "==> npm ci && npm run build && npm link"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
npm link --silent >/dev/null 2>&1 || npm link

echo "==> starting a local registry mirror on 127.0.0.1:5000 and seeding it (Docker Hub is not reachable here)"
node dist/scripts/demo-mirror.js start

echo "==> the main job"
set -x
tsrun pull busybox
tsrun images
tsrun run --rm busybox sh -c 'echo "hello from $(hostname), pid $$ in its own namespace"; id'
tsrun run -d --name quickstart-demo busybox sh -c 'echo started; sleep 300'
tsrun ps
tsrun logs quickstart-demo
tsrun rm -f quickstart-demo
# A web server on the bridge network, published on the host's port 8080 (busybox httpd serving /etc).
tsrun run -d --rm --name quickstart-web -p 8080:80 busybox httpd -f -p 80 -h /etc
tsrun port quickstart-web
for i in 1 2 3 4 5 6 7 8 9 10; do curl -sf http://127.0.0.1:8080/hostname && break; sleep 0.2; done
tsrun stop quickstart-web
