/*
 * test_wire.c: the binary protocol frame by frame against a real secretd (SPEC section 4):
 * bad headers, unknown versions, undecodable envelopes and bodies, unknown methods, NUL
 * bytes inside strings, frames at and over the size limit, and resent requests (the same
 * request_id) answered with the first reply without running twice, a resent Rekey
 * included (one rotation: the key file changes once).
 *
 * Speaks the wire with the generated protobuf-c code and raw nng, not libsecretd, so it
 * can send what a well-behaved client never would.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"
#include "secretd.pb-c.h"

static struct server_proc srv;

/* Send frame[0..len) and return the reply (caller frees with nng_msg_free), or NULL. */
static nng_msg *
roundtrip(nng_socket s, const void *frame, size_t len)
{
	nng_msg *m = NULL;

	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, frame, len) != 0)
		return NULL;
	if (nng_sendmsg(s, m, 0) != 0) {
		nng_msg_free(m);
		return NULL;
	}
	m = NULL;
	if (nng_recvmsg(s, &m, 0) != 0)
		return NULL;
	return m;
}

/* Decode a binary reply; NULL when it is not one. Caller frees with
 * secretd__v1__reply__free_unpacked. */
static Secretd__V1__Reply *
decode(nng_msg *m)
{
	const uint8_t *b = nng_msg_body(m);
	size_t n = nng_msg_len(m);

	if (n < 4 || b[0] != 0 || b[1] != 'S' || b[2] != 'D' || b[3] != 1)
		return NULL;
	return secretd__v1__reply__unpack(NULL, n - 4, b + 4);
}

/* Pack header + envelope {method, body, request_id} into a malloc'd frame. */
static uint8_t *
envelope(const char *method, const ProtobufCMessage *body, uint64_t id, size_t *lenp)
{
	Secretd__V1__Request req = SECRETD__V1__REQUEST__INIT;
	uint8_t *bbuf = NULL;
	uint8_t *frame;
	size_t blen = 0;

	if (body != NULL) {
		blen = protobuf_c_message_get_packed_size(body);
		bbuf = malloc(blen + 1);
		protobuf_c_message_pack(body, bbuf);
	}
	req.method = (char *)method;
	req.body.data = bbuf;
	req.body.len = blen;
	req.request_id = id;
	*lenp = 4 + secretd__v1__request__get_packed_size(&req);
	frame = malloc(*lenp);
	memcpy(frame, "\0SD\1", 4);
	secretd__v1__request__pack(&req, frame + 4);
	free(bbuf);
	return frame;
}

/* Send a frame and check the reply's status and reason. */
static void
expect(nng_socket s, const void *frame, size_t len, unsigned status, const char *reason)
{
	nng_msg *m = roundtrip(s, frame, len);
	Secretd__V1__Reply *r = m != NULL ? decode(m) : NULL;

	CHECK(r != NULL);
	if (r != NULL) {
		CHECK_STATUS(r->status, status);
		CHECK_STR(r->reason, reason);
		CHECK(r->message[0] != '\0');
		secretd__v1__reply__free_unpacked(r, NULL);
	}
	if (m != NULL)
		nng_msg_free(m);
}

static void
test_bad_frames(nng_socket s)
{
	static const uint8_t short_hdr[] = {0, 'S'};
	static const uint8_t bad_magic[] = {0, 'X', 'D', 1, 0x0a, 0};
	static const uint8_t version2[] = {0, 'S', 'D', 2};
	static const uint8_t garbage[] = {0, 'S', 'D', 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2};
	/* field 1 (method) declared 2^31 bytes long */
	static const uint8_t huge_len[] = {0, 'S', 'D', 1, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x08};
	/* field 1 with the wrong wire type (varint) */
	static const uint8_t wrong_type[] = {0, 'S', 'D', 1, 0x08, 0x05};
	Secretd__V1__SecretGet get = SECRETD__V1__SECRET_GET__INIT;
	uint8_t *f;
	size_t n;

	expect(s, short_hdr, sizeof(short_hdr), 3, "BAD_HEADER");
	expect(s, bad_magic, sizeof(bad_magic), 3, "BAD_HEADER");
	expect(s, version2, sizeof(version2), 12, "VERSION");
	expect(s, garbage, sizeof(garbage), 3, "BAD_FRAME");
	expect(s, huge_len, sizeof(huge_len), 3, "BAD_FRAME");
	expect(s, wrong_type, sizeof(wrong_type), 3, "BAD_FRAME");

	get.name = (char *)"x";
	f = envelope("Frobnicate", &get.base, 0, &n);
	expect(s, f, n, 12, "UNKNOWN_METHOD");
	free(f);

	/* A body that is not a SecretGet: field 1 as a varint. */
	{
		Secretd__V1__Request req = SECRETD__V1__REQUEST__INIT;
		uint8_t body[] = {0x08, 0x01};
		uint8_t frame[64];

		req.method = (char *)"Get";
		req.body.data = body;
		req.body.len = sizeof(body);
		memcpy(frame, "\0SD\1", 4);
		n = 4 + secretd__v1__request__pack(&req, frame + 4);
		expect(s, frame, n, 3, "BAD_BODY");
	}
	/* A NUL inside a name must not be read as a shorter name. */
	{
		Secretd__V1__Request req = SECRETD__V1__REQUEST__INIT;
		uint8_t body[] = {0x0a, 0x05, 'a', 0, 'j', 'n', 'k'};
		uint8_t frame[64];

		req.method = (char *)"Drop";
		req.body.data = body;
		req.body.len = sizeof(body);
		memcpy(frame, "\0SD\1", 4);
		n = 4 + secretd__v1__request__pack(&req, frame + 4);
		expect(s, frame, n, 3, "BAD_BODY");
	}
}

static void
test_size_limit(nng_socket s)
{
	Secretd__V1__Statement st = SECRETD__V1__STATEMENT__INIT;
	char *text = malloc(70000);
	uint8_t *f;
	size_t n;

	/* Just over 64 KiB: a clear RESOURCE_EXHAUSTED, and the server lives on. */
	memset(text, ' ', 69999);
	memcpy(text, "FROM duckdb_secrets()", 21);
	text[69999] = '\0';
	st.text = text;
	f = envelope("Execute", &st.base, 0, &n);
	CHECK(n > 65536);
	expect(s, f, n, 8, "FRAME_TOO_LARGE");
	free(f);
	/* Just under: fine. */
	text[65000] = '\0';
	f = envelope("Execute", &st.base, 0, &n);
	CHECK(n <= 65536);
	expect(s, f, n, 0, "");
	free(f);
	free(text);
}

static void
test_resend(nng_socket s)
{
	Secretd__V1__SecretCreate c = SECRETD__V1__SECRET_CREATE__INIT;
	Secretd__V1__Field field = SECRETD__V1__FIELD__INIT;
	Secretd__V1__Field *fields[] = {&field};
	Secretd__V1__SecretDrop d = SECRETD__V1__SECRET_DROP__INIT;
	nng_msg *m1, *m2, *m3;
	uint8_t *f;
	size_t n;

	c.name = (char *)"resent";
	c.type = (char *)"openai";
	c.persistent = 1;
	field.key = (char *)"api_key";
	field.value.data = (uint8_t *)"k";
	field.value.len = 1;
	c.n_fields = 1;
	c.fields = fields;
	f = envelope("Create", &c.base, 0x1234abcdULL, &n);
	m1 = roundtrip(s, f, n);
	m2 = roundtrip(s, f, n); /* the same request again: nng's resend */
	CHECK(m1 != NULL && m2 != NULL);
	if (m1 != NULL && m2 != NULL) {
		Secretd__V1__Reply *r1 = decode(m1), *r2 = decode(m2);

		CHECK(r1 != NULL && r2 != NULL && r1->status == 0 && r2->status == 0);
		CHECK(nng_msg_len(m1) == nng_msg_len(m2) &&
		      memcmp(nng_msg_body(m1), nng_msg_body(m2), nng_msg_len(m1)) == 0);
		secretd__v1__reply__free_unpacked(r1, NULL);
		secretd__v1__reply__free_unpacked(r2, NULL);
	}
	free(f);
	/* A new id runs again: ALREADY_EXISTS proves the first ran once and this ran. */
	f = envelope("Create", &c.base, 0x1234abceULL, &n);
	m3 = roundtrip(s, f, n);
	if (m3 != NULL) {
		Secretd__V1__Reply *r3 = decode(m3);

		CHECK(r3 != NULL && r3->status == 6);
		secretd__v1__reply__free_unpacked(r3, NULL);
		nng_msg_free(m3);
	}
	free(f);
	/* The same id with a different body is not a duplicate. */
	d.name = (char *)"resent";
	f = envelope("Drop", &d.base, 0x1234abcdULL, &n);
	expect(s, f, n, 0, "");
	/* ... and a resent Drop replays OK instead of NOT_FOUND. */
	expect(s, f, n, 0, "");
	free(f);
	d.name = (char *)"resent";
	f = envelope("Drop", &d.base, 0x99, &n);
	expect(s, f, n, 5, "NOT_FOUND");
	free(f);
	if (m1 != NULL)
		nng_msg_free(m1);
	if (m2 != NULL)
		nng_msg_free(m2);
}

/* The number of times needle occurs in the file at path. */
static int
count_in_file(const char *path, const char *needle)
{
	size_t len = 0;
	char *text = file_read(path, &len); /* NUL-terminated; the log is text */
	int n = 0;

	for (char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(text);
	return n;
}

/* Send a Rekey frame with request id; return the reply (caller frees), or NULL. */
static nng_msg *
rekey(nng_socket s, uint64_t id)
{
	Secretd__V1__RekeyRequest rk = SECRETD__V1__REKEY_REQUEST__INIT;
	size_t n;
	uint8_t *f = envelope("Rekey", &rk.base, id, &n);
	nng_msg *m = roundtrip(s, f, n);

	free(f);
	return m;
}

/*
 * A Rekey resent with the same request id (nng's REQ resends after a broken pipe) gets the
 * first reply and rotates the key once: the key file changes with the first arrival and not
 * with the second, and the server logs one rotation. A new id rotates again.
 */
static void
test_resend_rekey(nng_socket s)
{
	char key_path[400];
	size_t len0 = 0, len1 = 0, len2 = 0, len3 = 0;
	char *key0, *key1, *key2, *key3;
	nng_msg *m1, *m2, *m3;
	int before = count_in_file(srv.log_path, "database key rotated");

	(void)snprintf(key_path, sizeof(key_path), "%s/secretd.key", srv.data_dir);
	key0 = file_read(key_path, &len0);
	m1 = rekey(s, 0x5eed0001ULL);
	key1 = file_read(key_path, &len1);
	m2 = rekey(s, 0x5eed0001ULL); /* the same request again */
	key2 = file_read(key_path, &len2);
	CHECK(key0 != NULL && key1 != NULL && key2 != NULL);
	CHECK(m1 != NULL && m2 != NULL);
	if (m1 != NULL && m2 != NULL) {
		Secretd__V1__Reply *r1 = decode(m1);

		CHECK(r1 != NULL && r1->status == 0);
		CHECK(nng_msg_len(m1) == nng_msg_len(m2) &&
		      memcmp(nng_msg_body(m1), nng_msg_body(m2), nng_msg_len(m1)) == 0);
		if (r1 != NULL)
			secretd__v1__reply__free_unpacked(r1, NULL);
	}
	if (key0 != NULL && key1 != NULL && key2 != NULL) {
		CHECK(len0 != len1 || memcmp(key0, key1, len0) != 0); /* rotated */
		CHECK(len1 == len2 && memcmp(key1, key2, len1) == 0); /* ... once */
	}
	CHECK_STATUS(count_in_file(srv.log_path, "database key rotated") - before, 1);
	/* A new id is a new rotation. */
	m3 = rekey(s, 0x5eed0002ULL);
	key3 = file_read(key_path, &len3);
	CHECK(m3 != NULL && key3 != NULL);
	if (key2 != NULL && key3 != NULL)
		CHECK(len2 != len3 || memcmp(key2, key3, len2) != 0);
	CHECK_STATUS(count_in_file(srv.log_path, "database key rotated") - before, 2);
	free(key0);
	free(key1);
	free(key2);
	free(key3);
	if (m1 != NULL)
		nng_msg_free(m1);
	if (m2 != NULL)
		nng_msg_free(m2);
	if (m3 != NULL)
		nng_msg_free(m3);
}

int
main(void)
{
	nng_socket s;

	if (!harness_init(&srv) || !harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	CHECK(nng_req0_open(&s) == 0);
	CHECK(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000) == 0);
	CHECK(nng_dial(s, srv.url, NULL, 0) == 0);
	test_bad_frames(s);
	test_size_limit(s);
	test_resend(s);
	test_resend_rekey(s);
	/* Still alive and well after all of it. */
	expect(s, "\0SD\1", 4, 12, "UNKNOWN_METHOD");
	/* No nng_close: the socket goes with the process. nng 1.5.2 can hang in nng_close
	 * when a message arrives as it closes (tests/README.md), and the resend test above
	 * leaves requests the server may still answer. */
	CHECK_STATUS(harness_stop(&srv), 0);
	harness_cleanup(&srv);
	return check_report();
}
