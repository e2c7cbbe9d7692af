/*
 * tsrun's native seam: the few syscalls Node cannot make (Linux only).
 *
 *   mknod(path, mode, major, minor)       device nodes, fifos, overlayfs whiteouts (0/0 char devices)
 *   lsetxattr(path, name, value: Buffer)  e.g. security.capability, trusted.overlay.opaque
 *   lgetxattr(path, name) -> Buffer|null  null when the attribute is absent (ENODATA)
 *   llistxattr(path) -> string[]
 *   lsetxattr/lgetxattr/llistxattr(path, ..., follow = true) follow a final link: only for /proc/self/fd/N,
 *                                         which names exactly what an (O_PATH) fd names
 *   flock(fd, op) -> boolean              op = LOCK_SH|LOCK_EX|LOCK_UN [|LOCK_NB]; false = would block
 *   mount(source, target, fstype, data)   mount(2) with no flags (overlay roots); relative paths in
 *                                         `data` resolve against the process's cwd
 *   umount(target)                        umount2(2) with no flags
 *   newNetns(target)                      a new network namespace kept by a bind mount on the
 *                                         (existing) file `target`, as `unshare --net=FILE` makes
 *                                         it, without a process: a short-lived thread of ours
 *                                         unshares its own network namespace (allowed in a
 *                                         multi-threaded process, unlike a user namespace),
 *                                         bind-mounts /proc/thread-self/ns/net, sets its
 *                                         loopback up (as `ip link set lo up`, what CNI's loopback
 *                                         plugin does) and exits; the calling thread's namespace
 *                                         never changes
 *   setTopdir(path) -> boolean            chattr +T on a directory (FS_TOPDIR_FL): ext2/3/4 then place
 *                                         each new subdirectory as a top-level one (Orlov spreading);
 *                                         false where the filesystem has no such flag
 *   x32Abi() -> boolean|null              whether the kernel runs x32 system calls (x86-64 only):
 *                                         one getpid with the x32 bit set, made only when this
 *                                         process is under no seccomp filter (one without x32
 *                                         could kill it for the probe); null when not asked
 *                                         (another arch, a filter, prctl refused)
 *   ia32Abi() -> boolean|null             whether the kernel runs 32-bit (int 0x80) system calls
 *                                         (x86-64 only; IA32 emulation built in and not turned
 *                                         off at boot): a vfork'd child makes one getpid through
 *                                         int 0x80; it exits 0 where the call ran and 2 from its
 *                                         own SIGSEGV handler where the kernel has no such entry
 *                                         (the fault); null for anything else (another arch, a
 *                                         filter of the caller's killing it, no child)
 *
 * The *at() calls for walking a container's root from directory fds are in at.c; starting a
 * daemon without forking Node (spawnDaemon, reap) is in spawn.c; the store's layer fingerprint
 * walk (fingerprintLines) in fingerprint.c.
 *
 * Contract: every call is synchronous and never follows a final symlink (l* variants); on failure
 * it throws an Error whose `code` is the errno name (EPERM, ENOENT, ...), with `errno`, `syscall`
 * and `path` set, as Node's own fs errors are. Nothing here keeps state between calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <signal.h>
#include <node_api.h>
#include "native.h"

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EACCES: return "EACCES";
    case EEXIST: return "EEXIST"; case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL"; case ENOSPC: return "ENOSPC"; case EROFS: return "EROFS";
    case ENOTSUP: return "ENOTSUP"; case ENODATA: return "ENODATA"; case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG"; case EWOULDBLOCK: return "EWOULDBLOCK"; case EBADF: return "EBADF";
    case ELOOP: return "ELOOP"; case ENAMETOOLONG: return "ENAMETOOLONG"; case EDQUOT: return "EDQUOT";
    case EINTR: return "EINTR"; case ENOLCK: return "ENOLCK"; case EIO: return "EIO";
    case ENOSYS: return "ENOSYS"; case EXDEV: return "EXDEV";
    case ENOTEMPTY: return "ENOTEMPTY"; case EBUSY: return "EBUSY"; case EMLINK: return "EMLINK";
    case ESRCH: return "ESRCH"; case ENOMEM: return "ENOMEM"; case ECHILD: return "ECHILD";
    default: return "EUNKNOWN";
  }
}

napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path) {
  char msg[PATH_BUF + 128];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", errno_name(e), strerror(e), syscall, path ? path : "");
  napi_value message, error, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "code", v);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, error, "path", v);
  }
  napi_throw(env, error);
  return NULL;
}

int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return -1;
  }
  if (len >= size - 1) {
    napi_throw_range_error(env, NULL, "string too long");
    return -1;
  }
  return 0;
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  uint32_t mode = 0, major = 0, minor = 0;
  if (argc < 4 || get_string(env, argv[0], path, sizeof path)) return NULL;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &major);
  napi_get_value_uint32(env, argv[3], &minor);
  if (mknod(path, (mode_t)mode, makedev(major, minor)) != 0) return throw_errno(env, errno, "mknod", path);
  return NULL;
}

static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF], name[NAME_BUF];
  void *data = NULL;
  size_t len = 0;
  if (argc < 3 || get_string(env, argv[0], path, sizeof path) || get_string(env, argv[1], name, sizeof name)) return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  bool follow = false;
  if (argc >= 4) napi_get_value_bool(env, argv[3], &follow);
  if ((follow ? setxattr : lsetxattr)(path, name, data, len, 0) != 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF], name[NAME_BUF];
  if (argc < 2 || get_string(env, argv[0], path, sizeof path) || get_string(env, argv[1], name, sizeof name)) return NULL;
  bool follow = false;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &follow);
  ssize_t (*get)(const char *, const char *, void *, size_t) = follow ? getxattr : lgetxattr;
  for (;;) {
    ssize_t size = get(path, name, NULL, 0);
    if (size < 0) {
      if (errno == ENODATA) { napi_value n; napi_get_null(env, &n); return n; }
      return throw_errno(env, errno, "lgetxattr", path);
    }
    void *out = NULL;
    napi_value buf;
    napi_create_buffer(env, (size_t)size, &out, &buf);
    ssize_t got = size == 0 ? 0 : get(path, name, out, (size_t)size);
    if (got < 0 && errno == ERANGE) continue; /* grew between the calls */
    if (got < 0) return throw_errno(env, errno, "lgetxattr", path);
    if (got == size) return buf;
    napi_value sliced;
    napi_create_buffer_copy(env, (size_t)got, out, NULL, &sliced);
    return sliced;
  }
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (argc < 1 || get_string(env, argv[0], path, sizeof path)) return NULL;
  bool follow = false;
  if (argc >= 2) napi_get_value_bool(env, argv[1], &follow);
  ssize_t (*list)(const char *, char *, size_t) = follow ? listxattr : llistxattr;
  for (;;) {
    ssize_t size = list(path, NULL, 0);
    if (size < 0) return throw_errno(env, errno, "llistxattr", path);
    char *names = malloc((size_t)size + 1);
    if (!names) return throw_errno(env, ENOMEM, "llistxattr", path);
    ssize_t got = size == 0 ? 0 : list(path, names, (size_t)size);
    if (got < 0) {
      int e = errno;
      free(names);
      if (e == ERANGE) continue;
      return throw_errno(env, e, "llistxattr", path);
    }
    napi_value arr;
    napi_create_array(env, &arr);
    uint32_t i = 0;
    for (ssize_t off = 0; off < got;) {
      size_t l = strnlen(names + off, (size_t)(got - off));
      napi_value s;
      napi_create_string_utf8(env, names + off, l, &s);
      napi_set_element(env, arr, i++, s);
      off += (ssize_t)l + 1;
    }
    free(names);
    return arr;
  }
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1, op = 0;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_int32(env, argv[1], &op);
  napi_value result;
  int r;
  do { r = flock(fd, op); } while (r != 0 && errno == EINTR);
  if (r != 0) {
    if (errno == EWOULDBLOCK && (op & LOCK_NB)) { napi_get_boolean(env, false, &result); return result; }
    return throw_errno(env, errno, "flock", NULL);
  }
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char source[PATH_BUF], target[PATH_BUF], fstype[NAME_BUF], data[2 * PATH_BUF];
  if (argc < 4 || get_string(env, argv[0], source, sizeof source) || get_string(env, argv[1], target, sizeof target)
      || get_string(env, argv[2], fstype, sizeof fstype) || get_string(env, argv[3], data, sizeof data)) return NULL;
  if (mount(source, target, fstype, 0, data) != 0) return throw_errno(env, errno, "mount", target);
  return NULL;
}

static napi_value js_umount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char target[PATH_BUF];
  if (argc < 1 || get_string(env, argv[0], target, sizeof target)) return NULL;
  if (umount2(target, 0) != 0) return throw_errno(env, errno, "umount2", target);
  return NULL;
}

struct netns_job {
  const char *target;
  int err;
  const char *syscall;
};

/* `ip link set lo up` in the calling thread's network namespace (SIOCSIFFLAGS on a socket made there). */
static int loopback_up(void) {
  struct ifreq ifr;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int r = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP;
    r = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(s);
  errno = e;
  return r;
}

static void *netns_thread(void *arg) {
  struct netns_job *job = arg;
  if (unshare(CLONE_NEWNET) != 0) {
    job->err = errno, job->syscall = "unshare";
  } else if (mount("/proc/thread-self/ns/net", job->target, NULL, MS_BIND, NULL) != 0) {
    job->err = errno, job->syscall = "mount";
  } else if (loopback_up() != 0) {
    job->err = errno, job->syscall = "ioctl(SIOCSIFFLAGS lo)";
    umount2(job->target, MNT_DETACH);
  }
  return NULL;
}

static napi_value js_new_netns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char target[PATH_BUF];
  if (argc < 1 || get_string(env, argv[0], target, sizeof target)) return NULL;
  struct netns_job job = { target, 0, NULL };
  pthread_t thread;
  int e = pthread_create(&thread, NULL, netns_thread, &job);
  if (e != 0) return throw_errno(env, e, "pthread_create", target);
  pthread_join(thread, NULL);
  if (job.err != 0) return throw_errno(env, job.err, job.syscall, target);
  return NULL;
}

static napi_value js_set_topdir(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (argc < 1 || get_string(env, argv[0], path, sizeof path)) return NULL;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", path);
  int flags = 0;
  bool ok = false;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
    ok = (flags & FS_TOPDIR_FL) != 0;
    if (!ok) {
      flags |= FS_TOPDIR_FL;
      ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
  }
  close(fd);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value js_x32_abi(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__x86_64__)
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0) {
    long r = syscall(0x40000000L | SYS_getpid);
    napi_get_boolean(env, r >= 0 || errno != ENOSYS, &result);
    return result;
  }
#endif
  napi_get_null(env, &result);
  return result;
}

#if defined(__x86_64__)
enum { IA32_RAN = 0, IA32_FAILED = 1, IA32_FAULTED = 2 };

static void ia32_fault(int sig) {
  (void)sig;
  _exit(IA32_FAULTED);
}

/* The vfork'd child (CLONE_VM: the caller's memory, its own signal table): SIGSEGV caught by a
 * handler of its own that exits (Node's must not run here, and a default SIGSEGV could dump
 * core: a dump of a process sharing Node's memory), then getpid the 32-bit way. */
static int ia32_child(void *arg) {
  (void)arg;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ia32_fault;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0) _exit(IA32_FAILED);
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
  _exit(r > 0 ? IA32_RAN : IA32_FAILED);
}
#endif

static napi_value js_ia32_abi(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__x86_64__)
  static char stack[16384] __attribute__((aligned(16)));
  pid_t pid = clone(ia32_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
  int status;
  if (pid > 0 && waitpid(pid, &status, __WALL) == pid && WIFEXITED(status) &&
      (WEXITSTATUS(status) == IA32_RAN || WEXITSTATUS(status) == IA32_FAULTED)) {
    napi_get_boolean(env, WEXITSTATUS(status) == IA32_RAN, &result);
    return result;
  }
#endif
  napi_get_null(env, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_default, NULL },
    { "lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_default, NULL },
    { "lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_default, NULL },
    { "llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_default, NULL },
    { "flock", NULL, js_flock, NULL, NULL, NULL, napi_default, NULL },
    { "mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL },
    { "umount", NULL, js_umount, NULL, NULL, NULL, napi_default, NULL },
    { "newNetns", NULL, js_new_netns, NULL, NULL, NULL, napi_default, NULL },
    { "setTopdir", NULL, js_set_topdir, NULL, NULL, NULL, napi_default, NULL },
    { "x32Abi", NULL, js_x32_abi, NULL, NULL, NULL, napi_default, NULL },
    { "ia32Abi", NULL, js_ia32_abi, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  define_at(env, exports);
  define_spawn(env, exports);
  define_fingerprint(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
