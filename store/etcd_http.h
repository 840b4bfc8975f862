/*
 * etcd_http.h: a small client for etcd's v3 JSON gateway over HTTP(S) (libcurl, jansson),
 * for the etcd store backend (etcd.c): unary calls with endpoint failover, etcd
 * authentication, and the streaming watch.
 *
 * Unary calls (etcd_http_call) go to the endpoint that last answered; on a transport error,
 * a timeout or an "unavailable" answer the next endpoint is tried, until the call's
 * deadline. Such a retry can repeat a write whose first attempt committed: the caller makes
 * writes transactions that tell (etcd.c). Each call takes a curl handle from a pool, so
 * connections are reused and many threads may call at once.
 *
 * What it does not do: no knowledge of secrets or of the key layout; no clear value ever
 * passes here (the backend seals values before they are sent).
 *
 * Thread safety: etcd_http_call may run on many threads at once; etcd_http_watch runs on
 * one thread and is stopped from another through its stop flag.
 */
#ifndef SECRETD_STORE_ETCD_HTTP_H
#define SECRETD_STORE_ETCD_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct etcd_http;

/* Open a client for the comma-separated endpoint list of cfg (borrowed; copied). Does no
 * I/O. STORE_OK with *hp (close with etcd_http_close), STORE_INVALID, STORE_NO_MEMORY. */
store_status etcd_http_open(const struct store_etcd_config *cfg, struct etcd_http **hp);

void etcd_http_close(struct etcd_http *h);

/* Outcome of a call beyond its store_status. */
struct etcd_http_result {
	int http_code;   /* 0 when no HTTP answer came */
	int grpc_code;   /* etcd's error code, 0 when none */
	bool maybe_sent; /* an attempt may have reached etcd without an answer */
	bool timed_out;  /* the last attempt ran out of time (says less than another error) */
	char message[160];
};

/*
 * POST body (borrowed) to path ("/v3/kv/range", ...) and parse the answer. STORE_OK with
 * *outp (caller json_decref's it) for HTTP 200; STORE_IO when no endpoint answered within
 * timeout_ms or etcd answered an error (res says which); STORE_NO_MEMORY.
 */
store_status etcd_http_call(struct etcd_http *h, const char *path, json_t *body, int timeout_ms,
    json_t **outp, struct etcd_http_result *res);

/* The message of the last call that failed ("" when none): the endpoint and curl's or
 * etcd's words, never a value. For a start-up error that says why. */
void etcd_http_last_error(struct etcd_http *h, char *buf, size_t len);

/* Called by etcd_http_watch with each JSON object of the stream (borrowed for the call).
 * Return false to end the watch. */
typedef bool (*etcd_watch_fn)(json_t *msg, void *arg);

/*
 * Run one watch: POST the create request (borrowed) to /v3/watch on the current endpoint
 * and hand each line of the streaming answer to fn, until fn returns false, *stop becomes
 * true (checked about every 100 ms), the connection ends or fails, or no byte arrived for
 * idle_ms. Returns STORE_OK when fn or *stop ended it, STORE_IO otherwise (the endpoint is
 * then rotated, so the next watch tries another).
 */
store_status etcd_http_watch(struct etcd_http *h, json_t *create, const atomic_bool *stop,
    int idle_ms, etcd_watch_fn fn, void *arg);

/* Base64 of buf[0..len) as a new jansson string (NULL when out of memory). */
json_t *etcd_b64(const void *buf, size_t len);

/* Decode a base64 JSON string into a malloc'd buffer (NUL-terminated, caller frees); NULL
 * when it is missing or malformed. An empty string gives a buffer with *lenp 0. */
uint8_t *etcd_unb64(const json_t *s, size_t *lenp);

/* A 64-bit integer member of obj (etcd sends them as strings); 0 when absent. */
int64_t etcd_int(const json_t *obj, const char *key);

#endif
