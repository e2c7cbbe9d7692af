/*
 * fingerprintLines(dir, sink) -> entries | null: the lines of the store's layer fingerprint
 * (src/store/verify.ts), made in C. That walk is the tail of every layer's commit, one entry at
 * a time; in JavaScript it cost ~8 us of CPU per entry (a 38k-entry layer: 0.3 s).
 *
 * The lines are byte for byte the ones verify.ts's JavaScript walk makes, in the same order
 * (fingerprints recorded by either must match the other):
 *   REL \0 TYPE \0 OCTAL-MODE \0 UID:GID [\0 SIZE (f)] [\0 RDEV (c, b)] [\0 TARGET (l)]
 *   [\0 XATTR=HEX ...] \n
 * with REL "" for `dir` itself, TYPE one of d f l c b p s, the mode's low 12 bits in octal, only
 * the kept xattrs (trusted.overlay.*, user.overlay.*, security.capability), sorted; a directory's
 * line comes before its children's, and children are sorted as JavaScript sorts strings (by
 * UTF-16 code units, which is not byte order for characters past U+FFFF).
 *
 * The JavaScript walk sees names and link targets decoded from UTF-8, with U+FFFD for bytes that
 * are not UTF-8, and fails on a name it cannot find again. So whenever a name, a link target or a
 * kept xattr's name is not valid UTF-8, a path is too long for the addon's other calls, or any
 * call fails (an entry vanished, an unreadable directory...), this returns null and the caller
 * runs the JavaScript walk, which then gives the same lines or throws the same error.
 *
 * Contract: synchronous; never follows a symlink (directories are opened with O_NOFOLLOW relative
 * to their parent's fd). `sink(Buffer)` receives the lines in pieces of about 64 KiB, in order;
 * after a null result what it received is to be thrown away.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "native.h"

/* listxattrat(2) (Linux 6.13): an entry's xattr names relative to its directory's fd, so the
   kernel does not walk the whole path again for each entry (it was half the walk's system time).
   The same number on every architecture but alpha; where it is missing (ENOSYS, or EPERM from a
   seccomp filter) the path-based llistxattr is used. */
#if !defined(__NR_listxattrat) && (defined(__x86_64__) || defined(__aarch64__))
#define __NR_listxattrat 465
#endif
#ifdef __NR_listxattrat
static bool have_listxattrat = true;
#endif

#define BATCH (64 * 1024)
#define XLIST 65536

struct walk {
  napi_env env;
  napi_value sink;
  char *out;
  size_t len, cap;
  double entries;
  bool failed;
  const char *dir;     /* as given: the root's own path */
  char path[PATH_BUF]; /* dir + "/" + rel, as the JavaScript walk's `abs` (for a child) */
  size_t root_len;     /* length of dir + "/" (where rel starts in path) */
  char target[PATH_BUF]; /* a link's target (here, not on the stack: visit recurses deep) */
};

/* Strict UTF-8: what V8 decodes to the same code points and encodes back to the same bytes. */
static bool valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else return false;
    if (n - i <= k) return false;
    for (size_t j = 1; j <= k; j++) {
      unsigned t = s[i + j];
      if ((t & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (t & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    i += k + 1;
  }
  return true;
}

/* The next code point of valid UTF-8, as a key that orders like UTF-16 code units do. */
static uint32_t next_key(const unsigned char **p) {
  const unsigned char *s = *p;
  uint32_t cp;
  if (s[0] < 0x80) { cp = s[0]; *p += 1; }
  else if (s[0] < 0xE0) { cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu); *p += 2; }
  else if (s[0] < 0xF0) { cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); *p += 3; }
  else {
    cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    *p += 4;
  }
  /* U+E000..U+FFFF are one code unit above every surrogate pair's first unit (0xD800..0xDBFF). */
  return (cp >= 0xE000 && cp <= 0xFFFF) ? cp + 0x200000 : cp;
}

static int js_order(const void *a, const void *b) {
  const unsigned char *x = *(const unsigned char *const *)a, *y = *(const unsigned char *const *)b;
  while (*x && *y) {
    uint32_t kx = next_key(&x), ky = next_key(&y);
    if (kx != ky) return kx < ky ? -1 : 1;
  }
  return *x ? 1 : (*y ? -1 : 0);
}

static void flush(struct walk *w) {
  if (w->len == 0 || w->failed) return;
  napi_value buf, undef;
  if (napi_create_buffer_copy(w->env, w->len, w->out, NULL, &buf) != napi_ok) { w->failed = true; return; }
  napi_get_undefined(w->env, &undef);
  if (napi_call_function(w->env, undef, w->sink, 1, &buf, NULL) != napi_ok) w->failed = true;
  w->len = 0;
}

static void put(struct walk *w, const char *s, size_t n) {
  if (w->len + n > w->cap) {
    size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n;
    char *o = realloc(w->out, cap);
    if (!o) { w->failed = true; return; }
    w->out = o;
    w->cap = cap;
  }
  memcpy(w->out + w->len, s, n);
  w->len += n;
}

static void putf(struct walk *w, const char *fmt, unsigned long long a, unsigned long long b, bool two) {
  char tmp[64];
  int n = two ? snprintf(tmp, sizeof tmp, fmt, a, b) : snprintf(tmp, sizeof tmp, fmt, a);
  put(w, tmp, (size_t)n);
}

static ssize_t list_xattrs(int at, const char *name, const char *abs, char *list, size_t size) {
#ifdef __NR_listxattrat
  if (have_listxattrat) {
    ssize_t n = syscall(__NR_listxattrat, at, name, AT_SYMLINK_NOFOLLOW, list, size);
    if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
    have_listxattrat = false;
  }
#else
  (void)at;
  (void)name;
#endif
  return llistxattr(abs, list, size);
}

/* The kept xattrs of an entry, sorted, as "\0name=hex"; false on a failure that must fall back. */
static bool put_xattrs(struct walk *w, int at, const char *name, const char *abs) {
  char list[XLIST];
  ssize_t n = list_xattrs(at, name, abs, list, sizeof list);
  if (n <= 0) return n == 0 || errno != ERANGE; /* the JavaScript walk takes a failure as none */
  const char *kept[64];
  size_t nk = 0;
  for (const char *x = list; x < list + n; x += strlen(x) + 1) {
    if (strncmp(x, "trusted.overlay.", 16) != 0 && strncmp(x, "user.overlay.", 13) != 0 &&
        strcmp(x, "security.capability") != 0)
      continue;
    if (nk == 64 || !valid_utf8((const unsigned char *)x, strlen(x))) return false;
    kept[nk++] = x;
  }
  qsort(kept, nk, sizeof kept[0], js_order);
  for (size_t i = 0; i < nk; i++) {
    unsigned char val[4096];
    ssize_t vn = lgetxattr(abs, kept[i], val, sizeof val);
    if (vn < 0 && errno != ENODATA) return false;
    put(w, "\0", 1);
    put(w, kept[i], strlen(kept[i]));
    put(w, "=", 1);
    static const char hex[] = "0123456789abcdef";
    for (ssize_t j = 0; j < vn; j++) {
      char h[2] = { hex[val[j] >> 4], hex[val[j] & 15] };
      put(w, h, 2);
    }
  }
  return true;
}

/* One entry (w->path names it; rel starts at root_len) and, for a directory, everything below. */
static void visit(struct walk *w, int at, const char *name, size_t path_len) {
  if (w->failed) return;
  struct stat st;
  if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0) { w->failed = true; return; }
  w->entries++;
  char type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l'
            : S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 's';
  size_t rel_len = path_len > w->root_len ? path_len - w->root_len : 0;
  put(w, w->path + w->root_len, rel_len);
  char head[4] = { '\0', type, '\0', 0 };
  put(w, head, 3);
  putf(w, "%llo", st.st_mode & 07777, 0, false);
  put(w, "\0", 1);
  putf(w, "%llu:%llu", st.st_uid, st.st_gid, true);
  if (type == 'f') { put(w, "\0", 1); putf(w, "%llu", (unsigned long long)st.st_size, 0, false); }
  if (type == 'c' || type == 'b') { put(w, "\0", 1); putf(w, "%llu", (unsigned long long)st.st_rdev, 0, false); }
  if (type == 'l') {
    ssize_t n = readlinkat(at, name, w->target, sizeof w->target);
    if (n < 0 || (size_t)n >= sizeof w->target || !valid_utf8((unsigned char *)w->target, (size_t)n)) {
      w->failed = true;
      return;
    }
    put(w, "\0", 1);
    put(w, w->target, (size_t)n);
  }
  if (!put_xattrs(w, at, name, rel_len > 0 ? w->path : w->dir)) { w->failed = true; return; }
  put(w, "\n", 1);
  if (w->len > BATCH) flush(w);
  if (type != 'd' || w->failed) return;

  int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) { w->failed = true; return; }
  DIR *d = fdopendir(fd);
  if (!d) { close(fd); w->failed = true; return; }
  char **names = NULL;
  size_t count = 0, cap = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno != 0) w->failed = true;
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    size_t nl = strlen(e->d_name);
    if (!valid_utf8((unsigned char *)e->d_name, nl)) { w->failed = true; break; }
    if (count == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *names);
      if (!nn) { w->failed = true; break; }
      names = nn;
    }
    if (!(names[count] = strdup(e->d_name))) { w->failed = true; break; }
    count++;
  }
  if (!w->failed) qsort(names, count, sizeof *names, js_order);
  int dfd = dirfd(d);
  for (size_t i = 0; i < count && !w->failed; i++) {
    size_t nl = strlen(names[i]);
    /* The addon's path calls (llistxattr) take at most PATH_BUF - 2 bytes: beyond, the walk in
       JavaScript decides (it sees no xattrs there, or fails). */
    size_t sep = path_len > w->root_len ? 1 : 0; /* no "/" between the root's prefix and a name */
    if (path_len + sep + nl >= PATH_BUF - 2) { w->failed = true; break; }
    if (sep) w->path[path_len] = '/';
    memcpy(w->path + path_len + sep, names[i], nl + 1);
    visit(w, dfd, names[i], path_len + sep + nl);
    w->path[path_len] = '\0';
  }
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
  closedir(d);
}

static napi_value js_fingerprint_lines(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct walk *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  napi_value result;
  napi_get_null(env, &result);
  char dir[PATH_BUF];
  if (argc < 2 || get_string(env, argv[0], dir, sizeof dir)) { free(w); return NULL; }
  w->env = env;
  w->sink = argv[1];
  w->dir = dir;
  w->cap = BATCH * 2;
  w->out = malloc(w->cap);
  /* verify.ts: a child's path is prefix + rel, prefix being dir with one "/" at its end. */
  size_t dl = strlen(dir);
  memcpy(w->path, dir, dl + 1);
  if (dl == 0 || dir[dl - 1] != '/') {
    w->path[dl] = '/';
    w->path[dl + 1] = '\0';
  }
  w->root_len = strlen(w->path);
  if (w->out && w->root_len < PATH_BUF - 2) {
    /* The root by its whole path (as lstatSync(dir)), everything under it relative to its fd. */
    visit(w, AT_FDCWD, dir, w->root_len);
    flush(w);
    if (!w->failed) napi_create_double(env, w->entries, &result);
  }
  free(w->out);
  free(w);
  return result;
}

void define_fingerprint(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "fingerprintLines", NULL, js_fingerprint_lines, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 1, props);
}
