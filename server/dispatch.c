/*
 * dispatch.c: secretd's method bindings and the table built from them. See dispatch.h.
 */
#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "notify.h"
#include "pb.h"

/*
 * Which methods are remembered for resends: each one that can change state. Create and
 * Drop change a store; Execute runs a statement that may be a CREATE or a DROP; Rekey
 * rotates the key, and a resent Rekey must not rotate it a second time. List, Get,
 * Resolve, Subscribe and Health only read: a resend simply reads again.
 */
static const struct method_binding secretd_bindings[] = {
    {"Create", &secretd__v1__secret_create__descriptor,
        &secretd__v1__secret_create_reply__descriptor, handle_create, true},
    {"Drop", &secretd__v1__secret_drop__descriptor, &secretd__v1__secret_drop_reply__descriptor,
        handle_drop, true},
    {"List", &secretd__v1__secret_list__descriptor, &secretd__v1__secret_list_reply__descriptor,
        handle_list, false},
    {"Get", &secretd__v1__secret_get__descriptor, &secretd__v1__secret_get_reply__descriptor,
        handle_get, false},
    {"Resolve", &secretd__v1__secret_resolve__descriptor,
        &secretd__v1__secret_resolve_reply__descriptor, handle_resolve, false},
    {"Execute", &secretd__v1__statement__descriptor, &secretd__v1__statement_reply__descriptor,
        handle_execute, true},
    {"Rekey", &secretd__v1__rekey_request__descriptor, &secretd__v1__rekey_reply__descriptor,
        handle_rekey, true},
    {"Subscribe", &secretd__v1__subscribe_request__descriptor,
        &secretd__v1__subscribe_reply__descriptor, handle_subscribe, false},
    {"Health", &secretd__v1__health_request__descriptor, &secretd__v1__health_reply__descriptor,
        handle_health, false},
};

const struct method_binding *
dispatch_bindings(size_t *np)
{
	*np = sizeof(secretd_bindings) / sizeof(secretd_bindings[0]);
	return secretd_bindings;
}

/* The key of Reply.body: (field number << 3) | 2 (length-delimited), as a varint. */
static enum status
body_key(struct dispatch *d, char *err, size_t errlen)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
	    &secretd__v1__reply__descriptor, "body");
	uint32_t v;

	if (f == NULL || f->type != PROTOBUF_C_TYPE_BYTES ||
	    f->label == PROTOBUF_C_LABEL_REPEATED) {
		(void)snprintf(err, errlen, "secretd.v1.Reply has no single bytes field 'body'");
		return ST_INTERNAL;
	}
	v = (f->id << 3) | 2;
	d->body_key_len = 0;
	while (v >= 0x80) {
		d->body_key[d->body_key_len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	d->body_key[d->body_key_len++] = (uint8_t)v;
	return ST_OK;
}

enum status
dispatch_build(struct dispatch *d, const ProtobufCServiceDescriptor *sd,
    const struct method_binding *bindings, size_t n, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	if (sd->n_methods > DISPATCH_MAX_METHODS) {
		(void)snprintf(err, errlen, "service %s has %u methods; room for %d", sd->name,
		    sd->n_methods, DISPATCH_MAX_METHODS);
		return ST_INTERNAL;
	}
	for (size_t b = 0; b < n; b++) {
		const ProtobufCMethodDescriptor *m = NULL;
		size_t idx;

		for (unsigned i = 0; i < sd->n_methods && m == NULL; i++)
			if (strcmp(sd->methods[i].name, bindings[b].name) == 0)
				m = &sd->methods[i];
		if (m == NULL) {
			(void)snprintf(err, errlen,
			    "handler for '%s', which service %s does not have", bindings[b].name,
			    sd->name);
			return ST_INTERNAL;
		}
		idx = (size_t)(m - sd->methods);
		if (d->methods[idx].binding != NULL) {
			(void)snprintf(
			    err, errlen, "method %s.%s has two handlers", sd->name, m->name);
			return ST_INTERNAL;
		}
		if (bindings[b].fn == NULL || bindings[b].input != m->input ||
		    bindings[b].output != m->output) {
			(void)snprintf(err, errlen,
			    "the handler of %s.%s does not take %s and return %s", sd->name,
			    m->name, m->input->name, m->output->name);
			return ST_INTERNAL;
		}
		d->methods[idx].desc = m;
		d->methods[idx].binding = &bindings[b];
	}
	for (unsigned i = 0; i < sd->n_methods; i++) {
		if (d->methods[i].binding == NULL) {
			(void)snprintf(err, errlen, "method %s.%s has no handler", sd->name,
			    sd->methods[i].name);
			return ST_INTERNAL;
		}
	}
	if (body_key(d, err, errlen) != ST_OK)
		return ST_INTERNAL;
	d->service = sd;
	d->n = sd->n_methods;
	return ST_OK;
}

const struct dispatch_method *
dispatch_find(const struct dispatch *d, const char *name)
{
	const ProtobufCMethodDescriptor *m;
	size_t idx;

	if (d->n == 0)
		return NULL;
	m = protobuf_c_service_descriptor_get_method_by_name(d->service, name);
	if (m == NULL)
		return NULL;
	/* protobuf-c only asserts the index: check it. */
	idx = (size_t)(m - d->service->methods);
	return idx < d->n ? &d->methods[idx] : NULL;
}
