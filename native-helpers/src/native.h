/* Shared by the addon's source files (native.c, at.c, spawn.c, fingerprint.c). */
#ifndef TSRUN_NATIVE_H
#define TSRUN_NATIVE_H
#include <stddef.h>
#include <node_api.h>
#define PATH_BUF 4096
#define NAME_BUF 256
napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path);
int get_string(napi_env env, napi_value v, char *buf, size_t size);
void define_at(napi_env env, napi_value exports);
void define_spawn(napi_env env, napi_value exports);
void define_fingerprint(napi_env env, napi_value exports);
#endif
