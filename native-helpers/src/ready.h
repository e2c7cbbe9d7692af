/* Waiting for a network's "ready" byte before tsrun-monitor runs the runtime (ready.c). */
#ifndef TSRUN_READY_H
#define TSRUN_READY_H
#include <stddef.h>
#define READY_FD 5
int ready_wait(int fd, int timeout_ms, char *why, size_t size);
int gate_main(const char *fifo);
#endif
