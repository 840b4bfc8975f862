/*
 * load.h: a closed-loop load generator over one nng REQ socket.
 *
 * `concurrency` requester threads each open their own context on the socket and loop:
 * build a request, send it, wait for the reply, check it, repeat (synchronous
 * nng_ctx_send/nng_ctx_recv with one aio each). An operation may take several requests per
 * iteration (Create then Drop); every request is timed and counted on its own.
 *
 * Two modes: for a fixed time (after a warm-up that is not counted), or for a fixed number
 * of iterations shared by all requesters (filling a store, profiling).
 *
 * Errors are never throughput: the first failed send, receive or check stops every
 * requester, and load_run returns it.
 *
 * Thread safety: load_run may be called from one thread at a time per socket; the op's
 * build and check functions are called from many requester threads at once, each with its
 * own struct load_worker.
 */
#ifndef LOADGEN_LOAD_H
#define LOADGEN_LOAD_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* What a requester thread hands to an op's functions: its id, its reusable buffer, and a
 * random number drawn once per run, so that request ids never repeat across runs (secretd
 * answers a repeated id of a mutating request from its cache instead of running it). */
struct load_worker {
	unsigned id;
	struct wire_buf scratch;
	uint64_t nonce;
};

/* A request id unique to (w->nonce, k, step) and never 0. */
uint64_t load_request_id(const struct load_worker *w, uint64_t k, unsigned step);

/* A random 64-bit number (for load_worker.nonce). */
uint64_t load_nonce(void);

struct load_op;

/* Build request `step` of iteration k into *msgp (a new message). Returns 0 or NNG_E*. */
typedef int (*load_build_fn)(
    const struct load_op *op, struct load_worker *w, uint64_t k, unsigned step, nng_msg **msgp);

/* Check a reply frame (borrowed). False with a message in err when it is not what the
 * request should get. */
typedef bool (*load_check_fn)(const struct load_op *op, struct load_worker *w, uint64_t k,
    unsigned step, const uint8_t *frame, size_t len, char *err, size_t errlen);

/* An operation: its requests per iteration and how to build and check them. Embed it
 * first in a larger struct to carry the op's own data. */
struct load_op {
	unsigned steps;
	load_build_fn build;
	load_check_fn check;
};

struct load_spec {
	const struct load_op *op;
	unsigned concurrency;
	double warmup_s;   /* time mode: not counted */
	double duration_s; /* time mode: counted */
	uint64_t count;    /* > 0: count mode, iterations 0..count-1 spread over requesters */
	int timeout_ms;    /* per request; a request that takes longer is an error */
};

struct load_result {
	uint64_t requests; /* counted requests */
	double seconds;    /* the counted window (time mode) or the wall time (count mode) */
	double rps;        /* requests / seconds */
	double mean_us;
	double p50_us;
	double p99_us;
	double p999_us;
	double max_us;
};

/* Latencies gathered over one or more runs, to be summarised together. */
struct load_samples {
	uint64_t *ns;
	size_t n;
	size_t cap;
	double seconds; /* sum of the runs' counted windows (or wall times) */
};

/*
 * Run spec against sock (borrowed; dialed by the caller) and add its latencies and time to
 * *acc. Returns 0, or -1 on the first error anywhere with a message in err.
 */
int load_run_into(nng_socket sock, const struct load_spec *spec, struct load_samples *acc,
    char *err, size_t errlen);

/* Fill *res from acc (sorting it). -1 with a message when it holds no request. */
int load_summarise(struct load_samples *acc, struct load_result *res, char *err, size_t errlen);

/* Free acc's memory (NULL-safe) and empty it. */
void load_samples_free(struct load_samples *acc);

/* load_run_into and load_summarise for a single run. */
int load_run(nng_socket sock, const struct load_spec *spec, struct load_result *res, char *err,
    size_t errlen);

/* One request on a fresh context, synchronously: sends msg (taken) and returns the reply in
 * *replyp (caller frees with nng_msg_free). Returns 0 or an NNG_E* code. */
int load_call(nng_socket sock, nng_msg *msg, int timeout_ms, nng_msg **replyp);

/* Monotonic time in nanoseconds. */
uint64_t load_now_ns(void);

#endif /* LOADGEN_LOAD_H */
