/*
 * tsrun-rootns: a stopped container's root filesystem with its bind mounts, as the container
 * would see it, for `tsrun cp` (src/snapshot/container-root.ts). A running container's root is
 * reached through /proc/<its init>/root; this program stands in for that init.
 *
 *   tsrun-rootns [--ro] ROOTFS [SOURCE DESTINATION rw|ro]...
 *
 * It makes itself a private mount namespace (the host's mounts are never changed), binds ROOTFS
 * onto itself, bind-mounts each SOURCE (host paths from the container's config.json, in its
 * order: parents first) onto DESTINATION resolved *inside* ROOTFS with walk_in_root (through
 * /proc/self/fd/N, as runc does since CVE-2021-30465, so a symlink in a shared volume cannot
 * redirect a mount onto the host), makes the read-only ones (and with --ro the root) read-only,
 * chroots into the root, prints "ready" and waits. The caller opens /proc/<pid>/root, and when
 * it closes our stdin (or dies: PR_SET_PDEATHSIG), we exit and the namespace and its mounts go.
 * A destination missing in the root is skipped (the container never ran with it mounted there).
 * Errors: a line on stderr, exit status 1, before "ready".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "walk.h"

static void die(const char *what, const char *arg) {
  fprintf(stderr, "tsrun-rootns: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(1);
}

/* Remount the mount whose root `fd` is read-only, keeping the flags a user namespace may not drop. */
static void make_readonly(int fd, const char *what) {
  struct statvfs sv;
  if (fstatvfs(fd, &sv) != 0) die("statvfs", what);
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (mount(NULL, proc, NULL, flags, NULL) != 0) die("remounting read-only", what);
}

int main(int argc, char **argv) {
  int i = 1, root_ro = 0;
  if (i < argc && strcmp(argv[i], "--ro") == 0) { root_ro = 1; i++; }
  if (i >= argc || (argc - i - 1) % 3 != 0) {
    fprintf(stderr, "usage: tsrun-rootns [--ro] ROOTFS [SOURCE DESTINATION rw|ro]...\n");
    return 2;
  }
  const char *rootfs = argv[i++];
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  if (unshare(CLONE_NEWNS) != 0) die("unshare", "CLONE_NEWNS");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("making mounts private", "/");
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind-mounting", rootfs);
  int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("opening", rootfs);
  for (; i + 2 < argc; i += 3) {
    const char *src = argv[i], *dst = argv[i + 1];
    int ro = strcmp(argv[i + 2], "ro") == 0;
    int fd = walk_in_root(root, dst, 1);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      die("resolving", dst);
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (mount(src, proc, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind-mounting", dst);
    close(fd);
    if (ro) {
      int mfd = walk_in_root(root, dst, 1);
      if (mfd < 0) die("resolving", dst);
      make_readonly(mfd, dst);
      close(mfd);
    }
  }
  if (root_ro) make_readonly(root, rootfs);
  if (fchdir(root) != 0) die("chdir", rootfs);
  if (chroot(".") != 0) die("chroot", rootfs);
  if (write(1, "ready\n", 6) != 6) return 1;
  char buf[256];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  return 0;
}
