/*
 * Starting a daemon without forking Node (the addon's spawnDaemon and reap).
 *
 *   spawnDaemon(file, argv, stderrFd[, keep]) -> { pid, syncFd }
 *       posix_spawn(3) of `file` in a new session, every signal at its default and none blocked,
 *       the caller's environment and working directory (which may be gone: the program is to
 *       chdir where it works, as tsrun-monitor does at once); stdin and stdout /dev/null, stderr `stderrFd`, and fd 3
 *       the write end of a new pipe whose read end (close-on-exec) is `syncFd`, for the caller
 *       to read; then copies of `keep` (one fd, or an array of at most MAX_KEEP) as fds 4, 5, ...
 *       (a negative fd is skipped: its slot stays closed). Node opens everything close-on-exec, but what Node itself inherited without it
 *       passes on too: the program closes what it does not know (tsrun-monitor does).
 *   spawnProgram(file, argv, env) -> { pid, stdin, stdout, stderr }
 *       posix_spawn(3) of `file` (a path) with `env` ("K=V" strings) as its environment, in the
 *       caller's session and working directory, every signal at its default and none blocked;
 *       its stdin, stdout and stderr are new pipes whose other ends (close-on-exec, the caller's
 *       to close) are returned. The program keeps running as the caller's child: reap it with
 *       `reap` (util/exec.ts does, once its output has ended).
 *   reap(pid[, nohang]) -> status    waitpid(2) for that child: its wait status; with `nohang`
 *                                    (WNOHANG) -1 while it still runs
 *   pipe() -> [readFd, writeFd]      pipe2(2), both ends close-on-exec (for fds handed to a
 *                                    program by spawnDaemon's `keep`, which clears the flag
 *                                    on the copies only)
 *
 * Why: child_process.spawn forks the whole Node process (~60 MB mapped): 5-8 ms of page-table
 * copying and copy-on-write faults on every `run`. glibc's posix_spawn uses clone(CLONE_VM |
 * CLONE_VFORK): no copy. Either the spawned program daemonizes (tsrun-monitor --daemon: it forks
 * and its first process exits at once), and the caller reaps that first process with `reap` when
 * the pipe reaches its end; or it lives on as the caller's child (slirp4netns, network/slirp.ts),
 * and the caller reaps it with `reap(pid, true)` on SIGCHLD. Either way no zombie is left to a
 * long-lived caller (the API service), which Node's own child-process bookkeeping would otherwise
 * have done.
 *
 * Contract: synchronous; on failure throws as native.c's calls do (code = errno name) and
 * leaves no fd open and no process behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "native.h"

extern char **environ;

#define MAX_ARGS 256
#define MAX_KEEP 4

/* Strings of a JS array as a NULL-terminated, malloc'ed vector (free with free_vec); NULL after a throw. */
static char **string_vec(napi_env env, napi_value arr, const char *what) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n >= 65536) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char **v = calloc(n + 1, sizeof *v);
  if (!v) { throw_errno(env, ENOMEM, "calloc", NULL); return NULL; }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    size_t len = 0;
    napi_get_element(env, arr, i, &e);
    if (napi_get_value_string_utf8(env, e, NULL, 0, &len) != napi_ok || !(v[i] = malloc(len + 1))) {
      for (uint32_t j = 0; j < i; j++) free(v[j]);
      free(v);
      napi_throw_type_error(env, NULL, what);
      return NULL;
    }
    napi_get_value_string_utf8(env, e, v[i], len + 1, &len);
  }
  return v;
}

static void free_vec(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* A spawn's attributes: every signal at its default and none blocked in the child, plus `flags`. */
static void clean_signals(posix_spawnattr_t *attr, short flags) {
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_init(attr);
  posix_spawnattr_setflags(attr, flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(attr, &none);
  posix_spawnattr_setsigdefault(attr, &all);
}

static napi_value js_spawn_daemon(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char file[PATH_BUF];
  uint32_t n = 0, nkeep = 0;
  int32_t err_fd = -1, keep_fd[MAX_KEEP];
  if (argc < 3 || get_string(env, argv[0], file, sizeof file) || napi_get_array_length(env, argv[1], &n) != napi_ok
      || napi_get_value_int32(env, argv[2], &err_fd) != napi_ok || n == 0 || n >= MAX_ARGS) {
    napi_throw_type_error(env, NULL, "spawnDaemon(file, argv[], stderrFd[, keepFd | keepFds[]])");
    return NULL;
  }
  if (argc > 3) {
    bool is_array = false;
    napi_is_array(env, argv[3], &is_array);
    if (is_array) {
      if (napi_get_array_length(env, argv[3], &nkeep) != napi_ok || nkeep > MAX_KEEP) {
        napi_throw_type_error(env, NULL, "spawnDaemon: at most 4 fds to keep");
        return NULL;
      }
      for (uint32_t i = 0; i < nkeep; i++) {
        napi_value v;
        napi_get_element(env, argv[3], i, &v);
        if (napi_get_value_int32(env, v, &keep_fd[i]) != napi_ok) keep_fd[i] = -1;
      }
    } else if (napi_get_value_int32(env, argv[3], &keep_fd[0]) == napi_ok) {
      nkeep = 1;
    }
  }
  char **args = string_vec(env, argv[1], "spawnDaemon: argv must be strings");
  napi_value result = NULL;
  if (!args) return NULL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) { throw_errno(env, errno, "pipe2", file); goto out; }
  /* Above 3, so no dup2 below targets its own source (which would keep close-on-exec set). */
  int w = fcntl(p[1], F_DUPFD_CLOEXEC, 10), e = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
  int k[MAX_KEEP], bad = w < 0 || e < 0;
  for (uint32_t i = 0; i < nkeep; i++) {
    k[i] = keep_fd[i] >= 0 ? fcntl(keep_fd[i], F_DUPFD_CLOEXEC, 10) : -1;
    if (keep_fd[i] >= 0 && k[i] < 0) bad = 1;
  }
  close(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  clean_signals(&attr, POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&fa, 0, 1);
  posix_spawn_file_actions_adddup2(&fa, e, 2);
  posix_spawn_file_actions_adddup2(&fa, w, 3);
  for (uint32_t i = 0; i < nkeep; i++)
    if (k[i] >= 0) posix_spawn_file_actions_adddup2(&fa, k[i], 4 + (int)i);
  pid_t pid = -1;
  int rc = bad ? EBADF : posix_spawn(&pid, file, &fa, &attr, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (w >= 0) close(w);
  if (e >= 0) close(e);
  for (uint32_t i = 0; i < nkeep; i++)
    if (k[i] >= 0) close(k[i]);
  if (rc != 0) {
    close(p[0]);
    throw_errno(env, rc, "posix_spawn", file);
    goto out;
  }
  napi_value v;
  napi_create_object(env, &result);
  napi_create_int32(env, pid, &v);
  napi_set_named_property(env, result, "pid", v);
  napi_create_int32(env, p[0], &v);
  napi_set_named_property(env, result, "syncFd", v);
out:
  free_vec(args);
  return result;
}

static napi_value js_spawn_program(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char file[PATH_BUF];
  if (argc < 3 || get_string(env, argv[0], file, sizeof file)) {
    napi_throw_type_error(env, NULL, "spawnProgram(file, argv[], env[])");
    return NULL;
  }
  char **args = string_vec(env, argv[1], "spawnProgram: argv must be strings");
  char **envp = args ? string_vec(env, argv[2], "spawnProgram: env must be strings") : NULL;
  napi_value result = NULL;
  if (!envp) goto out;
  if (!args[0]) { napi_throw_type_error(env, NULL, "spawnProgram: argv is empty"); goto out; }
  /* p[i][0] read end, p[i][1] write end; all close-on-exec, and above 2 so no dup2 below is a no-op. */
  int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}, rc = 0;
  for (int i = 0; i < 3 && !rc; i++) {
    int q[2];
    if (pipe2(q, O_CLOEXEC) < 0) { rc = errno; break; }
    p[i][0] = fcntl(q[0], F_DUPFD_CLOEXEC, 10);
    p[i][1] = fcntl(q[1], F_DUPFD_CLOEXEC, 10);
    close(q[0]);
    close(q[1]);
    if (p[i][0] < 0 || p[i][1] < 0) rc = errno ? errno : EMFILE;
  }
  pid_t pid = -1;
  if (!rc) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    clean_signals(&attr, 0);
    posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
    posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
    rc = posix_spawn(&pid, file, &fa, &attr, args, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  /* The child's ends are the child's now (or nobody's). */
  if (p[0][0] >= 0) close(p[0][0]);
  if (p[1][1] >= 0) close(p[1][1]);
  if (p[2][1] >= 0) close(p[2][1]);
  if (rc != 0) {
    if (p[0][1] >= 0) close(p[0][1]);
    if (p[1][0] >= 0) close(p[1][0]);
    if (p[2][0] >= 0) close(p[2][0]);
    throw_errno(env, rc, "posix_spawn", file);
    goto out;
  }
  napi_value v;
  napi_create_object(env, &result);
  napi_create_int32(env, pid, &v);
  napi_set_named_property(env, result, "pid", v);
  napi_create_int32(env, p[0][1], &v);
  napi_set_named_property(env, result, "stdin", v);
  napi_create_int32(env, p[1][0], &v);
  napi_set_named_property(env, result, "stdout", v);
  napi_create_int32(env, p[2][0], &v);
  napi_set_named_property(env, result, "stderr", v);
out:
  free_vec(args);
  free_vec(envp);
  return result;
}

static napi_value js_reap(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t pid = 0;
  bool nohang = false;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, "reap(pid[, nohang])");
    return NULL;
  }
  if (argc > 1) napi_get_value_bool(env, argv[1], &nohang);
  int status = 0;
  pid_t got;
  while ((got = waitpid(pid, &status, nohang ? WNOHANG : 0)) < 0) {
    if (errno != EINTR) return throw_errno(env, errno, "waitpid", NULL);
  }
  if (got == 0) status = -1; /* WNOHANG: still running */
  napi_value result;
  napi_create_int32(env, status, &result);
  return result;
}

static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return throw_errno(env, errno, "pipe2", NULL);
  napi_value result, v;
  napi_create_array_with_length(env, 2, &result);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, p[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

void define_spawn(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "spawnDaemon", NULL, js_spawn_daemon, NULL, NULL, NULL, napi_default, NULL },
    { "spawnProgram", NULL, js_spawn_program, NULL, NULL, NULL, napi_default, NULL },
    { "reap", NULL, js_reap, NULL, NULL, NULL, napi_default, NULL },
    { "pipe", NULL, js_pipe, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
