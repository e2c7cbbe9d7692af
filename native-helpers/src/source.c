/*
 * tsrun_source.node: the launcher (bin/tsrun.js) reads the bundle and its code cache through
 * mappings of the files instead of read(2) into fresh buffers.
 *
 *   readLatin1(fd) -> string|undefined  the whole file as a V8 heap string, copied straight from
 *                                       a read-only mapping of it (the file must be latin1: the
 *                                       bundle is ASCII, scripts/bundle.mjs); the mapping is gone
 *                                       when this returns
 *   mapBytes(fd) -> Buffer|undefined    the whole file, as a Buffer over such a mapping (unmapped
 *                                       when the Buffer is collected)
 *
 * Why: Node read the 1.2 MB bundle into a Buffer, decoded that into a second copy (an external
 * string, Node's for strings over ~1 MB), and V8 flattened the launcher's wrapped source into a
 * third: ~900 fresh pages, ~13 ms of every command on this kind of VM, whose page faults cost
 * ~13 us each. A mapping of the page cache is faulted in 16 pages at a time; the one copy left
 * is the string V8 compiles from. That copy is on V8's heap on purpose: with an external string
 * (over the mapping) as the script's source, V8 ran ~8 times as many major GCs in a long `pull`
 * (3 → 24 mark-compacts of the main isolate, +0.8 s CPU for a 500 MB image; docs/benchmarks.md).
 *
 * Contract: undefined where the file cannot be mapped (empty, not a regular file, mmap failed);
 * the caller then reads it as before. The fd is the caller's: it is not closed here. The cache
 * file behind a Buffer must not be changed in place while the Buffer lives: the launcher's run
 * cache and the build's cache are replaced by rename(2) only.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <node_api.h>

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/* The whole file behind the fd argument, mapped read-only; NULL where it cannot be. */
static char *map_fd(napi_env env, napi_callback_info info, size_t *len) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct stat st;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return NULL;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return NULL;
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return NULL;
  *len = (size_t)st.st_size;
  return p;
}

static napi_value js_read_latin1(napi_env env, napi_callback_info info) {
  size_t len;
  napi_value r;
  char *p = map_fd(env, info, &len);
  napi_status s = p ? napi_create_string_latin1(env, p, len, &r) : napi_generic_failure;
  if (p) munmap(p, len);
  if (s != napi_ok) napi_get_undefined(env, &r);
  return r;
}

static napi_value js_map_bytes(napi_env env, napi_callback_info info) {
  size_t len;
  napi_value r;
  char *p = map_fd(env, info, &len);
  if (p && napi_create_external_buffer(env, len, p, unmap, (void *)(uintptr_t)len, &r) == napi_ok) return r;
  if (p) munmap(p, len);
  napi_get_undefined(env, &r);
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "readLatin1", NULL, js_read_latin1, NULL, NULL, NULL, napi_default, NULL },
    { "mapBytes", NULL, js_map_bytes, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
