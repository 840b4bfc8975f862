/*
 * fuzz_reply.c: fuzz target for libsecretd's reply decoding: the envelope check and
 * unpack in transport.c, the stub closures in calls.c and the result builders in
 * results.c, all reached through the public calls (secretd_create ... secretd_execute).
 *
 * A fake server on inproc:// (a REP socket on a thread of this process) answers every
 * request with the input's bytes as the reply frame. Input layout:
 *   byte 0, bits 0-2: which call the client makes (create, drop, list, get, resolve,
 *                     execute; 6 and 7 are list unredacted and execute again);
 *   byte 0, bit 3:    append field 5 (request_id) with the request's own id to the frame,
 *                     so that replies get past the id check (protobuf: the last one wins);
 *   bytes 1...:       the reply frame, from its 00 53 44 01 header on.
 * Invariants checked: the call returns a status in the gRPC range with a non-empty, NUL-
 * terminated message on failure; on success every string of the result is readable (each
 * is walked, so AddressSanitizer sees any dangling or short one) and the result frees.
 *
 * What it does not do: no real server, no network; inproc carries frames of any size.
 *
 * Thread safety: the fake server runs on its own thread; the input it answers with is
 * handed over under a mutex.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "fuzz.h"
#include "secretd.h"
#include "secretd.pb-c.h"

#define FUZZ_URL "inproc://secretd-fuzz-reply"

enum {
	FLAG_CALL_MASK = 0x07,
	FLAG_ECHO_ID = 0x08,
	CALL_TIMEOUT_MS = 5000,
};

static struct {
	pthread_mutex_t mu;
	const uint8_t *frame; /* the current input's reply frame; borrowed */
	size_t len;
	bool echo_id;
	nng_socket rep;
	secretd_client *client;
} fz = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Append a protobuf varint to msg. */
static int
append_varint(nng_msg *msg, uint64_t v)
{
	uint8_t buf[10];
	size_t n = 0;

	while (v >= 0x80) {
		buf[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	buf[n++] = (uint8_t)v;
	return nng_msg_append(msg, buf, n);
}

/* The fake server: answer each request with the current input. */
static void *
server_main(void *arg)
{
	(void)arg;
	for (;;) {
		nng_msg *req = NULL;
		nng_msg *rep = NULL;
		Secretd__V1__Request *env = NULL;
		uint64_t id = 0;
		int rv;

		rv = nng_recvmsg(fz.rep, &req, 0);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue;
		if (nng_msg_len(req) >= 4) {
			env = secretd__v1__request__unpack(
			    NULL, nng_msg_len(req) - 4, (const uint8_t *)nng_msg_body(req) + 4);
			if (env != NULL)
				id = env->request_id;
			secretd__v1__request__free_unpacked(env, NULL);
		}
		nng_msg_free(req);
		(void)pthread_mutex_lock(&fz.mu);
		rv = nng_msg_alloc(&rep, 0);
		if (rv == 0)
			rv = nng_msg_append(rep, fz.frame, fz.len);
		if (rv == 0 && fz.echo_id) {
			rv = nng_msg_append(rep, "\x28", 1); /* field 5, varint */
			if (rv == 0)
				rv = append_varint(rep, id);
		}
		(void)pthread_mutex_unlock(&fz.mu);
		if (rv == 0)
			rv = nng_sendmsg(fz.rep, rep, 0);
		if (rv != 0 && rep != NULL)
			nng_msg_free(rep);
	}
	return NULL;
}

/* Touch every byte of a C string (NULL allowed) so that a sanitizer checks it. */
static size_t
walk(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static void
walk_secret(const secretd_secret *s)
{
	FUZZ_CHECK(s != NULL);
	(void)walk(s->name);
	(void)walk(s->type);
	(void)walk(s->provider);
	for (size_t i = 0; i < s->n_scope; i++)
		(void)walk(s->scope[i]);
	for (size_t i = 0; i < s->n_fields; i++) {
		FUZZ_CHECK(walk(s->fields[i].value) <= s->fields[i].value_len);
		FUZZ_CHECK(s->fields[i].value[s->fields[i].value_len] == '\0');
		(void)walk(s->fields[i].key);
		if (s->fields[i].key != NULL)
			FUZZ_CHECK(secretd_secret_field(s, s->fields[i].key) != NULL);
	}
}

static void
walk_rows(const secretd_rows *rows)
{
	FUZZ_CHECK(rows != NULL);
	for (size_t i = 0; i < rows->n_rows; i++) {
		const secretd_row *r = &rows->rows[i];

		(void)walk(r->name);
		(void)walk(r->type);
		(void)walk(r->provider);
		(void)walk(r->storage);
		(void)walk(r->secret_string);
		for (size_t k = 0; k < r->n_scope; k++)
			(void)walk(r->scope[k]);
	}
}

static void
walk_result(const secretd_result *r)
{
	FUZZ_CHECK(r != NULL);
	FUZZ_CHECK(r->kind >= SECRETD_RESULT_CREATED && r->kind <= SECRETD_RESULT_SECRET);
	FUZZ_CHECK(memchr(r->created.name, 0, sizeof(r->created.name)) != NULL);
	FUZZ_CHECK(memchr(r->dropped.name, 0, sizeof(r->dropped.name)) != NULL);
	if (r->kind == SECRETD_RESULT_ROWS)
		walk_rows(r->rows);
	if (r->kind == SECRETD_RESULT_SECRET)
		walk_secret(r->secret);
	for (size_t i = 0; i < r->n_resolved; i++) {
		unsigned char b; /* the bool's byte: 0 or 1, never whatever the reply held */

		(void)walk(r->resolved[i].name);
		memcpy(&b, &r->resolved[i].persistent, 1);
		FUZZ_CHECK(b <= 1);
		(void)walk(r->resolved[i].storage);
	}
}

/* Make one call of kind call and check what it returns. */
static void
run_call(unsigned call)
{
	static const secretd_field field = {.key = "api_key", .value = "v", .value_len = 1};
	secretd_create_args cargs = {.type = "openai", .fields = &field, .n_fields = 1};
	secretd_list_args largs = {.unredacted = call == 6};
	secretd_create_result created;
	secretd_drop_result dropped;
	secretd_rows *rows = NULL;
	secretd_secret *secret = NULL;
	secretd_result *result = NULL;
	secretd_error err;
	secretd_status st;

	memset(&err, 0, sizeof(err));
	switch (call) {
	case 0:
		st = secretd_create(fz.client, &cargs, CALL_TIMEOUT_MS, &created, &err);
		if (st == SECRETD_OK)
			FUZZ_CHECK(memchr(created.name, 0, sizeof(created.name)) != NULL);
		break;
	case 1:
		st = secretd_drop(
		    fz.client, "s", SECRETD_STORAGE_ANY, false, CALL_TIMEOUT_MS, &dropped, &err);
		if (st == SECRETD_OK)
			FUZZ_CHECK(memchr(dropped.name, 0, sizeof(dropped.name)) != NULL);
		break;
	case 2:
	case 6:
		st = secretd_list(fz.client, &largs, CALL_TIMEOUT_MS, &rows, &err);
		if (st == SECRETD_OK)
			walk_rows(rows);
		break;
	case 3:
		st = secretd_get(
		    fz.client, "s", SECRETD_STORAGE_ANY, CALL_TIMEOUT_MS, &secret, &err);
		if (st == SECRETD_OK)
			walk_secret(secret);
		break;
	case 4:
		st = secretd_resolve(
		    fz.client, "openai://x", "openai", CALL_TIMEOUT_MS, &secret, &err);
		if (st == SECRETD_OK && secret != NULL)
			walk_secret(secret);
		break;
	default:
		st = secretd_execute(
		    fz.client, "FROM duckdb_secrets()", CALL_TIMEOUT_MS, &result, &err);
		if (st == SECRETD_OK)
			walk_result(result);
		break;
	}
	FUZZ_CHECK((int)st >= 0 && st <= SECRETD_UNAUTHENTICATED);
	FUZZ_CHECK(err.status == st);
	FUZZ_CHECK(memchr(err.message, 0, sizeof(err.message)) != NULL);
	FUZZ_CHECK(memchr(err.reason, 0, sizeof(err.reason)) != NULL);
	if (st != SECRETD_OK) {
		FUZZ_CHECK(err.message[0] != '\0');
		FUZZ_CHECK(rows == NULL && secret == NULL && result == NULL);
	}
	secretd_rows_free(rows);
	secretd_secret_free(secret);
	secretd_result_free(result);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	secretd_error err;
	pthread_t tid;

	(void)argc;
	(void)argv;
	if (nng_rep0_open(&fz.rep) != 0 || nng_listen(fz.rep, FUZZ_URL, NULL, 0) != 0)
		fuzz_fail("cannot start the fake server");
	if (pthread_create(&tid, NULL, server_main, NULL) != 0)
		fuzz_fail("cannot start the fake server's thread");
	(void)pthread_detach(tid);
	if (secretd_client_open(FUZZ_URL, NULL, &fz.client, &err) != SECRETD_OK)
		fuzz_fail("cannot open a client");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0];
	(void)pthread_mutex_lock(&fz.mu);
	fz.frame = data + 1;
	fz.len = size - 1;
	fz.echo_id = (flags & FLAG_ECHO_ID) != 0;
	(void)pthread_mutex_unlock(&fz.mu);
	run_call(flags & FLAG_CALL_MASK);
	return 0;
}
