#!/bin/sh
# Run a command (as root) in a private network and mount namespace with its own tmpfs on
# /run/netns, /run/tsrun and /run/containers: tsrun's and podman's bridges, iptables rules,
# namespaces and leases made there never touch the host's (docs/benchmarks.md, network section).
# With --host-address, a veth gets 192.0.2.10/24 and a default route, as "the host's address"
# for bench:net. Processes, cgroups, /etc and /tmp are still the host's.
#
#   scripts/netns-sandbox.sh sleep 7000 &      # then: nsenter -t <pid of sleep> -m -n CMD
#   scripts/netns-sandbox.sh --host-address node dist/scripts/bench/net.js --size 16 --rounds 1
set -eu
hostaddr=''
if [ "${1-}" = --host-address ]; then hostaddr=1; shift; fi
exec unshare -nm --propagation private sh -c '
  mkdir -p /run/netns /run/tsrun /run/containers
  mount -t tmpfs none /run/netns; mount -t tmpfs none /run/tsrun; mount -t tmpfs none /run/containers
  ip link set lo up
  if [ -n "$0" ]; then
    ip link add h0 type veth peer name h1
    ip addr add 192.0.2.10/24 dev h0; ip link set h0 up; ip link set h1 up
    ip route add default via 192.0.2.1
    sysctl -qw net.ipv4.ip_forward=1
  fi
  exec "$@"' "$hostaddr" "$@"
