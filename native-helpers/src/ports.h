/* The published host ports tsrun-monitor holds for its container's life (ports.c). */
#ifndef TSRUN_PORTS_H
#define TSRUN_PORTS_H
#include <poll.h>
#include <stddef.h>
#define MAX_PUBLISH 256
int ports_hold(const char *const *specs, int n, char *why, size_t size);
void ports_refuse(void);
int ports_poll(struct pollfd *p, int n);
void ports_release(void);
#endif
