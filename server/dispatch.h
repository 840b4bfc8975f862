/*
 * dispatch.h: the handler of each method of service Secrets, in a table indexed by the
 * method's index in the generated service descriptor. The table is built once at start
 * from a list of bindings (method name, the input and output message types the handler
 * expects, the handler, whether its replies are remembered for resends) and checked
 * against the descriptor: every method has exactly one handler, every handler names a
 * method of the service, and each binding's message types are the method's. A mismatch
 * fails the start with a message that names the method.
 *
 * What it does not do: no decoding, no authentication, no replies (service.c).
 *
 * Thread safety: build once before any call; the built table is read-only after that and
 * may be read by many threads at once.
 */
#ifndef SECRETD_SERVER_DISPATCH_H
#define SECRETD_SERVER_DISPATCH_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

struct request;

/*
 * A handler reads in (an unpacked message of the method's input type, borrowed) and fills
 * out (an initialised message of the method's output type, whose pointers it sets to arena
 * memory). It returns the status it also stores in rq->info->outcome (handlers.h).
 */
typedef enum status (*handler_fn)(
    struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);

/* One method's handler, as written in the source (dispatch.c: secretd's list). */
struct method_binding {
	const char *name;                         /* the rpc's name in the .proto */
	const ProtobufCMessageDescriptor *input;  /* the message type fn reads */
	const ProtobufCMessageDescriptor *output; /* the message type fn fills */
	handler_fn fn;
	/* The reply of a call that changed state is kept (dedup.h), so that the same
	 * request resent (same request id, body and caller) gets it instead of running
	 * again. True for every method that can change state; a read is simply run again. */
	bool remembered_for_resend;
};

/* Room for the methods of service Secrets (checked by dispatch_build). */
#define DISPATCH_MAX_METHODS 16

/* One entry of the built table: the descriptor's method and its binding. */
struct dispatch_method {
	const ProtobufCMethodDescriptor *desc;
	const struct method_binding *binding;
};

struct dispatch {
	const ProtobufCServiceDescriptor *service;
	size_t n; /* service->n_methods once built; 0: not built */
	struct dispatch_method methods[DISPATCH_MAX_METHODS];
	/* The key (field number and wire type, varint-encoded) of Reply.body, read from the
	 * Reply descriptor: the body is written by hand after the packed envelope. */
	uint8_t body_key[5];
	size_t body_key_len;
};

/* secretd's bindings: one per rpc of service Secrets. *np is set to their number. */
const struct method_binding *dispatch_bindings(size_t *np);

/*
 * Build d for service sd from bindings[0..n) (borrowed; they must outlive d). Returns
 * ST_OK, or ST_INTERNAL with a message in err[errlen] naming the first method without a
 * handler, the first binding without a method, a binding given twice or a binding whose
 * message types are not the method's.
 */
enum status dispatch_build(struct dispatch *d, const ProtobufCServiceDescriptor *sd,
    const struct method_binding *bindings, size_t n, char *err, size_t errlen);

/* The entry for the method named name, or NULL when the service has no such method. */
const struct dispatch_method *dispatch_find(const struct dispatch *d, const char *name);

#endif
