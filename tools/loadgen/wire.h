/*
 * wire.h: the load generator's side of the secretd wire protocol (SPEC section 4).
 *
 * Requests are packed with the generated protobuf-c code straight into an nng message.
 * Replies are read in place by a small protobuf reader (no allocation, no copy), because
 * the load generator shares the machine's cores with the server it measures: unpacking
 * every reply with protobuf-c would cost the client more than the echo baseline costs the
 * server. Each check is also done once per cell with protobuf-c (see bench.c) so the two
 * readers are compared on real replies.
 *
 * What it does not do: talk to sockets, or keep any state. Thread-safe: every function works
 * on its arguments only.
 */
#ifndef LOADGEN_WIRE_H
#define LOADGEN_WIRE_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secretd.pb-c.h"

#define WIRE_HEADER_LEN 4

/* A growable byte buffer reused across requests, so that packing costs no heap churn. */
struct wire_buf {
	uint8_t *data;
	size_t cap;
};

/* A length-delimited slice of a reply, borrowed from the reply frame. */
struct wire_bytes {
	const uint8_t *data;
	size_t len;
};

/* The fields of a secretd.v1.Reply envelope, borrowed from the frame. */
struct wire_reply {
	uint32_t status;
	struct wire_bytes reason;
	struct wire_bytes message;
	struct wire_bytes body;
	uint64_t request_id;
};

/* Free a buffer's memory (NULL-safe). */
void wire_buf_free(struct wire_buf *b);

/*
 * Build a binary request frame: header + Request{method, body = packed body, token,
 * timeout_ms, request_id}. scratch is reused for the packed body. token may be NULL.
 * On success *msgp is a new message the caller sends or frees. Returns 0 or an NNG_E* code.
 */
int wire_request(const char *method, const ProtobufCMessage *body, const char *token,
    uint32_t timeout_ms, uint64_t request_id, struct wire_buf *scratch, nng_msg **msgp);

/*
 * Build a text frame: `AUTH <token>\n` (when token is not NULL) followed by statement.
 * On success *msgp is a new message the caller sends or frees. Returns 0 or an NNG_E* code.
 */
int wire_text(const char *token, const char *statement, nng_msg **msgp);

/*
 * Read a binary reply frame (header + Reply) in place. False when the header or the envelope
 * is malformed; then *r is unspecified.
 */
bool wire_reply_read(const uint8_t *frame, size_t len, struct wire_reply *r);

/*
 * In a packed SecretGetReply (or, with resolve true, a SecretResolveReply), find the secret's
 * name and the value of its field key. found is set for a resolve reply's found flag (true
 * for a get reply that holds a secret). False when the body is malformed.
 */
bool wire_secret_read(const uint8_t *body, size_t len, bool resolve, const char *key, bool *foundp,
    struct wire_bytes *namep, struct wire_bytes *valuep);

/* Count the rows of a packed SecretListReply. False when the body is malformed. */
bool wire_list_rows(const uint8_t *body, size_t len, size_t *rowsp);

/* Whether a slice equals a NUL-terminated string. */
bool wire_bytes_eq(struct wire_bytes b, const char *s);

#endif /* LOADGEN_WIRE_H */
