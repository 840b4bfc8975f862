/*
 * fuzz_service.c: fuzz target for the whole request path, frame bytes in -> reply bytes out
 * (service_handle), binary and text frames, against two fresh memory stores per input.
 *
 * One input is up to FUZZ_MAX_FRAMES frames separated by the 4 bytes FF 'S' 'D' FF (a byte
 * sequence that is never valid UTF-8, so no text frame needs it), so that one input can
 * create a secret and then list, get, resolve or drop it. Each input starts from empty
 * stores holding one planted secret, which keeps every run reproducible from its input
 * alone. The caller is an admin (an ipc peer with the server's uid); the stores hold at
 * most FUZZ_MAX_SECRETS secrets so that the "storage full" paths are reachable.
 *
 * Invariants checked on every frame (a failure aborts):
 *   - service_handle answers (ST_OK) and calls the reply allocator exactly once;
 *   - a binary frame is answered by 00 53 44 01 + a Reply that protobuf-c decodes, whose
 *     status is a gRPC code, whose message is non-empty on error, whose request_id echoes
 *     the request's, and whose body (on OK) decodes as the method's output message;
 *   - a text frame is answered by one JSON object and a newline, with a "status" string
 *     and, on error, a non-empty "message";
 *   - no error message contains the planted secret's value (unless the input does, which
 *     an error may echo, e.g. as an unknown method name).
 *
 * What it does not do: no sockets, no sqlcipher (tests/fuzz/fuzz_row.c covers its row
 * decoder), no token table (auth NULL).
 *
 * Thread safety: none; one fuzzing thread.
 */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "arena.h"
#include "fuzz.h"
#include "secretd.pb-c.h"
#include "service.h"
#include "store.h"
#include "text.h"

enum {
	FUZZ_MAX_FRAMES = 16,
	FUZZ_MAX_SECRETS = 8,
	FUZZ_ARENA_BLOCK = 16384,
};

static const uint8_t frame_sep[4] = {0xFF, 'S', 'D', 0xFF};

/* A value no input contains by chance: it must never show up in an error message. */
static const char planted_value[] = "sk-PLANTED-fuzz-value-6d1c";

/* The harness's state, kept across inputs so that buffers are reused. */
static struct {
	struct arena arena;
	uint8_t *reply;         /* reusable reply buffer */
	size_t reply_cap;       /* its size */
	size_t reply_len;       /* length of the last reply */
	unsigned n_allocs;      /* reply allocations during the current frame */
	bool input_has_planted; /* the input itself holds the value: echoes are no leak */
} fz;

/* reply_alloc_fn: hand out the reusable buffer, growing it when needed. */
static uint8_t *
reply_alloc(void *arg, size_t len)
{
	(void)arg;
	fz.n_allocs++;
	if (len > fz.reply_cap) {
		uint8_t *p = realloc(fz.reply, len);

		if (p == NULL)
			return NULL;
		fz.reply = p;
		fz.reply_cap = len;
	}
	fz.reply_len = len;
	return fz.reply;
}

/* Whether hay[0..n) contains the planted value. */
static bool
holds_planted(const void *hay, size_t n)
{
	size_t k = sizeof(planted_value) - 1;
	const uint8_t *h = hay;

	for (size_t i = 0; i + k <= n; i++)
		if (h[i] == (uint8_t)planted_value[0] && memcmp(h + i, planted_value, k) == 0)
			return true;
	return false;
}

/* Open an empty memory store with one planted secret when plant is true. */
static store_status
open_store(bool plant, struct store **storep)
{
	struct store_config cfg = {.max_secrets = FUZZ_MAX_SECRETS};
	struct store_field field = {
	    .key = "api_key",
	    .value = (const uint8_t *)planted_value,
	    .value_len = sizeof(planted_value) - 1,
	};
	const char *scope[] = {"openai://"};
	struct store_secret *s = NULL;
	struct store *st = NULL;
	store_status rc;

	rc = store_open(&store_memory_ops, &cfg, &st);
	if (rc != STORE_OK)
		goto fail;
	if (plant) {
		rc = store_secret_new("planted", "openai", scope, 1, &field, 1, &s);
		if (rc != STORE_OK)
			goto fail;
		rc = store_put(st, s, STORE_CONFLICT_ERROR, NULL);
		s = NULL; /* taken */
		if (rc != STORE_OK)
			goto fail;
	}
	*storep = st;
	st = NULL;
fail:
	store_secret_free(s);
	store_close(st);
	return rc;
}

/* Check the reply to a binary frame (see the file comment). */
static void
check_binary_reply(const uint8_t *frame, size_t len, const struct call_info *info)
{
	static const uint8_t header[4] = {0x00, 'S', 'D', 0x01};
	Secretd__V1__Reply *rep = NULL;
	Secretd__V1__Request *req = NULL;
	const ProtobufCMethodDescriptor *m;
	ProtobufCMessage *body = NULL;

	FUZZ_CHECK(fz.reply_len >= sizeof(header));
	FUZZ_CHECK(memcmp(fz.reply, header, sizeof(header)) == 0);
	rep = secretd__v1__reply__unpack(NULL, fz.reply_len - 4, fz.reply + 4);
	FUZZ_CHECK(rep != NULL);
	FUZZ_CHECK(rep->status <= 16);
	FUZZ_CHECK(rep->status == (uint32_t)info->outcome.status);
	if (rep->status != 0) {
		FUZZ_CHECK(rep->message[0] != '\0');
		FUZZ_CHECK(
		    fz.input_has_planted || !holds_planted(rep->message, strlen(rep->message)));
		FUZZ_CHECK(rep->body.len == 0);
	}
	/* The envelope decodes only behind a good header; then the id must be echoed. */
	if (len >= 4 && memcmp(frame, header, 4) == 0) {
		req = secretd__v1__request__unpack(NULL, len - 4, frame + 4);
		if (req != NULL)
			FUZZ_CHECK(rep->request_id == req->request_id);
	}
	if (rep->status == 0) {
		m = protobuf_c_service_descriptor_get_method_by_name(
		    &secretd__v1__secrets__descriptor, info->method);
		FUZZ_CHECK(m != NULL);
		body = protobuf_c_message_unpack(m->output, NULL, rep->body.len, rep->body.data);
		FUZZ_CHECK(body != NULL);
		protobuf_c_message_free_unpacked(body, NULL);
	}
	if (req != NULL)
		secretd__v1__request__free_unpacked(req, NULL);
	secretd__v1__reply__free_unpacked(rep, NULL);
}

/* Check the reply to a text frame: one JSON object and a newline. */
static void
check_text_reply(void)
{
	json_error_t jerr;
	json_t *root;
	json_t *status;
	json_t *message;

	FUZZ_CHECK(fz.reply_len >= 2 && fz.reply[fz.reply_len - 1] == '\n');
	root = json_loadb((const char *)fz.reply, fz.reply_len - 1, 0, &jerr);
	FUZZ_CHECK(root != NULL && json_is_object(root));
	status = json_object_get(root, "status");
	FUZZ_CHECK(json_is_string(status));
	if (strcmp(json_string_value(status), "OK") != 0) {
		message = json_object_get(root, "message");
		FUZZ_CHECK(json_is_string(message) && json_string_length(message) > 0);
		FUZZ_CHECK(fz.input_has_planted ||
		           !holds_planted(json_string_value(message), json_string_length(message)));
	}
	json_decref(root);
}

/* Run one frame against svc and check its reply. */
static void
run_frame(struct service *svc, const uint8_t *frame, size_t len)
{
	struct caller caller;
	struct call_info info;
	enum status st;

	memset(&caller, 0, sizeof(caller));
	caller.transport_role = ROLE_ADMIN;
	(void)snprintf(caller.peer, sizeof(caller.peer), "fuzz");
	fz.n_allocs = 0;
	fz.reply_len = 0;
	st = service_handle(svc, &caller, frame, len, &fz.arena, reply_alloc, NULL, &info);
	FUZZ_CHECK(st == ST_OK);
	FUZZ_CHECK(fz.n_allocs == 1);
	FUZZ_CHECK(info.method != NULL && info.name != NULL && info.storage != NULL);
	if (info.text)
		check_text_reply();
	else
		check_binary_reply(frame, len, &info);
	arena_reset(&fz.arena);
}

/* The next frame of data[*posp..size): its start and length; advances *posp past the
 * separator. Returns false when no frame is left. */
static bool
next_frame(const uint8_t *data, size_t size, size_t *posp, const uint8_t **framep, size_t *lenp)
{
	size_t pos = *posp;
	size_t end;

	if (pos > size)
		return false;
	for (end = pos; end + sizeof(frame_sep) <= size; end++)
		if (memcmp(data + end, frame_sep, sizeof(frame_sep)) == 0)
			break;
	if (end + sizeof(frame_sep) > size)
		end = size;
	*framep = data + pos;
	*lenp = end - pos;
	*posp = end + sizeof(frame_sep); /* past size when this was the last frame */
	return true;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	text_init();
	arena_init(&fz.arena, FUZZ_ARENA_BLOCK);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct service svc;
	char err[256];
	struct store *temporary = NULL;
	struct store *persistent = NULL;
	const uint8_t *frame;
	size_t len;
	size_t pos = 0;

	memset(&svc, 0, sizeof(svc));
	if (service_init(&svc, err, sizeof(err)) != ST_OK)
		fuzz_fail(err);
	limits_default(&svc.limits);
	svc.limits.max_secrets = FUZZ_MAX_SECRETS;
	if (open_store(true, &temporary) != STORE_OK || open_store(false, &persistent) != STORE_OK)
		fuzz_fail("cannot open the memory stores");
	fz.input_has_planted = holds_planted(data, size);
	svc.temporary = temporary;
	svc.persistent = persistent;
	for (int n = 0; n < FUZZ_MAX_FRAMES && next_frame(data, size, &pos, &frame, &len); n++)
		run_frame(&svc, frame, len);
	store_close(persistent);
	store_close(temporary);
	return 0;
}
