/*
 * The container's health check, run by its monitor (tsrun-monitor; monitor.c calls in here).
 * Docker runs HEALTHCHECK probes from its daemon (moby daemon/health.go); tsrun has no daemon,
 * so the process that already owns the container does it, with Docker's rules:
 *
 *   - the first probe runs one interval after the start, each next one an interval after the
 *     previous one ended; the interval is the start interval (default 5s) while the container
 *     is "starting" within its start period (Docker 25's --health-start-interval); a probe is `runtime exec --detach --process STATE/health-process.json
 *     ID` (the container's own process with the probe's argv, written by Node: runtime/health.ts),
 *     stdout and stderr into one pipe (in order: the runtime copies nothing), stdin /dev/null.
 *     The runtime returns once the process runs; the process, orphaned, is re-parented to the
 *     monitor (a child subreaper) and its exit status is the probe's. A probe ends when that
 *     process exits, whatever children it left holding the pipe;
 *   - a probe still running at its timeout is SIGKILLed (the process and the runtime), its result
 *     ExitCode -1, "Health check exceeded timeout (5s)";
 *   - exit 0: healthy, streak 0; anything else: FailingStreak+1 (not while still "starting"
 *     within the start period), unhealthy at `retries`;
 *   - the output kept is the first 4096 bytes, "..." appended when there was more; the rest is
 *     read and dropped, so a check that floods its output neither blocks nor grows the monitor
 *     (the pipe is closed when the runtime exits: a forked child holding it gets EPIPE);
 *   - the last 5 results are kept; STATE/health.json (Docker's State.Health: Status,
 *     FailingStreak, Log [Start, End, ExitCode, Output], and ChangedAt, the time of the last
 *     status change, for `tsrun events`) is rewritten by rename after every probe.
 *
 * Probes are skipped while STATE/started is missing (the CLI has not run `runtime start` yet) or
 * STATE/paused exists. A client may ask for a probe now (frame 'h'); every asking client gets
 * frame 'h' (int32 exit code, then the status) when the next probe ends.
 *
 * Without --health nothing here runs: no timer, no fd, no file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "health.h"
#include "launch.h"

#define MAX_OUTPUT 4096
#define MAX_LOG 5

struct result {
  char start[40], end[40];
  int exit_code;
  char output[MAX_OUTPUT + 4];
  size_t len;
};

static struct {
  int enabled;
  const char *process, *runtime, *runtime_root, *id;
  long interval, timeout, start_period, start_interval; /* ms */
  int retries;
  const sigset_t *mask;
  struct timespec t0, due, probe_start;
  pid_t runc, probe;  /* the runtime while it runs; the probe's process once known */
  int runc_status, running;
  pid_t early[8];     /* children reaped before the runtime told the probe's pid */
  int early_status[8], nearly;
  int out;
  int timed_out;
  char start_wall[40];
  struct result cur;
  int truncated;
  struct result log[MAX_LOG];
  int nlog;
  int status; /* 0 starting, 1 healthy, 2 unhealthy */
  int streak;
  char changed_at[40];
  int waiting[HEALTH_MAX_CLIENTS];
  int stopped;
} h = {.runc = -1, .probe = -1, .out = -1};

static const char *status_name(int s) { return s == 1 ? "healthy" : s == 2 ? "unhealthy" : "starting"; }

static long ms_between(const struct timespec *a, const struct timespec *b) {
  return (b->tv_sec - a->tv_sec) * 1000L + (b->tv_nsec - a->tv_nsec) / 1000000L;
}

static void add_ms(struct timespec *t, long ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) { t->tv_sec++; t->tv_nsec -= 1000000000L; }
}

static void now_mono(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

static void wall(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

void health_configure(const char *process, long interval_ms, long timeout_ms, long start_period_ms, long start_interval_ms, int retries) {
  h.start_interval = start_interval_ms > 0 ? start_interval_ms : 5000;
  h.enabled = process != NULL;
  h.process = process;
  h.interval = interval_ms > 0 ? interval_ms : 30000;
  h.timeout = timeout_ms > 0 ? timeout_ms : 30000;
  h.start_period = start_period_ms > 0 ? start_period_ms : 0;
  h.retries = retries > 0 ? retries : 3;
}

int health_enabled(void) { return h.enabled; }

/* ---- the state file -------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s, size_t len) {
  fputc('"', f);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '\n') fputs("\\n", f);
    else if (c == '\t') fputs("\\t", f);
    else if (c == '\r') fputs("\\r", f);
    else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void write_state(void) {
  FILE *f = fopen("health.json.tmp", "we");
  if (!f) return;
  fprintf(f, "{\"Status\":\"%s\",\"FailingStreak\":%d,\"Log\":[", status_name(h.status), h.streak);
  for (int i = 0; i < h.nlog; i++) {
    struct result *r = &h.log[i];
    fprintf(f, "%s{\"Start\":\"%s\",\"End\":\"%s\",\"ExitCode\":%d,\"Output\":", i ? "," : "", r->start, r->end, r->exit_code);
    json_string(f, r->output, r->len);
    fputc('}', f);
  }
  fprintf(f, "],\"ChangedAt\":\"%s\"}\n", h.changed_at);
  fflush(f);
  fsync(fileno(f));
  if (fclose(f) == 0) rename("health.json.tmp", "health.json");
}

/* moby's getInterval: the start interval while starting within the start period. */
static long next_interval(const struct timespec *now) {
  if (ms_between(&h.t0, now) >= h.start_period) return h.interval;
  return h.status == 0 ? h.start_interval : h.interval;
}

void health_arm(void) {
  if (!h.enabled) return;
  now_mono(&h.t0);
  h.due = h.t0;
  add_ms(&h.due, next_interval(&h.t0));
  wall(h.changed_at, sizeof h.changed_at);
  write_state();
}

/* ---- probes ---------------------------------------------------------------------------------- */

static void start_probe(void) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return;
  /* runc writes the pid file through ".NAME" and a rename: a runtime killed at a timeout may leave either. */
  unlink("health.pid");
  unlink(".health.pid");
  char *argv[] = {(char *)h.runtime, "--root", (char *)h.runtime_root, "--log", "runtime.log", "--log-format", "json",
                  "exec", "--detach", "--pid-file", "health.pid", "--process", (char *)h.process, (char *)h.id, NULL};
  pid_t pid = fork();
  if (pid < 0) { close(p[0]); close(p[1]); return; }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, h.mask, NULL);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0) _exit(127);
    close_from(3, -1);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  h.runc = pid;
  h.probe = -1;
  h.running = 1;
  h.nearly = 0;
  h.out = p[0];
  h.timed_out = 0;
  h.truncated = 0;
  h.cur.len = 0;
  now_mono(&h.probe_start);
  wall(h.cur.start, sizeof h.cur.start);
}

/* Keep the first MAX_OUTPUT bytes, drop the rest; at most `budget` bytes are read per call. */
static void read_output(size_t budget) {
  static char sink[65536];
  while (h.out >= 0 && budget > 0) {
    char *dst = sink;
    size_t room = sizeof sink;
    int keep = h.cur.len < MAX_OUTPUT;
    if (keep) { dst = h.cur.output + h.cur.len; room = MAX_OUTPUT - h.cur.len; }
    ssize_t n = read(h.out, dst, room);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) { close(h.out); h.out = -1; }
      return;
    }
    if (keep) h.cur.len += (size_t)n;
    else h.truncated = 1;
    budget -= (size_t)n < budget ? (size_t)n : budget;
  }
}

int health_fd(void) { return h.out; }

void health_readable(void) { read_output(1 << 20); }

/* Go's time.Duration.String() of a whole number of milliseconds: 500ms, 5s, 1.5s, 1m30s, 1h0m0s. */
static void go_duration(long ms, char *out, size_t size) {
  if (ms < 1000) { snprintf(out, size, "%ldms", ms); return; }
  char sec[24];
  long s = (ms / 1000) % 60, frac = ms % 1000;
  if (frac) {
    int n = snprintf(sec, sizeof sec, "%ld.%03ld", s, frac);
    while (n > 0 && sec[n - 1] == '0') sec[--n] = 0;
  } else {
    snprintf(sec, sizeof sec, "%ld", s);
  }
  long m = (ms / 60000) % 60, hr = ms / 3600000;
  if (hr) snprintf(out, size, "%ldh%ldm%ss", hr, m, sec);
  else if (m) snprintf(out, size, "%ldm%ss", m, sec);
  else snprintf(out, size, "%ss", sec);
}

static void finish(int status, int started) {
  struct result *r = &h.cur;
  wall(r->end, sizeof r->end);
  /* What the pipe still holds (a forked child may keep it open: take what is there, no more). */
  read_output(1 << 20);
  if (h.out >= 0) { close(h.out); h.out = -1; }
  /* Docker: the first 4096 bytes, and "..." when more came. */
  if (h.truncated) { memcpy(r->output + r->len, "...", 3); r->len += 3; }
  unlink("health.pid");
  if (h.timed_out) {
    r->exit_code = -1;
    char d[48];
    go_duration(h.timeout, d, sizeof d);
    r->len = (size_t)snprintf(r->output, sizeof r->output, "Health check exceeded timeout (%s)", d);
  } else if (!started) {
    /* The runtime never started the process (its error is the output): Docker says -1, with
       containerd's ": unknown" after the runtime's message. */
    char msg[MAX_OUTPUT];
    size_t n = r->len < sizeof msg - 1 ? r->len : sizeof msg - 1;
    memcpy(msg, r->output, n);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) n--;
    msg[n] = 0;
    char *line = strrchr(msg, '\n');
    line = line ? line + 1 : msg;
    r->exit_code = -1;
    r->len = (size_t)snprintf(r->output, sizeof r->output, "OCI runtime exec failed: %s: unknown", line);
    if (r->len >= sizeof r->output) r->len = sizeof r->output - 1;
  } else {
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  if (h.nlog == MAX_LOG) { memmove(h.log, h.log + 1, sizeof h.log[0] * (MAX_LOG - 1)); h.nlog--; }
  h.log[h.nlog++] = *r;
  int old = h.status;
  if (r->exit_code == 0) {
    h.streak = 0;
    h.status = 1;
  } else {
    int count = 1;
    if (h.status == 0 && ms_between(&h.t0, &h.probe_start) < h.start_period) count = 0;
    if (count) {
      h.streak++;
      if (h.streak >= h.retries) h.status = 2;
    }
  }
  if (h.status != old) wall(h.changed_at, sizeof h.changed_at);
  write_state();
  h.runc = -1;
  h.probe = -1;
  h.running = 0;
  now_mono(&h.due);
  add_ms(&h.due, next_interval(&h.due));
  for (int i = 0; i < HEALTH_MAX_CLIENTS; i++) {
    if (!h.waiting[i]) continue;
    h.waiting[i] = 0;
    char reply[16];
    int32_t code = r->exit_code;
    unsigned char b[4] = {(unsigned char)(code >> 24), (unsigned char)(code >> 16), (unsigned char)(code >> 8), (unsigned char)code};
    memcpy(reply, b, 4);
    size_t sl = strlen(status_name(h.status));
    memcpy(reply + 4, status_name(h.status), sl);
    health_reply(i, reply, (uint32_t)(4 + sl));
  }
}

static pid_t read_pid(void) {
  char text[32] = "";
  int fd = open("health.pid", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) { ssize_t n = read(fd, text, sizeof text - 1); text[n > 0 ? n : 0] = 0; close(fd); }
  return (pid_t)atoi(text);
}

int health_reaped(pid_t pid, int status) {
  if (!h.enabled || !h.running || pid <= 0) return 0;
  if (pid == h.probe) {
    finish(status, 1);
    return 1;
  }
  if (pid != h.runc) {
    /* Perhaps the probe, reaped before its runtime: kept until the runtime's pid file is read. */
    if (h.probe < 0 && h.nearly < 8) { h.early[h.nearly] = pid; h.early_status[h.nearly++] = status; }
    return 0;
  }
  h.runc = -1;
  h.runc_status = status;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    /* The runtime failed (or was killed at the timeout) before the process ran. */
    pid_t p = read_pid();
    if (p > 0) kill(p, SIGKILL);
    finish(status, 0);
    return 1;
  }
  h.probe = read_pid();
  if (h.probe <= 0) { finish(status, 0); return 1; }
  for (int i = 0; i < h.nearly; i++) {
    if (h.early[i] == h.probe) { finish(h.early_status[i], 1); return 1; }
  }
  if (h.timed_out) kill(h.probe, SIGKILL);
  return 1;
}

static void kill_probe(void) {
  pid_t pid = h.probe > 0 ? h.probe : read_pid();
  if (pid > 0) kill(pid, SIGKILL);
  if (h.runc > 0) kill(h.runc, SIGKILL);
}

static int exists(const char *name) {
  struct stat st;
  return stat(name, &st) == 0;
}

int health_timeout(int current) {
  if (!h.enabled || h.stopped) return current;
  struct timespec now;
  now_mono(&now);
  long ms;
  if (h.running) {
    if (h.timed_out) return current; /* killed: its reaping wakes us */
    struct timespec end = h.probe_start;
    add_ms(&end, h.timeout);
    ms = ms_between(&now, &end);
  } else {
    ms = ms_between(&now, &h.due);
  }
  if (ms < 0) ms = 0;
  if (ms > 0x3fffffff) ms = 0x3fffffff;
  return current < 0 || ms < current ? (int)ms : current;
}

void health_tick(void) {
  if (!h.enabled || h.stopped) return;
  struct timespec now;
  now_mono(&now);
  if (h.running) {
    struct timespec end = h.probe_start;
    add_ms(&end, h.timeout);
    if (!h.timed_out && ms_between(&now, &end) <= 0) {
      h.timed_out = 1;
      kill_probe();
    }
    return;
  }
  int asked = 0;
  for (int i = 0; i < HEALTH_MAX_CLIENTS; i++) asked |= h.waiting[i];
  if (!asked && ms_between(&now, &h.due) > 0) return;
  if (!exists("started") || exists("paused")) {
    h.due = now;
    add_ms(&h.due, h.interval);
    return;
  }
  start_probe();
}

void health_request(int client) {
  if (!h.enabled || h.stopped) {
    health_reply(client, "", 0);
    return;
  }
  h.waiting[client] = 1;
  health_tick();
}

void health_client_gone(int client) {
  if (client >= 0 && client < HEALTH_MAX_CLIENTS) h.waiting[client] = 0;
}

void health_stop(void) {
  if (!h.enabled || h.stopped) return;
  h.stopped = 1;
  if (h.running) {
    /* The container's pid namespace is gone with its init, and the probe with it; the runtime
       may still be on its way. */
    kill_probe();
    if (h.runc > 0) {
      int st;
      while (waitpid(h.runc, &st, 0) < 0 && errno == EINTR) {}
    }
    h.running = 0;
  }
  if (h.out >= 0) { close(h.out); h.out = -1; }
}

void health_set_runtime(const char *runtime, const char *runtime_root, const char *id, const sigset_t *mask) {
  h.runtime = runtime;
  h.runtime_root = runtime_root;
  h.id = id;
  h.mask = mask;
}
