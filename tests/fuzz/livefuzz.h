/*
 * livefuzz.h: the parts of the live protocol fuzzer (livefuzz.c drives a running secretd,
 * livefuzz_gen.c makes the frames it sends, livefuzz_net.c carries them).
 *
 * What it does not do: no sockets in the generator, no checks in it either: the driver
 * decides from a frame's bytes alone what answer the server owes (see lf_expect_of).
 *
 * Thread safety: none; the driver is single-threaded and each generator call works on
 * the state it is given.
 */
#ifndef SECRETD_TESTS_LIVEFUZZ_H
#define SECRETD_TESTS_LIVEFUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

/* xorshift64*: reproducible from --seed, never 0. */
struct lf_rng {
	uint64_t s;
};

void lf_rng_seed(struct lf_rng *r, uint64_t seed);
uint64_t lf_rand(struct lf_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
size_t lf_below(struct lf_rng *r, size_t n);
/* True with probability pct/100. */
bool lf_chance(struct lf_rng *r, unsigned pct);

/* A growable byte buffer. Functions return false when memory runs out (then the buffer
 * keeps what it held). */
struct lf_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

bool lf_buf_reserve(struct lf_buf *b, size_t cap);
bool lf_buf_put(struct lf_buf *b, const void *p, size_t n);
bool lf_buf_byte(struct lf_buf *b, uint8_t c);
bool lf_buf_str(struct lf_buf *b, const char *s);
bool lf_buf_varint(struct lf_buf *b, uint64_t v);
/* A protobuf tag and, for wire type 2, nothing else: the caller writes the length. */
bool lf_buf_tag(struct lf_buf *b, unsigned field, unsigned wire);
/* A length-delimited protobuf field. */
bool lf_buf_field(struct lf_buf *b, unsigned field, const void *p, size_t n);
void lf_buf_free(struct lf_buf *b);

/* What the generator needs to know about the server. */
struct lf_gen_config {
	size_t max_frame;  /* the server's --max-frame */
	size_t hard_max;   /* transport cap: frames above it (with nng's 4-byte REQ header)
	                    * get no answer */
	const char *token; /* a valid token ("" when none) */
	unsigned pool;     /* how many secret names ("fz0" ...) frames may use */
};

/* The kinds of generated frame, for the statistics. */
enum lf_kind {
	LF_TRUNCATED,
	LF_BAD_HEADER,
	LF_VERSION,
	LF_GARBAGE_ENVELOPE,
	LF_GARBAGE_BODY,
	LF_WRONG_WIRE_TYPE,
	LF_HUGE_LENGTH,
	LF_REPEATED,
	LF_NESTED,
	LF_SIZE_LIMIT,
	LF_INVALID_UTF8,
	LF_SPLICE,
	LF_MUTATED,
	LF_RANDOM,
	LF_UNKNOWN_METHOD,
	LF_AUTH_LINE,
	LF_VALID,
	LF_KIND_COUNT
};

/* Short name of a kind ("truncated", ...). */
const char *lf_kind_name(enum lf_kind k);

/*
 * Replace f's contents with one generated frame and return its kind. A frame is at most
 * hard_max - 3 bytes. Returns LF_KIND_COUNT when memory ran out.
 */
enum lf_kind lf_generate(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f);

/* A valid request frame: method with body[0..len) and the token, request id id. */
bool lf_request(struct lf_buf *f, const char *method, const uint8_t *body, size_t len,
    const char *token, uint64_t id);

/* What the server owes a frame, decided from its bytes (SPEC section 4). */
enum lf_expect {
	EXPECT_BINARY,         /* a binary Reply, any status */
	EXPECT_BAD_HEADER,     /* a binary Reply with INVALID_ARGUMENT */
	EXPECT_VERSION,        /* a binary Reply with UNIMPLEMENTED */
	EXPECT_TOO_LARGE,      /* a binary Reply with RESOURCE_EXHAUSTED */
	EXPECT_TEXT,           /* one JSON object and a newline */
	EXPECT_TEXT_TOO_LARGE, /* the same, with "status":"RESOURCE_EXHAUSTED" */
	EXPECT_NOTHING,        /* over the transport's cap: the connection is dropped */
};

enum lf_expect lf_expect_of(const uint8_t *frame, size_t len, const struct lf_gen_config *cfg);

/* One nng REQ connection to the server under test. */
struct lf_conn {
	const char *url;
	bool ipc;
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;
};

/* Dial url (borrowed; it must outlive c). Returns 0 or an nng error. */
int lf_conn_open(struct lf_conn *c, const char *url);

/* Close what lf_conn_open opened (also after it failed part-way). */
void lf_conn_close(struct lf_conn *c);

/*
 * Send frame[0..len) on c and wait up to timeout_ms for the reply. 0 with *replyp (caller
 * frees with nng_msg_free), or an nng error (NNG_ETIMEDOUT when nothing came back; then
 * the connection has a fresh context).
 */
int lf_exchange(
    struct lf_conn *c, const uint8_t *frame, size_t len, int timeout_ms, nng_msg **replyp);

/*
 * On a raw connection of its own to url (ipc:// or loopback tcp://): the SP handshake as a
 * REQ peer, a message header declaring declared bytes, a request id and frame[0..len) (as
 * much as the server takes). The server must close the connection without answering.
 * Returns NULL when it did, or what went wrong.
 */
const char *lf_raw_over_cap(const char *url, const uint8_t *frame, size_t len, uint64_t declared);

#endif
