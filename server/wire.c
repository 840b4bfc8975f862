/*
 * wire.c: the binary codec (codec.h). A frame is the 4 bytes 00 53 44 <version> and a
 * packed secretd.v1.Request; a reply is the same header and a packed secretd.v1.Reply
 * whose body is the method's output message, packed straight into the reply buffer.
 *
 * What it does not do: no authentication, no dispatch, no de-duplication (service.c).
 *
 * Thread safety: pure functions of their arguments.
 */
#include <string.h>

#include "codec.h"
#include "notify.h"
#include "pb.h"
#include "store.h"

/* "\0SD" and the protocol version. */
static const uint8_t frame_magic[3] = {0x00, 'S', 'D'};
enum { FRAME_VERSION = 1, FRAME_HEADER = 4 };

bool
wire_strings_clean(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t n = 1;
		void *const *items = (void *const *)(const void *)base;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
			items = *(void *const *const *)(const void *)base;
		}
		for (size_t k = 0; k < n; k++) {
			const void *item = items[k];

			if (item == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (!wire_strings_clean(item))
					return false;
			} else if (item != protobuf_c_empty_string &&
			           strlen(item) + 1 != arena_pb_size(item)) {
				return false;
			}
		}
	}
	return true;
}

static enum status
wire_decode(const struct service *svc, const uint8_t *frame, size_t len, struct arena *a,
    struct decoded *d, struct outcome *oc)
{
	ProtobufCAllocator pa = {arena_pb_alloc, arena_pb_free, a};
	pb_request *env;

	if (len < FRAME_HEADER || memcmp(frame, frame_magic, sizeof(frame_magic)) != 0)
		return outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_HEADER,
		    "bad frame header: a binary frame starts with 00 53 44 <version>");
	if (frame[3] != FRAME_VERSION)
		return outcome_set(oc, ST_UNIMPLEMENTED, REASON_VERSION,
		    "protocol version %u is not supported; this server speaks version %d", frame[3],
		    FRAME_VERSION);
	env = secretd__v1__request__unpack(&pa, len - FRAME_HEADER, frame + FRAME_HEADER);
	if (env == NULL)
		return outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_FRAME,
		    "the request envelope is not a valid secretd.v1.Request");
	d->request_id = env->request_id;
	if (!wire_strings_clean(&env->base))
		return outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_FRAME,
		    "a string in the request envelope holds a NUL byte");
	d->method = dispatch_find(&svc->dispatch, env->method);
	if (d->method == NULL)
		return outcome_set(oc, ST_UNIMPLEMENTED, REASON_UNKNOWN_METHOD,
		    "unknown method '%.64s'", env->method);
	d->token = env->token[0] != '\0' ? env->token : NULL;
	d->min_store_rev = env->min_store_rev;
	d->body = env->body;
	return ST_OK;
}

static size_t
varint_size(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Header + Reply{status, reason, message, request_id, epoch, rev, store_rev} and, when
 * there is an output message, the body field (its key read from the Reply descriptor at
 * start: dispatch.h) written by hand so that the output is packed straight into the reply
 * buffer with no intermediate copy. Protobuf readers accept fields in any order.
 */
static enum status
wire_encode(const struct reply_args *r)
{
	const struct outcome *oc = &r->info->outcome;
	const struct dispatch *dt = &r->svc->dispatch;
	const ProtobufCMessage *body = oc->status == ST_OK ? r->out : NULL;
	pb_reply env = SECRETD__V1__REPLY__INIT;
	size_t body_len = 0;
	size_t total;
	uint8_t *buf;
	uint8_t *p;

	env.status = (uint32_t)oc->status;
	env.reason = (char *)(oc->reason != NULL ? oc->reason : "");
	env.message = (char *)oc->message;
	env.request_id = r->request_id;
	env.epoch = notify_epoch(r->svc->notify);
	env.rev = r->info->mutating ? notify_rev(r->svc->notify) : r->rev;
	env.store_rev = store_revision(r->svc->persistent);
	total = FRAME_HEADER + secretd__v1__reply__get_packed_size(&env);
	if (body != NULL) {
		body_len = protobuf_c_message_get_packed_size(body);
		total += dt->body_key_len + varint_size(body_len) + body_len;
	}
	buf = r->alloc(r->alloc_arg, total);
	if (buf == NULL)
		return ST_RESOURCE_EXHAUSTED;
	memcpy(buf, frame_magic, sizeof(frame_magic));
	buf[3] = FRAME_VERSION;
	p = buf + FRAME_HEADER;
	p += secretd__v1__reply__pack(&env, p);
	if (body != NULL) {
		size_t v = body_len;

		memcpy(p, dt->body_key, dt->body_key_len);
		p += dt->body_key_len;
		while (v >= 0x80) {
			*p++ = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		*p++ = (uint8_t)v;
		(void)protobuf_c_message_pack(body, p);
	}
	return ST_OK;
}

const struct codec wire_codec = {
    .decode = wire_decode,
    .encode = wire_encode,
    .no_token_message = "this connection needs a token",
    .method = NULL,
};
