/*
 * text.h: text frames (SPEC section 4). A frame that does not begin with a 0 byte is one
 * statement of the SQL dialect, optionally preceded by a line `AUTH <token>`, answered
 * with one JSON object and a newline, so that nngcat alone can manage secrets.
 *
 * What it does not do: no parsing of its own beyond the AUTH line (sql.c parses) and no
 * semantics (the Execute handler runs the statement).
 *
 * Thread safety: text_handle may run on many threads; text_init must run once before.
 */
#ifndef SECRETD_SERVER_TEXT_H
#define SECRETD_SERVER_TEXT_H

#include "service.h"

/* Make jansson wipe every block it frees (its strings may hold secret values). Call once
 * at start-up, before any thread uses jansson. */
void text_init(void);

/* Answer a text frame; arguments as service_handle. */
enum status text_handle(struct service *svc, struct caller *caller, const uint8_t *frame,
    size_t len, struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info);

/* Write the reply to a statement (its result when oc->status is ST_OK, else the error
 * object), one JSON object and a newline, into a buffer from alloc of exactly its size.
 * Returns ST_OK, or ST_RESOURCE_EXHAUSTED when alloc failed. rep and oc are borrowed. */
struct Secretd__V1__StatementReply;
enum status text_render(const struct Secretd__V1__StatementReply *rep, const struct outcome *oc,
    reply_alloc_fn alloc, void *alloc_arg);

#endif
