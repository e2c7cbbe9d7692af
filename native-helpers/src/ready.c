/*
 * tsrun-monitor --ready-fd5: the container's network comes up beside the monitor, and the
 * monitor runs the runtime (`run --detach`: the container's process starts at once) only once
 * that network says it is ready, so the process never runs before its network is up.
 *
 * Rootless, fd 5 is the read end of slirp4netns's --ready-fd pipe (network/slirp.ts): slirp4netns
 * writes "1" there once tap0 is configured and its API socket listens, then closes it. End of
 * file without a byte means slirp4netns is gone (it failed: its log says why); the caller keeps
 * no other copy of the read end, so nobody else can take the byte.
 *
 *   ready_wait(fd, timeout_ms, why, size) -> 0 once a byte arrived; -1 on end of file, a read
 *       error or the timeout, with `why` set. Closes `fd` either way.
 *
 * As root the network's plugins run beside the runtime's create, and the runtime holds the
 * container back itself: `tsrun-monitor --network-gate FIFO` is the container's createRuntime
 * hook (runtime-spec config.md "createRuntime Hooks": run in the runtime's namespaces after the
 * container's namespaces exist, before pivot_root; the runtime fails the container if a hook
 * fails). tsrun holds FIFO open for reading and writing while the runtime runs (runtime/gate.ts)
 * and writes "1" once the network is up; if it closes FIFO without a byte (the network failed,
 * or tsrun died), the read ends at end of file and the hook fails, so the process never runs.
 *
 *   gate_main(fifo) -> the hook's exit status: 0 after a "1", or at once when FIFO does not
 *       exist (the bundle run by hand, without tsrun); 1 (with a line on stderr, which the
 *       runtime quotes in its error) on end of file, an error or after 120 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ready.h"

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int ready_wait(int fd, int timeout_ms, char *why, size_t size) {
  long end = now_ms() + timeout_ms;
  int rc = -1;
  for (;;) {
    long left = end - now_ms();
    if (left <= 0) {
      snprintf(why, size, "the network was not ready within %d s", timeout_ms / 1000);
      break;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(why, size, "waiting for the network: %s", strerror(errno));
      break;
    }
    if (n == 0) continue;
    char b;
    ssize_t r = read(fd, &b, 1);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r == 1) {
      rc = 0;
      break;
    }
    snprintf(why, size, "the network did not come up: its ready fd ended without a word%s%s",
             r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
    break;
  }
  close(fd);
  return rc;
}

int gate_main(const char *fifo) {
  char state[4096];
  /* The runtime writes the container's state to stdin: take it, so its write never fails. */
  while (read(0, state, sizeof state) > 0) {}
  /* Without O_NONBLOCK an open with no writer left would block; a read then blocks again. */
  int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  /* No FIFO: nobody is setting a network up for this run (the bundle replayed by hand, as
     `tsrun run --explain` shows it): nothing to wait for. tsrun makes the FIFO before the runtime
     runs, and a tsrun that died leaves it (its end of file fails the hook below). */
  if (fd < 0 && errno == ENOENT) return 0;
  if (fd < 0) {
    fprintf(stderr, "tsrun network gate: opening %s: %s\n", fifo, strerror(errno));
    return 1;
  }
  fcntl(fd, F_SETFL, 0);
  alarm(120); /* the runtime's own timeout for the hook says the same */
  char b = 0;
  ssize_t r;
  do r = read(fd, &b, 1);
  while (r < 0 && errno == EINTR);
  close(fd);
  if (r == 1 && b == '1') return 0;
  fprintf(stderr, "tsrun network gate: the network was not set up (%s)\n",
          r < 0 ? strerror(errno) : "its fifo closed without a word");
  return 1;
}
