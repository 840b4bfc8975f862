/*
 * text.h: text frames (SPEC section 4). A frame that does not begin with a 0 byte is one
 * statement of the SQL dialect, optionally preceded by a line `AUTH <token>`, answered
 * with one JSON object and a newline, so that nngcat alone can manage secrets.
 *
 * The codec itself (decode and encode) is text_codec in codec.h; the front door
 * (service.c) checks the frame limit, authenticates with the AUTH line's token and runs
 * the Execute handler.
 *
 * What it does not do: no parsing of its own beyond the AUTH line (sql.c parses) and no
 * semantics (the Execute handler runs the statement).
 *
 * Thread safety: the codec and text_render may run on many threads; text_init must run
 * once before.
 */
#ifndef SECRETD_SERVER_TEXT_H
#define SECRETD_SERVER_TEXT_H

#include "service.h"

/* Make jansson wipe every block it frees (its strings may hold secret values). Call once
 * at start-up, before any thread uses jansson. */
void text_init(void);

/* Write the reply to a statement (its result when oc->status is ST_OK, else the error
 * object), one JSON object and a newline, into a buffer from alloc of exactly its size.
 * Returns ST_OK, or ST_RESOURCE_EXHAUSTED when alloc failed. rep and oc are borrowed. */
struct Secretd__V1__StatementReply;
enum status text_render(const struct Secretd__V1__StatementReply *rep, const struct outcome *oc,
    reply_alloc_fn alloc, void *alloc_arg);

#endif
