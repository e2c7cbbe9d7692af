/*
 * tsrun-monitor: the small process that owns one container for its whole life, so the CLI can
 * detach (`run -d`) or die (SIGKILL) without losing the container's output, exit status or
 * `--rm` cleanup. It plays the part conmon plays for podman, with a protocol Node can speak over
 * a plain SOCK_STREAM unix socket.
 *
 *   tsrun-monitor --network-gate FIFO   (a container's createRuntime hook: ready.c)
 *   tsrun-monitor --id ID --bundle DIR --state DIR --runtime PATH --runtime-root DIR --log FILE
 *                 [--tty] [--stdin] [--publish PROTO:IP:PORT]... [--start [--foreground]] [--wait-attach]
 *                 [--exec PROCESS.JSON] [--daemon] [--keep-fd4] [--ready-fd5]
 *                 [--health PROCESS.JSON --health-interval MS --health-timeout MS
 *                  --health-start-period MS --health-start-interval MS --health-retries N]
 *                 [-- EXIT-COMMAND ARG...]
 *
 * With --health it also runs the container's health check (health.c); without it, nothing of
 * the health check exists (no timer, no file).
 *
 * With --exec it owns one `exec` session instead (podman's conmon does the same for `podman
 * exec`): `runtime exec --detach --process PROCESS.JSON` in step 3, for a process whose
 * parent is then this monitor, not the host's init; its exit is recorded as the container's
 * would be. With --start, step 3 is `runtime run --detach` (create and start in one runtime
 * process) for a caller with nothing to do between the two; with --foreground too, it is
 * `runtime run` without --detach (launch.c says how that differs): the runtime lives as long as
 * the container, is the process step 6 waits for, and deletes the container itself, so no
 * `runtime delete` is run (tsrun uses it for an attached `run --rm` without a tty). The
 * runtime's argv, its stdio and the wait for it are in launch.c. With --wait-attach it first says
 * "listening\n" on fd 3, launches the runtime (the caller connects meanwhile, in the socket's
 * backlog), then waits (30 s at most) for one client before it reads a byte of the process's
 * output, so the caller sees the first byte (an exec session, or --start with an attached
 * caller); output the process makes meanwhile waits in the pipes.
 *
 * With --daemon (started by posix_spawn, native-helpers/src/spawn.c) it first forks: the first
 * process exits at once (its spawner reaps it), the monitor goes on in the child, whose parent is
 * then init or the nearest subreaper; its first line on fd 3 is then "pid <monitor pid>\n".
 *
 * Life:
 *   1. becomes a child subreaper, so the container's init (forked by `runtime create`, which then
 *      exits) is re-parented to us and we can wait(2) for it;
 *   2. binds every --publish host port (ports.c; tcp: listening, udp: bound) and holds it until it exits,
 *      so no other program can take a port the container's DNAT rules forward (podman's conmon
 *      does the same); a taken port is reported as "err bind ..." before anything runs. A TCP
 *      connection that reaches a held socket (made before the DNAT rule exists, which the
 *      network set-up running beside `runtime create` adds a moment later) is accepted and reset
 *      at once, as if nothing listened: left in the backlog it hung its client for good;
 *   3. runs `runtime create` with the container's stdio: pipes (stdout, stderr, stdin with
 *      --stdin) or, with --tty, a pty whose master fd runc sends back over STATE/console.sock
 *      (SCM_RIGHTS, runtime-spec "terminal" + runc's --console-socket);
 *   4. reports on fd 3, then closes it: "ok <pid>\n", or "err <message>\n" and exits 1;
 *   5. someone else runs `runtime start` (the CLI, after attaching; not with --start or --exec);
 *      meanwhile and afterwards,
 *      every byte the container writes goes to the log (k8s-file format, as conmon writes it:
 *      "<RFC3339Nano> <stdout|stderr> <F|P> <text>\n", P marking a partial line) and to every
 *      client attached at STATE/attach.sock;
 *   6. when the container's init exits (--foreground: the runtime): drains its output, releases
 *      the held ports, with --start (but --foreground, unless a signal killed the runtime) runs
 *      `runtime delete --force`, so that a container whose exit is recorded has no
 *      runtime state left (cgroup, the runtime's state dir) and nobody else needs to run the
 *      runtime for it (without --start the caller's `runtime start` may still be finishing, and
 *      a delete under it fails it: its cleanup deletes; an exec's container lives on); then
 *      writes STATE/exit (JSON
 *      {"exitCode":N,"finishedAt":"..."}; 128+signal for a signal death) by rename, sends the exit
 *      frame to clients, waits (at most 10 s) for them to hang up, then runs EXIT-COMMAND unless
 *      STATE/cleaned exists or STATE is gone (an attached CLI that cleaned up says so that way).
 *
 * Frames on attach.sock, both ways: 1 byte type, 4 bytes big-endian length, payload.
 *   monitor → client: '1' stdout data, '2' stderr data, 'x' exit (int32 code)
 *   client → monitor: 'i' stdin data, 'c' close stdin, 'r' resize (u16 rows, u16 cols),
 *                     'k' signal (u8 signal number, sent to the container's init),
 *                     'h' run the health check now
 *   monitor → client: 'h' the health check's result (int32 exit code, then the status; empty
 *                     payload: no health check)
 *
 * Contract: the runtime gets only fds 0-2 (everything else here is O_CLOEXEC and the child closes
 * the rest); the monitor never touches the container's filesystem; it holds ~100 KiB of buffers.
 * An fd 4 the caller gives it (--keep-fd4) is held, untouched, until the monitor exits, and no child gets it:
 * rootless, that is slirp4netns's exit fd, so slirp4netns ends with the monitor at the latest.
 * With --ready-fd5 the runtime runs only once fd 5 yields a byte (ready.c: rootless, slirp4netns's
 * ready fd, so a --start container's process never runs before its network is up); its end
 * without one is reported as "err ..." and nothing runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "health.h"
#include "launch.h"
#include "ports.h"
#include "ready.h"

#define MAX_CLIENTS HEALTH_MAX_CLIENTS
#define BUF 8192
#define SYNC_FD 3

struct client {
  int fd;
  unsigned char in[BUF + 5];
  size_t have;
};

static struct {
  const char *id, *bundle, *state, *runtime, *runtime_root, *log_path;
  int tty, open_stdin, wait_attach, start, foreground, daemon, keep_fd4, ready_fd5;
  const char *exec_process;
  const char *health, *health_interval, *health_timeout, *health_start, *health_start_interval, *health_retries;
  char **exit_cmd;
  const char *publish[MAX_PUBLISH];
  int npublish;
} opt;


static int log_fd = -1, stdin_fd = -1, out_fd[2] = {-1, -1}; /* out_fd[1] unused with a tty */
static struct client clients[MAX_CLIENTS];
static pid_t container_pid;
static int partial[2]; /* last log record of the stream ended without a newline */

void die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(SYNC_FD, "err %s\n", msg);
  fprintf(stderr, "tsrun-monitor %s: %s\n", opt.id ? opt.id : "?", msg);
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: tsrun-monitor --id ID --bundle DIR --state DIR --runtime PATH --runtime-root DIR --log FILE [--tty] [--stdin] [--publish PROTO:IP:PORT]... [--start [--foreground]] [--wait-attach] [--exec PROCESS.JSON] [--daemon] [--keep-fd4] [--ready-fd5] [-- EXIT-COMMAND...]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--")) { opt.exit_cmd = argc > i + 1 ? &argv[i + 1] : NULL; break; }
    if (!strcmp(a, "--tty")) { opt.tty = 1; continue; }
    if (!strcmp(a, "--stdin")) { opt.open_stdin = 1; continue; }
    if (!strcmp(a, "--wait-attach")) { opt.wait_attach = 1; continue; }
    if (!strcmp(a, "--start")) { opt.start = 1; continue; }
    if (!strcmp(a, "--foreground")) { opt.foreground = 1; continue; }
    if (!strcmp(a, "--daemon")) { opt.daemon = 1; continue; }
    if (!strcmp(a, "--keep-fd4")) { opt.keep_fd4 = 1; continue; }
    if (!strcmp(a, "--ready-fd5")) { opt.ready_fd5 = 1; continue; }
    if (!strcmp(a, "--publish") && i + 1 < argc && opt.npublish < MAX_PUBLISH) { opt.publish[opt.npublish++] = argv[++i]; continue; }
    if (!strcmp(a, "--id")) slot = &opt.id;
    else if (!strcmp(a, "--bundle")) slot = &opt.bundle;
    else if (!strcmp(a, "--state")) slot = &opt.state;
    else if (!strcmp(a, "--runtime")) slot = &opt.runtime;
    else if (!strcmp(a, "--runtime-root")) slot = &opt.runtime_root;
    else if (!strcmp(a, "--log")) slot = &opt.log_path;
    else if (!strcmp(a, "--exec")) slot = &opt.exec_process;
    else if (!strcmp(a, "--health")) slot = &opt.health;
    else if (!strcmp(a, "--health-interval")) slot = &opt.health_interval;
    else if (!strcmp(a, "--health-timeout")) slot = &opt.health_timeout;
    else if (!strcmp(a, "--health-start-period")) slot = &opt.health_start;
    else if (!strcmp(a, "--health-retries")) slot = &opt.health_retries;
    else if (!strcmp(a, "--health-start-interval")) slot = &opt.health_start_interval;
    if (!slot || i + 1 >= argc) usage();
    *slot = argv[++i];
  }
  if (!opt.id || !opt.bundle || !opt.state || !opt.runtime || !opt.runtime_root || !opt.log_path) usage();
  /* The runtime's own terminal handling (runc without --detach) would want ours: not supported. */
  if (opt.foreground && (!opt.start || opt.tty || opt.exec_process)) usage();
}

/* ---- output: log + clients ---------------------------------------------------------------- */

static void write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { struct pollfd w = {fd, POLLOUT, 0}; poll(&w, 1, 1000); continue; }
      return;
    }
    p += n;
    len -= (size_t)n;
  }
}

static void timestamp(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

/* One k8s-file record per line; a trailing piece without newline is a 'P' (partial) record. */
static void log_data(int stream, const char *data, size_t len) {
  static char rec[BUF + 128];
  char ts[40];
  const char *name = stream == 1 ? "stdout" : "stderr";
  timestamp(ts, sizeof ts);
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    size_t line = nl ? (size_t)(nl - data) : len;
    int head = snprintf(rec, sizeof rec, "%s %s %c ", ts, name, nl ? 'F' : 'P');
    memcpy(rec + head, data, line);
    rec[head + line] = '\n';
    write_all(log_fd, rec, (size_t)head + line + 1);
    partial[stream - 1] = !nl;
    data += line + (nl ? 1 : 0);
    len -= line + (nl ? 1 : 0);
  }
}

static void drop_client(int i) {
  health_client_gone(i);
  close(clients[i].fd);
  clients[i].fd = -1;
  clients[i].have = 0;
}

static void send_frame(int i, char type, const void *data, uint32_t len) {
  unsigned char head[5] = {(unsigned char)type, len >> 24, len >> 16, len >> 8, len};
  if (clients[i].fd < 0) return;
  /* Clients are blocking on purpose: a slow reader slows the container (as a pipe would). */
  if (write(clients[i].fd, head, 5) != 5) { drop_client(i); return; }
  if (len && write(clients[i].fd, data, len) != (ssize_t)len) drop_client(i);
}

void health_reply(int client, const void *data, uint32_t len) { send_frame(client, 'h', data, len); }

static void broadcast(char type, const void *data, uint32_t len) {
  for (int i = 0; i < MAX_CLIENTS; i++) send_frame(i, type, data, len);
}

/* 1: data moved; -1: nothing to read now; 0: EOF/EIO (the writer side is gone, fd closed). */
static int pump(int s) {
  char buf[BUF];
  ssize_t n = read(out_fd[s], buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
  if (n <= 0) { close(out_fd[s]); out_fd[s] = -1; return 0; }
  log_data(s + 1, buf, (size_t)n);
  broadcast(s == 0 ? '1' : '2', buf, (uint32_t)n);
  return 1;
}

/* ---- input from clients ------------------------------------------------------------------ */

static void handle_frame(int client, unsigned char type, const unsigned char *p, uint32_t len) {
  switch (type) {
    case 'h':
      health_request(client);
      break;
    case 'i':
      if (stdin_fd >= 0) write_all(stdin_fd, p, len);
      break;
    case 'c':
      if (stdin_fd >= 0 && !opt.tty) { close(stdin_fd); stdin_fd = -1; }
      break;
    case 'r':
      if (opt.tty && len == 4 && out_fd[0] >= 0) {
        struct winsize ws = {.ws_row = (unsigned short)(p[0] << 8 | p[1]), .ws_col = (unsigned short)(p[2] << 8 | p[3])};
        ioctl(out_fd[0], TIOCSWINSZ, &ws);
      }
      break;
    case 'k':
      if (len == 1 && container_pid > 0) kill(container_pid, p[0]);
      break;
  }
}

static void read_client(int i) {
  struct client *c = &clients[i];
  ssize_t n = read(c->fd, c->in + c->have, sizeof c->in - c->have);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    drop_client(i);
    return;
  }
  c->have += (size_t)n;
  for (;;) {
    if (c->have < 5) return;
    uint32_t len = (uint32_t)c->in[1] << 24 | (uint32_t)c->in[2] << 16 | (uint32_t)c->in[3] << 8 | c->in[4];
    if (len > BUF) { drop_client(i); return; }
    if (c->have < 5 + len) return;
    handle_frame(i, c->in[0], c->in + 5, len);
    memmove(c->in, c->in + 5 + len, c->have - 5 - len);
    c->have -= 5 + len;
  }
}

static void accept_client(int lfd, int exited, int32_t code) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) {
      clients[i].fd = fd;
      clients[i].have = 0;
      if (exited) {
        unsigned char b[4] = {(unsigned char)(code >> 24), (unsigned char)(code >> 16), (unsigned char)(code >> 8), (unsigned char)code};
        send_frame(i, 'x', b, 4);
      }
      return;
    }
  }
  close(fd);
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int listen_unix(const char *name) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(name) >= sizeof addr.sun_path) die("socket path too long: %s", name);
  strcpy(addr.sun_path, name);
  unlink(name);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) die("listening on %s: %s", name, strerror(errno));
  chmod(name, 0600);
  return fd;
}

static void run_exit_command(const sigset_t *mask) {
  struct stat st;
  if (!opt.exit_cmd) return;
  if (stat(opt.state, &st) < 0 || stat("cleaned", &st) == 0) return;
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t pid = launch_spawn(opt.exit_cmd, devnull, devnull, 2, mask, -1);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

/*
 * Keep only stdio and fd 3: posix_spawn (--daemon) passes on every descriptor its caller did not
 * mark close-on-exec (one Node inherited from its own parent, say), and a monitor holding the
 * write end of its caller's pipe would keep a `$(tsrun run -d ...)` waiting for the container.
 */
static void close_inherited(void) {
  unsigned first = opt.ready_fd5 ? 6U : opt.keep_fd4 ? 5U : 4U;
  if (opt.keep_fd4) fcntl(4, F_SETFD, FD_CLOEXEC);
  else if (opt.ready_fd5) close(4);
  if (opt.ready_fd5) fcntl(READY_FD, F_SETFD, FD_CLOEXEC);
  close_from((int)first, -1);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--network-gate")) return gate_main(argv[2]); /* ready.c */
  parse_args(argc, argv);
  close_inherited();
  fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC);
  if (opt.daemon) {
    pid_t child = fork();
    if (child < 0) die("fork: %s", strerror(errno));
    if (child > 0) _exit(0);
    dprintf(SYNC_FD, "pid %d\n", (int)getpid());
  }
  setsid();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("becoming a subreaper: %s", strerror(errno));
  if (chdir(opt.state) < 0) die("entering %s: %s", opt.state, strerror(errno));
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;

  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  if (opt.health && !opt.exec_process) {
    health_configure(opt.health, opt.health_interval ? atol(opt.health_interval) : 0,
                     opt.health_timeout ? atol(opt.health_timeout) : 0, opt.health_start ? atol(opt.health_start) : 0,
                     opt.health_start_interval ? atol(opt.health_start_interval) : 0,
                     opt.health_retries ? atoi(opt.health_retries) : 0);
    health_set_runtime(opt.runtime, opt.runtime_root, opt.id, &old);
  }
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd: %s", strerror(errno));

  char why[256];
  if (ports_hold(opt.publish, opt.npublish, why, sizeof why) < 0) die("%s", why);

  log_fd = open(opt.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log_fd < 0) die("opening log %s: %s", opt.log_path, strerror(errno));
  int lfd = listen_unix("attach.sock");
  /* The caller connects while the runtime starts (the kernel queues it in the backlog). */
  if (opt.wait_attach) dprintf(SYNC_FD, "listening\n");

  if (opt.ready_fd5 && ready_wait(READY_FD, 30000, why, sizeof why) < 0) {
    unlink("attach.sock");
    die("%s", why);
  }
  struct launch_opts lo = {opt.runtime, opt.runtime_root, opt.bundle, opt.id, opt.state, opt.exec_process,
                           opt.tty, opt.open_stdin, opt.start, opt.foreground};
  struct launch l;
  launch_runtime(&lo, sfd, &old, &l);
  if (opt.wait_attach) {
    /* Before the first byte of output is read, so the caller sees every byte. A caller gone
       meanwhile leaves a container that runs on as a detached one (its log keeps the output). */
    struct pollfd w = {lfd, POLLIN, 0};
    if (poll(&w, 1, 30000) > 0) accept_client(lfd, 0, 0);
  }
  container_pid = l.container;
  stdin_fd = l.stdin_fd;
  out_fd[0] = l.out_fd[0];
  out_fd[1] = l.out_fd[1];
  dprintf(SYNC_FD, "ok %d\n", container_pid);
  close(SYNC_FD);
  health_arm();

  /* Main loop: until the container's init exits, then drain what it left in the pipes. */
  int exited = 0;
  int32_t code = 0;
  /* An exec'd process runs as soon as the runtime returns, and may be gone already: its SIGCHLD
     was read by the wait for the runtime above, so the first pass looks without one. */
  int reap = 1;
  struct timespec exit_time = {0, 0};
  /* --foreground: the runtime waits for the init and exits with its status; it is the one to wait
     for (it may have ended already). A runtime killed by a signal left its container behind. */
  pid_t waited = opt.foreground ? l.runtime : container_pid;
  int runtime_killed = 0;
  if (opt.foreground && l.runtime_status != -1) {
    exited = 1;
    health_stop();
    code = WIFEXITED(l.runtime_status) ? WEXITSTATUS(l.runtime_status) : 128 + WTERMSIG(l.runtime_status);
    runtime_killed = WIFSIGNALED(l.runtime_status);
    clock_gettime(CLOCK_MONOTONIC, &exit_time);
  }
  for (;;) {
    struct pollfd p[5 + MAX_CLIENTS + MAX_PUBLISH];
    int n = 0;
    p[n++] = (struct pollfd){sfd, POLLIN, 0};
    p[n++] = (struct pollfd){lfd, POLLIN, 0};
    for (int s = 0; s < 2; s++) p[n++] = (struct pollfd){out_fd[s], POLLIN, 0};
    for (int i = 0; i < MAX_CLIENTS; i++) p[n++] = (struct pollfd){clients[i].fd, POLLIN, 0};
    p[n++] = (struct pollfd){health_fd(), POLLIN, 0};
    n = ports_poll(p, n);
    int open_outputs = (out_fd[0] >= 0) + (out_fd[1] >= 0);
    if (exited && open_outputs == 0) break;
    /* After the exit, output still held open by a stray writer gets 2 s. */
    if (exited) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - exit_time.tv_sec >= 2) break;
    }
    if (poll(p, (nfds_t)n, exited ? 100 : health_timeout(reap ? 0 : -1)) < 0 && errno != EINTR) break;
    if ((p[0].revents & POLLIN) || reap) {
      reap = 0;
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      int st;
      pid_t w;
      while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
        if (w != waited) { health_reaped(w, st); continue; }
        exited = 1;
        runtime_killed = opt.foreground && WIFSIGNALED(st);
        health_stop();
        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        clock_gettime(CLOCK_MONOTONIC, &exit_time);
      }
    }
    if (p[1].revents & POLLIN) accept_client(lfd, 0, 0);
    for (int s = 0; s < 2; s++) {
      if (p[2 + s].revents & (POLLIN | POLLHUP | POLLERR)) {
        /* With a tty, the master is also stdin: keep it for resize/input until exit. */
        while (out_fd[s] >= 0 && pump(s) == 1 && exited) {}
        if (opt.tty && out_fd[0] < 0) stdin_fd = -1;
      }
    }
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd >= 0 && (p[4 + i].revents & (POLLIN | POLLHUP | POLLERR))) read_client(i);
    }
    if (p[4 + MAX_CLIENTS].revents & (POLLIN | POLLHUP | POLLERR)) health_readable();
    ports_refuse();
    if (!exited) health_tick();
  }
  for (int s = 0; s < 2; s++) {
    if (partial[s]) log_data(s + 1, "\n", 1);
  }

  char ts[40], json[128];
  timestamp(ts, sizeof ts);
  int len = snprintf(json, sizeof json, "{\"exitCode\":%d,\"finishedAt\":\"%s\"}\n", code, ts);
  /* The container is gone: its ports are free again before anyone can see it exited. */
  ports_release();
  if (opt.start && (!opt.foreground || runtime_killed)) launch_delete(&lo, &old);
  int efd = open("exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (efd >= 0) {
    write_all(efd, json, (size_t)len);
    /* Not synced: runtime state means nothing after a reboot, and a torn file reads as a crash. */
    close(efd);
    rename("exit.tmp", "exit");
  }
  unsigned char b[4] = {(unsigned char)(code >> 24), (unsigned char)(code >> 16), (unsigned char)(code >> 8), (unsigned char)code};
  broadcast('x', b, 4);

  /* Let attached clients finish (an attached CLI cleans up itself, then hangs up). */
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    struct pollfd p[1 + MAX_CLIENTS];
    int n = 0, live = 0;
    p[n++] = (struct pollfd){lfd, POLLIN, 0};
    for (int i = 0; i < MAX_CLIENTS; i++) {
      p[n++] = (struct pollfd){clients[i].fd, POLLIN, 0};
      live += clients[i].fd >= 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!live || now.tv_sec - start.tv_sec >= 10) break;
    if (poll(p, (nfds_t)n, 200) < 0 && errno != EINTR) break;
    if (p[0].revents & POLLIN) accept_client(lfd, 1, code);
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd >= 0 && (p[1 + i].revents & (POLLIN | POLLHUP | POLLERR))) read_client(i);
    }
  }
  close(lfd);
  unlink("attach.sock");
  run_exit_command(&old);
  return 0;
}
