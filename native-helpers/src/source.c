/*
 * tsrun_source.node: the launcher's (bin/tsrun.js) view of the bundle and its code cache as
 * mappings of the files instead of copies.
 *
 *   mapLatin1(fd) -> string|undefined   the whole file, as an external one-byte V8 string over a
 *                                       read-only private mapping of it (the file must be
 *                                       latin1: the bundle is ASCII, scripts/bundle.mjs)
 *   mapBytes(fd) -> Buffer|undefined    the whole file, as a Buffer over such a mapping
 *
 * Why: reading the 1.2 MB bundle into a Buffer and then into a string faulted in ~600 fresh pages
 * (~8 ms of every command on this kind of VM, whose page faults cost ~13 us each); a mapping of
 * the page cache is faulted in 16 pages at a time, and only where V8 reads (with a code cache
 * it reads the source only for the functions it compiles lazily). docs/benchmarks.md has the
 * figures.
 *
 * Contract: undefined where the file cannot be mapped (empty, not a regular file, mmap failed);
 * the caller then reads it as before. The mapping lives as long as the string or Buffer (the
 * finalizer unmaps it). Because V8 may read the source at any time while the process runs, the
 * file must never be changed in place: it is replaced by rename(2) only (scripts/bundle.mjs, the
 * launcher's run cache), so a running tsrun keeps the inode it mapped. The fd is the caller's:
 * it is not closed here (the mapping outlives it).
 *
 * Built with NAPI_EXPERIMENTAL for node_api_create_external_string_latin1 (Node 20; stable from
 * Node-API 10), in an addon of its own so that nothing else is built against the experimental
 * API.
 */
#ifndef NAPI_EXPERIMENTAL
#define NAPI_EXPERIMENTAL
#endif
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <node_api.h>

static void unmap(node_api_basic_env env, void *data, void *hint) {
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

/* The fd's file as a string (latin1) or a Buffer over its mapping; undefined where it cannot be. */
static napi_value mapped(napi_env env, napi_callback_info info, bool as_string) {
  size_t len;
  napi_value r;
  bool copied = false; /* Node made an ordinary string of it, and has already called unmap */
  char *p = map_fd(env, info, &len);
  napi_status s = napi_generic_failure;
  if (p && as_string)
    s = node_api_create_external_string_latin1(env, p, len, unmap, (void *)(uintptr_t)len, &r, &copied);
  else if (p)
    s = napi_create_external_buffer(env, len, p, unmap, (void *)(uintptr_t)len, &r);
  if (s == napi_ok) return r;
  if (p) munmap(p, len);
  napi_get_undefined(env, &r);
  return r;
}

static napi_value js_map_latin1(napi_env env, napi_callback_info info) { return mapped(env, info, true); }
static napi_value js_map_bytes(napi_env env, napi_callback_info info) { return mapped(env, info, false); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "mapLatin1", NULL, js_map_latin1, NULL, NULL, NULL, napi_default, NULL },
    { "mapBytes", NULL, js_map_bytes, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
