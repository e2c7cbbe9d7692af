/*
 * tsrun-monitor's published host ports (monitor.c, Life 2): every --publish port is bound (tcp:
 * listening, udp: bound) from the monitor's start and held until the container is gone, so no
 * other program can take a port the container's DNAT rules forward (podman's conmon does the
 * same). A TCP connection that reaches a held socket (made before the DNAT rule exists) is
 * accepted and reset at once, as if nothing listened: left in the backlog it hung its client.
 *
 *   ports_hold(specs, n, why, size)  bind them all ("tcp:0.0.0.0:8080", "udp:::1:53": the address
 *                                    is everything between the first and the last colon); -1 with
 *                                    the reason in `why` ("bind tcp 0.0.0.0:8080: ..." for a taken
 *                                    port: Node reads that form, runtime/monitor.ts)
 *   ports_refuse()                   reset what reached the held TCP ports
 *   ports_poll(p, n)                 their pollfds from p[n] on; returns the new n
 *   ports_release()                  close them all (the container is gone)
 *
 * The sockets are close-on-exec: the runtime and the exit command never see them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "ports.h"

static const char *const *spec;
static int count;
static int held[MAX_PUBLISH];

static int is_udp(int i) { return !strncmp(spec[i], "udp:", 4); }

static int hold_one(const char *s, char *why, size_t size) {
  const char *c1 = strchr(s, ':'), *c2 = strrchr(s, ':');
  char host[64];
  if (!c1 || c2 == c1 || (size_t)(c2 - c1 - 1) >= sizeof host) { snprintf(why, size, "bad --publish %s", s); return -1; }
  int udp = !strncmp(s, "udp:", 4);
  size_t hl = (size_t)(c2 - c1 - 1);
  memcpy(host, c1 + 1, hl);
  host[hl] = 0;
  int port = atoi(c2 + 1);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &v4->sin_addr) == 1) {
    family = AF_INET; v4->sin_family = AF_INET; v4->sin_port = htons((uint16_t)port); len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    family = AF_INET6; v6->sin6_family = AF_INET6; v6->sin6_port = htons((uint16_t)port); len = sizeof *v6;
  } else {
    snprintf(why, size, "bad --publish %s", s);
    return -1;
  }
  int fd = socket(family, (udp ? SOCK_DGRAM : SOCK_STREAM | SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0) { snprintf(why, size, "socket: %s", strerror(errno)); return -1; }
  if (!udp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (!udp && listen(fd, 1) < 0)) {
    snprintf(why, size, "bind %s %s:%d: %s", udp ? "udp" : "tcp", host[0] ? host : "0.0.0.0", port, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int ports_hold(const char *const *specs, int n, char *why, size_t size) {
  spec = specs;
  count = 0;
  for (int i = 0; i < n && i < MAX_PUBLISH; i++) {
    int fd = hold_one(specs[i], why, size);
    if (fd < 0) return -1;
    held[count++] = fd;
  }
  return 0;
}

void ports_refuse(void) {
  for (int i = 0; i < count; i++) {
    if (is_udp(i)) continue;
    int c;
    while ((c = accept4(held[i], NULL, NULL, SOCK_CLOEXEC)) >= 0) {
      struct linger l = {1, 0};
      setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      close(c);
    }
  }
}

int ports_poll(struct pollfd *p, int n) {
  for (int i = 0; i < count; i++)
    if (!is_udp(i)) p[n++] = (struct pollfd){held[i], POLLIN, 0};
  return n;
}

void ports_release(void) {
  for (int i = 0; i < count; i++) close(held[i]);
  count = 0;
}
