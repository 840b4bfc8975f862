/*
 * execute.c: the Execute rpc. A statement of the SQL dialect is parsed (sql.c) into the
 * same request messages the binary rpcs take, and run by the same handlers: there is one
 * implementation of the rules. The result is wrapped in a StatementReply.
 *
 * Thread safety: as handlers.h.
 */
#include "handlers.h"

#include <string.h>

#include "pb.h"
#include "sql.h"
#include "store.h"

static enum status
no_memory(struct request *rq)
{
	return outcome_no_memory(&rq->info->outcome);
}

/* Run one handler on a message the SQL parser made, into a fresh output message. */
static enum status
run_handler(struct request *rq, handler_fn fn, const ProtobufCMessage *in,
    const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **outp)
{
	ProtobufCMessage *out = arena_alloc(rq->arena, out_desc->sizeof_message);

	if (out == NULL)
		return no_memory(rq);
	protobuf_c_message_init(out_desc, out);
	*outp = out;
	return fn(rq, in, out);
}

enum status
handle_execute(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_statement *req = (const pb_statement *)in;
	pb_statement_reply *rep = (pb_statement_reply *)out;
	struct sql_statement stmt;
	ProtobufCMessage *res = NULL;
	enum status st;

	st = sql_parse(req->text, strlen(req->text), rq->arena, &stmt, &rq->info->outcome);
	if (st != ST_OK)
		return st;
	/* IN etcd / FROM etcd name the persistent storage of a cluster node; elsewhere there
	 * is no such storage (sqlcipher is accepted on both, for statements written for one
	 * machine). */
	if (stmt.etcd_off != SIZE_MAX && strcmp(store_name(rq->svc->persistent), "etcd") != 0)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_INVALID_STORAGE,
		    "unknown storage \"etcd\" (offset %zu): this server keeps persistent secrets "
		    "in %s; etcd is the storage of a cluster node (secretd --persistent-store etcd)",
		    stmt.etcd_off, store_name(rq->svc->persistent));
	switch (stmt.kind) {
	case SQL_CREATE:
		st = run_handler(rq, handle_create, &stmt.create.base,
		    &secretd__v1__secret_create_reply__descriptor, &res);
		rep->kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED;
		rep->created = (pb_create_reply *)res;
		break;
	case SQL_DROP:
		st = run_handler(rq, handle_drop, &stmt.drop.base,
		    &secretd__v1__secret_drop_reply__descriptor, &res);
		rep->kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED;
		rep->dropped = (pb_drop_reply *)res;
		break;
	case SQL_LIST:
		st = run_handler(rq, handle_list, &stmt.list.base,
		    &secretd__v1__secret_list_reply__descriptor, &res);
		rep->kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS;
		if (st == ST_OK) {
			rep->n_rows = ((pb_list_reply *)res)->n_rows;
			rep->rows = ((pb_list_reply *)res)->rows;
		}
		break;
	case SQL_RESOLVE:
		st = run_handler(rq, handle_resolve, &stmt.resolve.base,
		    &secretd__v1__secret_resolve_reply__descriptor, &res);
		rep->kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED;
		if (st == ST_OK && ((pb_resolve_reply *)res)->found) {
			const pb_secret *s = ((pb_resolve_reply *)res)->secret;
			pb_resolve_row *row = arena_alloc(rq->arena, sizeof(*row));

			rep->resolved = arena_alloc(rq->arena, sizeof(*rep->resolved));
			if (row == NULL || rep->resolved == NULL)
				return no_memory(rq);
			secretd__v1__resolve_row__init(row);
			row->name = s->name;
			row->persistent =
			    (char *)(s->storage == PB_STORAGE_SQLCIPHER ? "PERSISTENT"
			                                                : "TEMPORARY");
			row->storage = s->storage_name;
			row->node = s->node;
			rep->resolved[0] = row;
			rep->n_resolved = 1;
		}
		break;
	case SQL_GET:
		st = run_handler(rq, handle_get, &stmt.get.base,
		    &secretd__v1__secret_get_reply__descriptor, &res);
		rep->kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET;
		if (st == ST_OK)
			rep->secret = ((pb_get_reply *)res)->secret;
		break;
	default:
		return outcome_set(&rq->info->outcome, ST_INTERNAL, REASON_UNKNOWN_STATEMENT,
		    "unknown statement kind");
	}
	return st;
}
