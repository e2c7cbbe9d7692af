#!/usr/bin/env bash
# The README's quick start, in one command, on a fresh Debian 12 machine as root (Node.js 20 installed):
#   1. install what tsrun needs (missing Debian packages, npm ci, the build) and `npm link` it;
#   2. since Docker Hub cannot be reached from this kind of machine, start a LOCAL REGISTRY MIRROR
#      (Debian's docker-registry on 127.0.0.1:5000, scripts/demo-mirror.ts) and seed it with
#      `busybox` (Debian's busybox-static) and `node:17-alpine` -- a LOCAL STAND-IN for the official
#      image built from this machine's node and npm; a registries.conf drop-in makes it a mirror of
#      docker.io, exactly as a pull-through mirror would be configured;
#   3. run the main job with the real CLI: pull, run, a detached container listed, logged and
#      removed; `tsrun run --rm -p 3000:3000 node:17-alpine -e …` answered with curl; then the
#      getting-started tutorial: `tsrun build -t getting-started .` of examples/getting-started,
#      `tsrun run -d -p 3000:3000 getting-started`, its page fetched, the container stopped and removed.
#
# Idempotent: each setup step is skipped when already done, the images are built the same way and
# the build comes from the cache, so a second run is quick and adds nothing. Everything it adds is
# listed at the end; `scripts/quickstart.sh --remove` takes it away again.
#
# For its test (test/e2e/quickstart.test.ts): TSRUN_QUICKSTART_SKIP_SETUP=1 skips step 1 (the
# checkout is already built and `tsrun` on PATH); TSRUN_ROOT and the TSRUN_DEMO_MIRROR_* variables
# (see demo-mirror.ts) move the store and the mirror elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (it installs packages and starts a local registry)" >&2; exit 1; }

MIRROR_DIR=${TSRUN_DEMO_MIRROR_DIR:-/var/lib/tsrun-demo-mirror}
PACKAGES=(docker-registry zstd runc busybox-static openssl ca-certificates make g++ python3 containernetworking-plugins iptables iproute2 curl)
IMAGES=(getting-started node:17-alpine busybox)

step() { printf '\n==> %s\n' "$*"; }
# Print a command as one would type it, then run it.
show() {
  local out='$' a
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  printf '%s\n' "$out"
  "$@"
}

if [ "${1:-}" = --remove ]; then
  step "removing what the quick start added"
  command -v tsrun >/dev/null && { tsrun rmi "${IMAGES[@]}" 2>/dev/null || true; tsrun builder prune -f >/dev/null || true; }
  [ -f dist/scripts/demo-mirror.js ] && node dist/scripts/demo-mirror.js stop --purge
  if [ "$(readlink -f "$(npm prefix -g)/lib/node_modules/tsrun")" = "$REPO" ]; then npm unlink -g tsrun --silent && echo "removed the global tsrun link"; fi
  echo "Debian packages are left installed; the quick start installed only those that were missing (its output named them)."
  exit 0
fi

if [ "${TSRUN_QUICKSTART_SKIP_SETUP:-}" != 1 ]; then
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' 2>/dev/null \
    || { echo "quickstart: tsrun needs Node.js 20 or newer (node --version: $(node --version 2>&1))" >&2; exit 1; }
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    ADDED_PACKAGES="${missing[*]}"
  fi
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    step "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  if [ ! -f dist/tsrun.cjs ] || [ -n "$(find src scripts test/helpers native-helpers/src package.json tsconfig.json -newer dist/tsrun.cjs -print -quit)" ]; then
    step "npm run build"
    npm run build --silent >/dev/null
  fi
  if [ "$(readlink -f "$(npm prefix -g)/lib/node_modules/tsrun")" != "$REPO" ] || ! command -v tsrun >/dev/null; then
    step "npm link (puts tsrun on your PATH)"
    npm link --silent >/dev/null 2>&1 || npm link
    LINKED=1
  fi
fi

step "a local registry mirror of docker.io (Docker Hub is not reachable here)"
node dist/scripts/demo-mirror.js start

cleanup() { tsrun rm -f quickstart-demo quickstart-node >/dev/null 2>&1 || true; [ -z "${APP:-}" ] || tsrun rm -f "$APP" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "the main job"
show tsrun pull busybox
show tsrun images
show tsrun run --rm busybox sh -c 'echo "hello from $(hostname), pid $$ in its own namespace"; id'
show tsrun run -d --name quickstart-demo busybox sh -c 'echo started; sleep 300'
show tsrun ps
show tsrun logs quickstart-demo
show tsrun rm -f quickstart-demo

step "node:17-alpine (here: the mirror's local stand-in), an HTTP server on port 3000 answered with curl"
# The server answers once and exits, so --rm removes the container.
show tsrun run --rm -p 3000:3000 --name quickstart-node node:17-alpine \
  -e 'const s = require("http").createServer((req, res) => { res.end(`hello from node ${process.version} in ${require("os").hostname()}\n`); s.close(); }).listen(3000)' &
NODE_RUN=$!
answered=
for _ in $(seq 1 50); do
  if curl -sf http://127.0.0.1:3000/; then answered=1; break; fi
  sleep 0.2
done
[ -n "$answered" ] || { echo "quickstart: nothing answered on 127.0.0.1:3000" >&2; kill "$NODE_RUN" 2>/dev/null || true; exit 1; }
wait "$NODE_RUN"

step "the getting-started tutorial: build the todo app, run it, open its page"
cd examples/getting-started
show cat Dockerfile
show tsrun build -t getting-started .
printf '%s\n' '$ tsrun run -d -p 3000:3000 getting-started'
APP=$(tsrun run -d -p 3000:3000 getting-started)
echo "$APP"
show tsrun ps
page=
for _ in $(seq 1 50); do
  page=$(curl -sf http://127.0.0.1:3000/) && break
  sleep 0.2
done
printf '%s\n' '$ curl http://127.0.0.1:3000/'
printf '%s\n' "$page" | grep -E '<h1>|<li>' || { echo "quickstart: the todo app's page did not load" >&2; exit 1; }
show curl -sf -H 'Content-Type: application/json' -d '{"name":"Try tsrun on my own app"}' http://127.0.0.1:3000/items
echo
show tsrun stop "${APP:0:12}"
show tsrun rm "${APP:0:12}"
APP=
cd "$REPO"

step "what the quick start added to this machine"
[ -z "${ADDED_PACKAGES:-}" ] || echo "  Debian packages: ${ADDED_PACKAGES} (apt-get remove them if you no longer want them)"
[ -z "${LINKED:-}" ] || echo "  a global link: tsrun -> $REPO/bin/tsrun.js (npm link)"
echo "  a registry on ${TSRUN_DEMO_MIRROR_ADDR:-127.0.0.1:5000} with its storage in $MIRROR_DIR, and ${TSRUN_DEMO_MIRROR_CONF:-/etc/containers/registries.conf.d/50-tsrun-demo-mirror.conf}"
echo "  images in tsrun's store (${TSRUN_ROOT:-/var/lib/tsrun}): ${IMAGES[*]}, and the build cache"
echo "  (each run of the quick start checks these and adds nothing new)"
echo "Remove it all:  scripts/quickstart.sh --remove"
echo "  (= tsrun rmi ${IMAGES[*]}; tsrun builder prune; node dist/scripts/demo-mirror.js stop --purge; npm unlink -g tsrun)"

step "try next"
cat <<'EOF'
  tsrun run -it --rm busybox sh               # a shell in a container (exit leaves nothing behind)
  tsrun history getting-started               # the layers the build made, step by step
  tsrun image inspect node:17-alpine          # the stand-in's config and labels
  tsrun info                                  # where tsrun keeps things, and what rootless mode needs
  tsrun run --help                            # Docker's flags: -v, -e, -w, -u, --network, -m ...
  tsrun run --explain --rm busybox echo hi    # each step of how a container comes to be, explained
  tsrun run --dry-run busybox echo hi         # a bundle and replay.sh/undo.sh to do it all by hand
  # docs/how-containers-work.md walks through it with the commands to check each step yourself
EOF
