/*
 * tsrun-monitor's runtime launch (monitor.c's steps 3 and 4, split out of it): the runtime's argv,
 * its stdio, and the wait until the container exists.
 *
 *   create (default)   `runtime create`: returns once the container's init waits at the exec
 *                      fifo; the caller runs `runtime start`.
 *   --start            `runtime run --detach`: returns once the process runs.
 *   --exec FILE        `runtime exec --detach --process FILE`.
 *   --foreground       (with --start, no --tty) `runtime run` in the foreground: one runtime
 *                      process for the container's whole life instead of `run --detach` and a
 *                      `delete` after the exit. runc (runtime-spec "lifecycle"; runc's `run`
 *                      without --detach or --keep) waits for the init, forwards the signals it
 *                      gets to it, destroys the container (cgroup, state dir) when it exits and
 *                      then exits with its status (128+N for signal N: what the monitor records
 *                      anyway). It copies the container's stdio through pipes of its own, and it
 *                      stays the init's parent: the monitor waits for the runtime, not the init.
 *                      The init's pid is read from the pid file, which runc writes (to a temp
 *                      name, renamed into place) once the process started; the monitor watches
 *                      the state dir with inotify for it. A runtime that exits before that file
 *                      exists failed to create the container: its last stderr line is the error,
 *                      as with create.
 *
 * Contract: on return `l->container` > 0 and, with --foreground, `l->runtime_status` is the
 * runtime's wait status if it already ended (a container that was quicker than the pid file's
 * reader), else -1. Only fds 0-2 (and, for a long console path, the state dir's) reach the
 * runtime. Everything else is monitor.c's. (--foreground leaves its inotify descriptor open,
 * close-on-exec and without a watch, for the monitor's exit to close: see the wait's end.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "launch.h"
#include "ports.h"

void close_from(int first, int keep) {
#ifdef SYS_close_range
  if (keep < first) {
    if (syscall(SYS_close_range, first, ~0U, 0U) == 0) return;
  } else if ((keep == first || syscall(SYS_close_range, first, keep - 1, 0U) == 0) &&
             syscall(SYS_close_range, keep + 1, ~0U, 0U) == 0)
    return;
#endif
  for (int fd = first; fd < 1024; fd++)
    if (fd != keep) close(fd);
}

pid_t launch_spawn(char **argv, int in, int out, int err, const sigset_t *mask, int keep_fd) {
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid > 0) return pid;
  sigprocmask(SIG_SETMASK, mask, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
  close_from(3, keep_fd);
  execv(argv[0], argv);
  dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

void launch_delete(const struct launch_opts *o, const sigset_t *mask) {
  char *argv[] = {(char *)o->runtime, "--root", (char *)o->runtime_root, "delete", "--force", (char *)o->id, NULL};
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t pid = launch_spawn(argv, devnull, devnull, 2, mask, -1);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (devnull >= 0) close(devnull);
}

static int listen_console(void) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, "console.sock");
  unlink(addr.sun_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) die("listening on console.sock: %s", strerror(errno));
  chmod(addr.sun_path, 0600);
  return fd;
}

/* Receive the pty master runc sends over the console socket. */
static int recv_fd(int sock) {
  char data[256];
  char ctl[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {data, sizeof data};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0) return -1;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

static pid_t read_pid(const char *path) {
  char buf[32];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  return (pid_t)atoi(buf);
}

/* runc prints its error last on stderr; keep that line (trimmed) as the message. */
static void last_line(char *text) {
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) text[--n] = 0;
  char *nl = strrchr(text, '\n');
  if (nl) memmove(text, nl + 1, strlen(nl + 1) + 1);
}

static void drain_into(int fd, char *buf, size_t size) {
  size_t have = strlen(buf);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  for (;;) {
    if (have + 1 >= size) memmove(buf, buf + size / 2, have + 1 - size / 2), have -= size / 2;
    ssize_t n = read(fd, buf + have, size - 1 - have);
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = 0;
  }
}

void launch_runtime(const struct launch_opts *o, int sfd, const sigset_t *mask, struct launch *l) {
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int err_pipe[2], out_pipe[2] = {-1, -1}, in_pipe[2] = {-1, -1}, console = -1, watch = -1, wd = -1;
  if (pipe2(err_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
  char pidfile[] = "pid", consock[4096];
  /* runc connects to the console socket by path, limited to 107 bytes; a longer state path
   * (XDG_RUNTIME_DIR=/run/user/UID and a 64-hex id) is reached through a directory fd runc
   * inherits. */
  int state_fd = -1;
  if (strlen(o->state) + sizeof "/console.sock" > sizeof ((struct sockaddr_un *)0)->sun_path) {
    state_fd = open(".", O_PATH | O_DIRECTORY);
    if (state_fd < 0) die("opening %s: %s", o->state, strerror(errno));
    snprintf(consock, sizeof consock, "/proc/self/fd/%d/console.sock", state_fd);
  } else {
    snprintf(consock, sizeof consock, "%s/console.sock", o->state);
  }
  char *rargv[24];
  int k = 0;
  rargv[k++] = (char *)o->runtime;
  rargv[k++] = "--root";
  rargv[k++] = (char *)o->runtime_root;
  rargv[k++] = "--log";
  rargv[k++] = "runtime.log";
  rargv[k++] = "--log-format";
  rargv[k++] = "json";
  if (o->exec_process) {
    rargv[k++] = "exec";
    rargv[k++] = "--detach";
    rargv[k++] = "--process";
    rargv[k++] = (char *)o->exec_process;
  } else if (o->start) {
    rargv[k++] = "run";
    if (!o->foreground) rargv[k++] = "--detach";
    rargv[k++] = "--bundle";
    rargv[k++] = (char *)o->bundle;
  } else {
    rargv[k++] = "create";
    rargv[k++] = "--bundle";
    rargv[k++] = (char *)o->bundle;
  }
  rargv[k++] = "--pid-file";
  rargv[k++] = pidfile;
  if (o->tty) {
    console = listen_console();
    rargv[k++] = "--console-socket";
    rargv[k++] = consock;
  }
  rargv[k++] = (char *)o->id;
  rargv[k] = NULL;

  if (o->foreground) {
    /* Before the runtime exists, so its rename cannot be missed; a pid file from before is not its. */
    unlink(pidfile);
    watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watch < 0 || (wd = inotify_add_watch(watch, ".", IN_MOVED_TO | IN_CLOSE_WRITE)) < 0)
      die("watching %s for the pid file: %s", o->state, strerror(errno));
  }
  l->stdin_fd = -1;
  if (o->tty) {
    l->runtime = launch_spawn(rargv, devnull, devnull, err_pipe[1], mask, state_fd);
  } else {
    if (pipe2(out_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    if (o->open_stdin && pipe2(in_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    /* The container gets runc's stdio (or, --foreground, runc's copy of it): stdout → out_pipe, stderr → err_pipe. */
    l->runtime = launch_spawn(rargv, o->open_stdin ? in_pipe[0] : devnull, out_pipe[1], err_pipe[1], mask, state_fd);
    close(out_pipe[1]);
    if (in_pipe[0] >= 0) close(in_pipe[0]);
    l->stdin_fd = in_pipe[1];
    l->out_fd[0] = out_pipe[0];
    l->out_fd[1] = err_pipe[0];
  }
  close(err_pipe[1]);
  close(devnull);
  if (state_fd >= 0) close(state_fd);

  /* Wait for the runtime to finish (--foreground: for the pid file); with a tty, take the pty
     master it sends meanwhile. */
  int status = -1, master = -1;
  pid_t pid = 0;
  while (status == -1 && pid <= 0) {
    struct pollfd p[2 + MAX_PUBLISH] = {{sfd, POLLIN, 0}, {console >= 0 ? console : watch, POLLIN, 0}};
    int n = ports_poll(p, 2);
    if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR) die("poll: %s", strerror(errno));
    ports_refuse();
    if (console >= 0 && (p[1].revents & POLLIN)) {
      int conn = accept4(console, NULL, NULL, SOCK_CLOEXEC);
      if (conn >= 0) { master = recv_fd(conn); close(conn); }
      close(console);
      console = -1;
      unlink("console.sock");
    }
    if (watch >= 0 && (p[1].revents & POLLIN)) {
      char ev[4096];
      while (read(watch, ev, sizeof ev) > 0) {}
      pid = read_pid(pidfile);
    }
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) > 0) {}
    int st;
    if (waitpid(l->runtime, &st, WNOHANG) == l->runtime) status = st;
  }
  /* Closing an inotify instance waits for the kernel's SRCU grace period (6–12 ms here), which
     would hold the monitor back from its main loop, and so from reporting a quick container's
     exit: the watch goes now (~0.05 ms), the descriptor with the monitor's exit. */
  if (watch >= 0) inotify_rm_watch(watch, wd);
  /* --foreground: a runtime that ended after writing the pid file ran the container. */
  if (o->foreground && pid <= 0) pid = read_pid(pidfile);
  if (!(o->foreground && pid > 0) && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
    char errtext[4096] = "";
    drain_into(err_pipe[0], errtext, sizeof errtext);
    last_line(errtext);
    unlink("attach.sock");
    die("%s", errtext[0] ? errtext : "the runtime failed to create the container");
  }
  l->runtime_status = o->foreground ? status : -1;
  l->container = o->foreground ? pid : read_pid(pidfile);
  if (l->container <= 0) die("the runtime wrote no container pid");
  if (o->tty) {
    if (master < 0) die("the runtime sent no terminal");
    close(err_pipe[0]);
    l->out_fd[0] = master;
    l->out_fd[1] = -1;
    l->stdin_fd = master;
  }
  fcntl(l->out_fd[0], F_SETFL, O_NONBLOCK);
  if (l->out_fd[1] >= 0) fcntl(l->out_fd[1], F_SETFL, O_NONBLOCK);
}
