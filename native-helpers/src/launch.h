/* How tsrun-monitor runs the OCI runtime for its container: see launch.c. */
#ifndef TSRUN_LAUNCH_H
#define TSRUN_LAUNCH_H
#include <signal.h>
#include <sys/types.h>

struct launch_opts {
  const char *runtime, *runtime_root, *bundle, *id, *state, *exec_process;
  int tty, open_stdin, start, foreground;
};

struct launch {
  pid_t runtime;     /* the runtime's process */
  int runtime_status; /* its wait status once reaped, -1 while it runs (--foreground only) */
  pid_t container;   /* the container's init (or the exec'd process), from the pid file */
  int stdin_fd;      /* where client input goes (-1: none) */
  int out_fd[2];     /* stdout (the pty master with a tty), stderr (-1 with a tty) */
};

/* Steps 3-4's first half: run the runtime until the container exists (or started, or, with
   --foreground, until its pid file appears); dies with the runtime's message if it fails. */
void launch_runtime(const struct launch_opts *o, int sfd, const sigset_t *mask, struct launch *l);
/* `runtime delete --force ID`, waited for. */
void launch_delete(const struct launch_opts *o, const sigset_t *mask);
/* fork+exec with the given stdio and the signal mask restored; keep_fd (-1: none) is inherited. */
pid_t launch_spawn(char **argv, int in, int out, int err, const sigset_t *mask, int keep_fd);
/* Close every descriptor from `first` on except `keep` (-1: none): close_range(2) where the
   kernel has it (Linux 5.9), else one close(2) per fd below 1024 (~1000 system calls). */
void close_from(int first, int keep);
/* Defined by monitor.c: report "err MESSAGE" on fd 3 and exit 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#endif
