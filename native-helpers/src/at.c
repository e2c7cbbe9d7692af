/*
 * The *at() half of the native seam: file operations relative to directory file descriptors,
 * for walking a container's root without ever naming a host path (src/snapshot/safe-root.ts).
 * Node has fd versions of read/write/fchmod/fchown/futimes but no openat, mkdirat, symlinkat,
 * readlinkat, unlinkat, renameat, fchownat/utimensat without following links, O_PATH reopening
 * or statx; these are they.
 *
 *   walkInRoot(rootfd, path, followFinal) -> fd   O_PATH fd, resolved inside rootfd (walk.c)
 *   openat(dirfd, name, flags, mode) -> fd          `name` one component; O_NOFOLLOW|O_CLOEXEC added
 *   reopen(fd, flags) -> fd                         open /proc/self/fd/N (an O_PATH fd made usable)
 *   statx(dirfd, name, follow) -> StatxResult      name "" = dirfd itself (AT_EMPTY_PATH)
 *   mkdirat, symlinkat, readlinkat, unlinkat, renameat
 *   fchownat(dirfd, name, uid, gid)                 never follows (AT_SYMLINK_NOFOLLOW, "" = fd)
 *   utimensat(dirfd, name, atimeNs, mtimeNs)        never follows ("" = the open fd itself)
 *   readdir(dirfd) -> string[]                      names without "." and ".."
 *   fsReadonly(fd) -> boolean                       the mount under fd is read-only (fstatfs)
 *
 * Names passed as "one component" are checked: "", ".", ".." and anything with "/" are refused
 * with EINVAL (except where "" means the fd itself), so no call here can climb out of its dirfd.
 * Errors are thrown as in native.c (code = errno name).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "native.h"
#include "walk.h"

#define ARGS(n) \
  size_t argc = n; \
  napi_value argv[n]; \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL); \
  if (argc < n) { napi_throw_type_error(env, NULL, "missing arguments"); return NULL; }

static int32_t int_arg(napi_env env, napi_value v) {
  int32_t x = -1;
  napi_get_value_int32(env, v, &x);
  return x;
}

/* A BigInt (nanoseconds need more than a double's 53 bits), or a Number. */
static int64_t i64_arg(napi_env env, napi_value v) {
  int64_t x = 0;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, v, &x, &lossless) != napi_ok) napi_get_value_int64(env, v, &x);
  return x;
}

static int bool_arg(napi_env env, napi_value v) {
  bool b = false;
  napi_get_value_bool(env, v, &b);
  return b;
}

/* One path component, or "" when allow_empty (the fd itself). */
static int name_arg(napi_env env, napi_value v, char *buf, int allow_empty) {
  if (get_string(env, v, buf, NAME_BUF)) return -1;
  if ((buf[0] == '\0' && !allow_empty) || strchr(buf, '/') || strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0) {
    throw_errno(env, EINVAL, "name", buf);
    return -1;
  }
  return 0;
}

static napi_value int_result(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value js_walk(napi_env env, napi_callback_info info) {
  ARGS(3);
  char path[PATH_BUF];
  if (get_string(env, argv[1], path, sizeof path)) return NULL;
  int fd = walk_in_root(int_arg(env, argv[0]), path, bool_arg(env, argv[2]));
  if (fd < 0) return throw_errno(env, errno, "openat2", path);
  return int_result(env, fd);
}

static napi_value js_openat(napi_env env, napi_callback_info info) {
  ARGS(4);
  char name[NAME_BUF];
  if (name_arg(env, argv[1], name, 0)) return NULL;
  int fd = openat(int_arg(env, argv[0]), name, int_arg(env, argv[2]) | O_NOFOLLOW | O_CLOEXEC, (mode_t)int_arg(env, argv[3]));
  if (fd < 0) return throw_errno(env, errno, "openat", name);
  return int_result(env, fd);
}

static napi_value js_reopen(napi_env env, napi_callback_info info) {
  ARGS(2);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", int_arg(env, argv[0]));
  int fd = open(proc, (int_arg(env, argv[1]) & ~O_CREAT) | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", proc);
  return int_result(env, fd);
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, key, x);
}

static napi_value js_statx(napi_env env, napi_callback_info info) {
  ARGS(3);
  char name[NAME_BUF];
  if (name_arg(env, argv[1], name, 1)) return NULL;
  int flags = AT_STATX_SYNC_AS_STAT | (name[0] == '\0' ? AT_EMPTY_PATH : 0) | (bool_arg(env, argv[2]) ? 0 : AT_SYMLINK_NOFOLLOW);
  struct statx st;
  if (statx(int_arg(env, argv[0]), name, flags, STATX_BASIC_STATS | STATX_MNT_ID, &st) != 0) return throw_errno(env, errno, "statx", name);
  napi_value obj;
  napi_create_object(env, &obj);
  set_num(env, obj, "mode", st.stx_mode);
  set_num(env, obj, "uid", st.stx_uid);
  set_num(env, obj, "gid", st.stx_gid);
  set_num(env, obj, "size", (double)st.stx_size);
  set_num(env, obj, "nlink", st.stx_nlink);
  set_num(env, obj, "ino", (double)st.stx_ino);
  set_num(env, obj, "dev", (double)(((uint64_t)st.stx_dev_major << 32) | st.stx_dev_minor));
  set_num(env, obj, "rdevMajor", st.stx_rdev_major);
  set_num(env, obj, "rdevMinor", st.stx_rdev_minor);
  set_num(env, obj, "atimeSec", (double)st.stx_atime.tv_sec);
  set_num(env, obj, "atimeNsec", st.stx_atime.tv_nsec);
  set_num(env, obj, "mtimeSec", (double)st.stx_mtime.tv_sec);
  set_num(env, obj, "mtimeNsec", st.stx_mtime.tv_nsec);
  /* Without STATX_MNT_ID (kernels before 5.8) the device stands in: a different mount of the same fs is missed. */
  set_num(env, obj, "mntId", (st.stx_mask & STATX_MNT_ID) ? (double)st.stx_mnt_id : -1);
  return obj;
}

static napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  ARGS(3);
  char name[NAME_BUF];
  if (name_arg(env, argv[1], name, 0)) return NULL;
  if (mkdirat(int_arg(env, argv[0]), name, (mode_t)int_arg(env, argv[2])) != 0) return throw_errno(env, errno, "mkdirat", name);
  return NULL;
}

static napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  char target[PATH_BUF], name[NAME_BUF];
  if (get_string(env, argv[0], target, sizeof target) || name_arg(env, argv[2], name, 0)) return NULL;
  if (symlinkat(target, int_arg(env, argv[1]), name) != 0) return throw_errno(env, errno, "symlinkat", name);
  return NULL;
}

static napi_value js_readlinkat(napi_env env, napi_callback_info info) {
  ARGS(2);
  char name[NAME_BUF], target[PATH_BUF];
  if (name_arg(env, argv[1], name, 1)) return NULL;
  ssize_t n = readlinkat(int_arg(env, argv[0]), name, target, sizeof target);
  if (n < 0) return throw_errno(env, errno, "readlinkat", name);
  if ((size_t)n >= sizeof target) return throw_errno(env, ENAMETOOLONG, "readlinkat", name);
  napi_value r;
  napi_create_string_utf8(env, target, (size_t)n, &r);
  return r;
}

static napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  char name[NAME_BUF];
  if (name_arg(env, argv[1], name, 0)) return NULL;
  if (unlinkat(int_arg(env, argv[0]), name, bool_arg(env, argv[2]) ? AT_REMOVEDIR : 0) != 0) return throw_errno(env, errno, "unlinkat", name);
  return NULL;
}

static napi_value js_renameat(napi_env env, napi_callback_info info) {
  ARGS(4);
  char from[NAME_BUF], to[NAME_BUF];
  if (name_arg(env, argv[1], from, 0) || name_arg(env, argv[3], to, 0)) return NULL;
  if (renameat(int_arg(env, argv[0]), from, int_arg(env, argv[2]), to) != 0) return throw_errno(env, errno, "renameat", to);
  return NULL;
}

static napi_value js_fchownat(napi_env env, napi_callback_info info) {
  ARGS(4);
  char name[NAME_BUF];
  if (name_arg(env, argv[1], name, 1)) return NULL;
  int flags = AT_SYMLINK_NOFOLLOW | (name[0] == '\0' ? AT_EMPTY_PATH : 0);
  if (fchownat(int_arg(env, argv[0]), name, (uid_t)int_arg(env, argv[2]), (gid_t)int_arg(env, argv[3]), flags) != 0) {
    return throw_errno(env, errno, "fchownat", name);
  }
  return NULL;
}

static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  ARGS(4);
  char name[NAME_BUF];
  if (name_arg(env, argv[1], name, 1)) return NULL;
  int64_t a = i64_arg(env, argv[2]), m = i64_arg(env, argv[3]);
  struct timespec ts[2] = { { a / 1000000000, a % 1000000000 }, { m / 1000000000, m % 1000000000 } };
  /* "" = the fd itself (a real fd, not O_PATH): futimens. */
  int r = name[0] == '\0' ? futimens(int_arg(env, argv[0]), ts) : utimensat(int_arg(env, argv[0]), name, ts, AT_SYMLINK_NOFOLLOW);
  if (r != 0) return throw_errno(env, errno, "utimensat", name);
  return NULL;
}

static napi_value js_readdir(napi_env env, napi_callback_info info) {
  ARGS(1);
  int fd = openat(int_arg(env, argv[0]), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "openat", ".");
  DIR *d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return throw_errno(env, e, "fdopendir", "."); }
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t i = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) break;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    napi_value s;
    napi_create_string_utf8(env, de->d_name, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, i++, s);
  }
  int e = errno;
  closedir(d);
  if (e) return throw_errno(env, e, "readdir", ".");
  return arr;
}

static napi_value js_fs_readonly(napi_env env, napi_callback_info info) {
  ARGS(1);
  struct statvfs sv;
  if (fstatvfs(int_arg(env, argv[0]), &sv) != 0) return throw_errno(env, errno, "fstatvfs", NULL);
  napi_value r;
  napi_get_boolean(env, (sv.f_flag & ST_RDONLY) != 0, &r);
  return r;
}

void define_at(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "walkInRoot", NULL, js_walk, NULL, NULL, NULL, napi_default, NULL },
    { "openat", NULL, js_openat, NULL, NULL, NULL, napi_default, NULL },
    { "reopen", NULL, js_reopen, NULL, NULL, NULL, napi_default, NULL },
    { "statx", NULL, js_statx, NULL, NULL, NULL, napi_default, NULL },
    { "mkdirat", NULL, js_mkdirat, NULL, NULL, NULL, napi_default, NULL },
    { "symlinkat", NULL, js_symlinkat, NULL, NULL, NULL, napi_default, NULL },
    { "readlinkat", NULL, js_readlinkat, NULL, NULL, NULL, napi_default, NULL },
    { "unlinkat", NULL, js_unlinkat, NULL, NULL, NULL, napi_default, NULL },
    { "renameat", NULL, js_renameat, NULL, NULL, NULL, napi_default, NULL },
    { "fchownat", NULL, js_fchownat, NULL, NULL, NULL, napi_default, NULL },
    { "utimensat", NULL, js_utimensat, NULL, NULL, NULL, napi_default, NULL },
    { "readdir", NULL, js_readdir, NULL, NULL, NULL, napi_default, NULL },
    { "fsReadonly", NULL, js_fs_readonly, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
