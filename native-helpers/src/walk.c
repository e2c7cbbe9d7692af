/*
 * walk_in_root(rootfd, path, follow_final) -> an O_PATH file descriptor for `path` resolved
 * inside the directory `rootfd` as if it were "/": ".." stops at it, absolute symlinks restart
 * from it, procfs magic links are never jumped through. Shared by the addon (native.c/at.c) and
 * tsrun-rootns, so both resolve container paths the same way.
 *
 * Linux's openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS does exactly this in the kernel
 * (5.6+), and refuses with EAGAIN when a concurrent rename could have let ".." escape, so we retry.
 * Where openat2 is missing (ENOSYS), or TSRUN_NO_OPENAT2=1 asks for it (tests), the same rules
 * are applied one component at a time: every step is an openat(O_PATH|O_NOFOLLOW) relative to
 * the fd of the directory before it, symlinks are read with readlinkat on the link's own fd and
 * re-rooted by us, and ".." pops our own stack of fds (the kernel's ".." is never used), so a
 * directory renamed or swapped for a link mid-walk can only send us to somewhere else *inside*
 * the root. Mount points are crossed as the mount table of rootfd's namespace says (both ways).
 *
 * Contract: the result is O_PATH|O_CLOEXEC (it cannot read or write anything; reopen it through
 * /proc/self/fd/N after checking its type); with follow_final == 0 a final symlink is returned
 * itself. On failure returns -1 with errno set (ENOENT, ENOTDIR, ELOOP, ...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>
#include "walk.h"

#define MAX_LINKS 40
#define MAX_DEPTH 512
#define PATH_MAX_LEN 4096

static int fallback_forced(void) {
  const char *v = getenv("TSRUN_NO_OPENAT2");
  return v != NULL && v[0] == '1';
}

static int walk_by_components(int rootfd, const char *path, int follow_final) {
  int stack[MAX_DEPTH];
  int depth = 0;
  char *rest = malloc(2 * PATH_MAX_LEN + 2);
  if (!rest) { errno = ENOMEM; return -1; }
  if (strlen(path) >= PATH_MAX_LEN) { free(rest); errno = ENAMETOOLONG; return -1; }
  strcpy(rest, path);
  stack[0] = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (stack[0] < 0) { free(rest); return -1; }
  int links = 0, err = 0;
  char *p = rest;
  for (;;) {
    while (*p == '/') p++;
    if (*p == '\0') break;
    char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char name[256];
    if (len >= sizeof name) { err = ENAMETOOLONG; break; }
    memcpy(name, p, len);
    name[len] = '\0';
    p += len;
    const char *q = p;
    while (*q == '/') q++;
    int last = *q == '\0';
    if (strcmp(name, ".") == 0) continue;
    if (strcmp(name, "..") == 0) {
      if (depth > 0) close(stack[depth--]);
      continue;
    }
    int fd = openat(stack[depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) { err = errno; break; }
    struct stat st;
    if (fstat(fd, &st) != 0) { err = errno; close(fd); break; }
    if (S_ISLNK(st.st_mode) && (!last || follow_final)) {
      if (++links > MAX_LINKS) { err = ELOOP; close(fd); break; }
      char target[PATH_MAX_LEN];
      ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
      close(fd);
      if (n < 0) { err = errno; break; }
      target[n] = '\0';
      size_t restlen = strlen(p);
      if ((size_t)n + restlen + 2 > 2 * PATH_MAX_LEN) { err = ENAMETOOLONG; break; }
      /* the new remaining path: target + rest (rest starts with '/' or is empty) */
      memmove(rest + n, p, restlen + 1);
      memcpy(rest, target, (size_t)n);
      p = rest;
      if (target[0] == '/') while (depth > 0) close(stack[depth--]);
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode)) { err = ENOTDIR; close(fd); break; }
    if (depth + 1 >= MAX_DEPTH) { err = ENAMETOOLONG; close(fd); break; }
    stack[++depth] = fd;
  }
  free(rest);
  int result = -1;
  if (!err) result = stack[depth--];
  while (depth >= 0) close(stack[depth--]);
  if (err) errno = err;
  return result;
}

int walk_in_root(int rootfd, const char *path, int follow_final) {
  if (!fallback_forced()) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC | (follow_final ? 0 : O_NOFOLLOW);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    for (int tries = 0; tries < 1000; tries++) {
      long fd = syscall(SYS_openat2, rootfd, path[0] ? path : ".", &how, sizeof how);
      if (fd >= 0) return (int)fd;
      if (errno == EAGAIN || errno == EINTR) continue;
      if (errno != ENOSYS && errno != EPERM) return -1; /* EPERM: a seccomp filter that denies it */
      break;
    }
    if (errno == EAGAIN) return -1;
  }
  return walk_by_components(rootfd, path, follow_final);
}
