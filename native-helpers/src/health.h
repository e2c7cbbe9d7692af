/* The container's health check, run by tsrun-monitor: see health.c. */
#ifndef TSRUN_HEALTH_H
#define TSRUN_HEALTH_H
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#define HEALTH_MAX_CLIENTS 16

void health_configure(const char *process, long interval_ms, long timeout_ms, long start_period_ms, long start_interval_ms, int retries);
void health_set_runtime(const char *runtime, const char *runtime_root, const char *id, const sigset_t *mask);
int health_enabled(void);
/* The container was created: the first probe is due one interval from now. */
void health_arm(void);
/* The poll timeout (ms, -1 forever) shortened to the next health deadline. */
int health_timeout(int current);
/* Start a due probe, kill one past its timeout. */
void health_tick(void);
/* The probe's output pipe (-1: none) and its readiness. */
int health_fd(void);
void health_readable(void);
/* 1 if `pid` was the probe's runtime (its result is then recorded). */
int health_reaped(pid_t pid, int status);
/* Frame 'h' from a client: run a probe now, answer when it ends. */
void health_request(int client);
void health_client_gone(int client);
/* The container exited: kill a running probe, run no more. */
void health_stop(void);
/* Defined by monitor.c: send frame 'h' to one client. */
void health_reply(int client, const void *data, uint32_t len);
#endif
