/*
 * codec.h: how a frame is read into a request and how an outcome is written back, for the
 * two kinds of frame secretd speaks (SPEC section 4): binary (wire.c: the protobuf
 * envelope) and text (text.c: a statement and an optional AUTH line, answered in JSON).
 *
 * service.c is the one front door: it checks the frame's length, picks the codec by the
 * frame's first byte, lets the codec decode, authenticates, runs the one dispatch and
 * hands the outcome to the same codec's encoder. A codec does none of those steps itself:
 * it knows bytes, not callers, handlers or stores.
 *
 * Thread safety: the codecs are constant tables of pure functions.
 */
#ifndef SECRETD_SERVER_CODEC_H
#define SECRETD_SERVER_CODEC_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "service.h"

/* A request as a codec read it from a frame. */
struct decoded {
	/* The method to run; set as soon as the codec knows it (a text frame is always
	 * Execute), NULL when it never did. */
	const struct dispatch_method *method;
	const char *token;      /* the presented token (arena memory), NULL when none was */
	uint64_t request_id;    /* 0: none (no de-duplication) */
	uint64_t min_store_rev; /* 0: no wait */
	/* The input message: either already built (in; arena memory) or still packed
	 * (body, borrowed from the frame), unpacked by service.c after authentication. */
	ProtobufCMessage *in;
	ProtobufCBinaryData body;
};

/* What an encoder writes: one reply frame, through alloc, of exactly its size. */
struct reply_args {
	const struct service *svc;
	const struct call_info *info; /* its outcome, and whether the call changed state */
	uint64_t request_id;
	/* The method's output message; written only when the outcome is ST_OK. May be NULL. */
	const ProtobufCMessage *out;
	uint64_t rev; /* notify_rev when the call began (for a call that changed nothing) */
	reply_alloc_fn alloc;
	void *alloc_arg;
};

struct codec {
	/* Read frame[0..len) (borrowed; len is within the frame limit) into d, allocating
	 * from a. Returns ST_OK, or the status it set in oc with a reason and message. */
	enum status (*decode)(const struct service *svc, const uint8_t *frame, size_t len,
	    struct arena *a, struct decoded *d, struct outcome *oc);
	/* Write the reply. Returns ST_OK, or ST_RESOURCE_EXHAUSTED when alloc failed. */
	enum status (*encode)(const struct reply_args *r);
	/* The message of an UNAUTHENTICATED reply when no token came with the frame: how
	 * this kind of frame carries one. */
	const char *no_token_message;
	/* The method every frame of this kind runs ("Execute" for text), for the log and
	 * metrics even when the frame is refused before decoding; NULL when the frame
	 * names its method. */
	const char *method;
};

/* Binary frames: 00 53 44 <version> and a packed secretd.v1.Request (wire.c). */
extern const struct codec wire_codec;

/* Text frames: [AUTH <token>\n] statement, answered with JSON (text.c). */
extern const struct codec text_codec;

/*
 * Whether every string in an unpacked message (nested ones too) is free of NUL bytes
 * (wire.c). protobuf-c copies a string's bytes and adds a NUL, so a string holding a NUL
 * would be silently cut short at it: each string's length is compared with the size
 * protobuf-c allocated for it (arena_pb_size), so m must have been unpacked into an arena.
 */
bool wire_strings_clean(const ProtobufCMessage *m);

#endif
