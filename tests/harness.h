/*
 * harness.h: start and stop real secretd processes for the integration tests.
 *
 * Each server gets a private temporary directory (0700) holding its data directory, its
 * ipc socket and its log file. The secretd binary comes from $SECRETD_BIN (meson sets it).
 * Not thread-safe: call from the test's main thread.
 */
#ifndef SECRETD_TESTS_HARNESS_H
#define SECRETD_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct server_proc {
	pid_t pid;
	char dir[256];         /* private temp dir */
	char data_dir[300];    /* dir/data */
	char url[320];         /* ipc://dir/secretd.sock */
	char log_path[300];    /* dir/server.log (appended to across restarts) */
	const char *extra[16]; /* extra flags, NULL-terminated */
};

/* Make the temp dir and paths; does not start anything. Returns false on failure. */
bool harness_init(struct server_proc *sp);

/* Start secretd with --listen url --data-dir data_dir --log-level debug plus extra flags,
 * and wait (up to 10 s) until it answers. Returns false if it exited or never answered;
 * *exitp (may be NULL) gets its exit status when it exited. */
bool harness_start(struct server_proc *sp, int *exitp);

/* SIGTERM and wait; returns the exit status (or -1). */
int harness_stop(struct server_proc *sp);

/* SIGKILL and wait. */
void harness_kill(struct server_proc *sp);

/* Remove the temp dir and everything in it. */
void harness_cleanup(struct server_proc *sp);

/* Print the server log's warn and error lines (the last 40) to stderr: for a test that
 * failed, before harness_cleanup removes the log. secretd never logs a value. */
void harness_show_log_problems(const struct server_proc *sp);

/* A TCP port on host (a numeric IPv4 address, e.g. 127.0.0.2 for an etcd member) that was
 * free a moment ago (the kernel's pick), or -1. Another process can still take it before
 * the server binds it: a caller retries with a new one. */
int harness_free_port(const char *host);

/* A plain (non-nng) stream socket connected to an ipc:// or tcp:// (also tls+tcp://, for
 * raw-peer tests) URL with a numeric IPv4 host; -1 on failure. */
int harness_sp_connect(const char *url);

/* One request over a plain socket that speaks the SP handshake (REQ0) and framing by hand,
 * on ipc:// or tcp://: body[0..len) out, the reply body back (malloc'd, NUL-terminated;
 * *lenp its length, may be NULL), or NULL when nothing answered within timeout_ms. Used
 * instead of a one-shot nng socket, whose close can hang nng 1.5.2 (tests/README.md). */
char *harness_sp_request(const char *url, const void *body, size_t len, int timeout_ms, size_t *lenp);

/* Whether the file at path contains needle[0..len) anywhere (false when unreadable). */
bool file_contains(const char *path, const void *needle, size_t len);

/* Read a whole file into a malloc'd buffer (caller frees); NULL on failure. */
char *file_read(const char *path, size_t *lenp);

/* Run argv with stdin from in (may be NULL), capture stdout into out[outlen] (NUL-ended)
 * and stderr into err[errlen]; returns the exit status, or -1. */
int run_capture(
    const char *const argv[], const char *in, char *out, size_t outlen, char *err, size_t errlen);

#endif
