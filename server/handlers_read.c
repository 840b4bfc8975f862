/*
 * handlers_read.c: the handlers that only read: List, Get and Resolve (SPEC section 2).
 * Results are built straight into the call's arena, values included (the arena is wiped
 * when the call ends).
 *
 * Thread safety: see handlers.h. No state of its own.
 */
#include <string.h>

#include "handlers_internal.h"
#include "store.h"

/* Rows collected from one store during a listing. */
struct row_sink {
	struct request *rq;
	pb_row **rows;
	size_t n;
	size_t cap;
	bool persistent;
	bool unredacted;
	bool failed;
};

/* Arena copies of a secret's scope list. */
static char **
scope_dup(struct arena *a, const struct store_secret *s)
{
	char **scope = arena_alloc(a, (s->n_scope + 1) * sizeof(*scope));

	if (scope == NULL)
		return NULL;
	for (size_t i = 0; i < s->n_scope; i++)
		if ((scope[i] = arena_strdup(a, s->scope[i])) == NULL)
			return NULL;
	return scope;
}

static bool
collect_row(const struct store_secret *s, void *arg)
{
	struct row_sink *sink = arg;
	struct arena *a = sink->rq->arena;
	pb_row *row;

	if (sink->n == sink->cap) {
		size_t cap = sink->cap == 0 ? 64 : sink->cap * 2;
		pb_row **rows = arena_alloc(a, cap * sizeof(*rows));

		if (rows == NULL)
			goto fail;
		if (sink->n > 0)
			memcpy(rows, sink->rows, sink->n * sizeof(*rows));
		sink->rows = rows;
		sink->cap = cap;
	}
	row = arena_alloc(a, sizeof(*row));
	if (row == NULL)
		goto fail;
	secretd__v1__secret_row__init(row);
	row->name = arena_strdup(a, s->name);
	row->type = arena_strdup(a, s->type);
	row->provider = (char *)"config";
	row->persistent = sink->persistent;
	row->storage = (char *)handler_storage_name(sink->rq, sink->persistent);
	row->node = handler_node_of(sink->rq, sink->persistent);
	row->n_scope = s->n_scope;
	row->scope = scope_dup(a, s);
	row->secret_string = type_secret_string(a, s, sink->unredacted);
	if (row->name == NULL || row->type == NULL || row->scope == NULL ||
	    row->secret_string == NULL)
		goto fail;
	sink->rows[sink->n++] = row;
	return true;
fail:
	sink->failed = true;
	return false;
}

enum status
handle_list(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_list *req = (const pb_list *)in;
	pb_list_reply *rep = (pb_list_reply *)out;
	struct row_sink mem = {.rq = rq, .unredacted = req->unredacted};
	struct row_sink pers = {.rq = rq, .unredacted = req->unredacted, .persistent = true};
	const char *type = NULL;
	bool want_mem = false;
	bool want_pers = false;
	store_status sst;
	size_t i = 0;
	size_t j = 0;

	if (handler_require_role(rq, req->unredacted ? ROLE_ADMIN : ROLE_READER,
	        req->unredacted ? "an unredacted listing" : "listing secrets") != ST_OK)
		return rq->info->outcome.status;
	if (handler_storages_allowed(rq, req->storage, &want_mem, &want_pers) != ST_OK)
		return rq->info->outcome.status;
	if (req->type[0] != '\0') {
		const struct type_def *td = NULL;

		if (handler_validate_type(rq, req->type, &td) != ST_OK)
			return rq->info->outcome.status;
		type = td->type;
	}
	if (want_mem) {
		sst = store_list(rq->svc->temporary, type, collect_row, &mem);
		if (sst != STORE_OK)
			return handler_store_failure(rq, sst, handler_storage_name(rq, false));
	}
	if (want_pers) {
		sst = store_list(rq->svc->persistent, type, collect_row, &pers);
		if (sst != STORE_OK)
			return handler_store_failure(rq, sst, handler_storage_name(rq, true));
	}
	if (mem.failed || pers.failed)
		return handler_no_memory(rq);
	/* Merge the two name-sorted runs; on equal names memory sorts before sqlcipher. */
	rep->rows = arena_alloc(rq->arena, (mem.n + pers.n + 1) * sizeof(*rep->rows));
	if (rep->rows == NULL)
		return handler_no_memory(rq);
	while (i < mem.n || j < pers.n) {
		if (j == pers.n ||
		    (i < mem.n && strcmp(mem.rows[i]->name, pers.rows[j]->name) <= 0))
			rep->rows[rep->n_rows++] = mem.rows[i++];
		else
			rep->rows[rep->n_rows++] = pers.rows[j++];
	}
	return handler_ok(rq);
}

/* A wire Secret built from a store secret (values copied into the arena). */
static pb_secret *
secret_message(const struct request *rq, const struct store_secret *s, bool persistent)
{
	struct arena *a = rq->arena;
	pb_secret *m = arena_alloc(a, sizeof(*m));

	if (m == NULL)
		return NULL;
	secretd__v1__secret__init(m);
	m->name = arena_strdup(a, s->name);
	m->type = arena_strdup(a, s->type);
	m->provider = (char *)"config";
	m->storage = persistent ? PB_STORAGE_SQLCIPHER : PB_STORAGE_MEMORY;
	m->storage_name = (char *)handler_storage_name(rq, persistent);
	m->node = handler_node_of(rq, persistent);
	m->n_scope = s->n_scope;
	m->scope = scope_dup(a, s);
	m->n_fields = s->n_fields;
	m->fields = arena_alloc(a, (s->n_fields + 1) * sizeof(*m->fields));
	if (m->name == NULL || m->type == NULL || m->scope == NULL || m->fields == NULL)
		return NULL;
	for (size_t i = 0; i < s->n_fields; i++) {
		pb_field *f = arena_alloc(a, sizeof(*f));

		if (f == NULL)
			return NULL;
		secretd__v1__field__init(f);
		f->key = arena_strdup(a, s->fields[i].key);
		f->value.data = (uint8_t *)arena_strndup(
		    a, (const char *)s->fields[i].value, s->fields[i].value_len);
		f->value.len = s->fields[i].value_len;
		if (f->key == NULL || f->value.data == NULL)
			return NULL;
		m->fields[i] = f;
	}
	return m;
}

/* Where store_read hands a secret: built straight into the arena, with no copy between. */
struct secret_sink {
	struct request *rq;
	bool persistent;
	bool found;
	pb_secret *msg; /* NULL with found: out of memory */
};

static bool
build_secret(const struct store_secret *s, void *arg)
{
	struct secret_sink *sink = arg;

	sink->found = true;
	sink->msg = secret_message(sink->rq, s, sink->persistent);
	return true;
}

enum status
handle_get(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_get *req = (const pb_get *)in;
	pb_get_reply *rep = (pb_get_reply *)out;
	struct secret_sink mem = {.rq = rq};
	struct secret_sink pers = {.rq = rq, .persistent = true};
	struct secret_sink *hit = NULL;
	bool want_mem = false;
	bool want_pers = false;
	char *name = NULL;

	if (handler_require_role(rq, ROLE_READER, "GET SECRET") != ST_OK)
		return rq->info->outcome.status;
	if (handler_name_normalise(rq, req->name, &name) != ST_OK)
		return rq->info->outcome.status;
	rq->info->name = name;
	if (handler_storages_allowed(rq, req->storage, &want_mem, &want_pers) != ST_OK)
		return rq->info->outcome.status;
	/* Two lookups at most: read memory; then either check sqlcipher for ambiguity or
	 * read it. */
	if (want_mem)
		(void)store_read(rq->svc->temporary, name, build_secret, &mem);
	if (mem.found && want_pers && store_contains(rq->svc->persistent, name))
		return handler_ambiguous(rq, name);
	if (mem.found)
		hit = &mem;
	else if (want_pers &&
	         store_read(rq->svc->persistent, name, build_secret, &pers) == STORE_OK)
		hit = &pers;
	if (hit == NULL)
		return outcome_set(&rq->info->outcome, ST_NOT_FOUND, REASON_NOT_FOUND,
		    "Secret with name '%s' not found", name);
	if (hit->msg == NULL)
		return handler_no_memory(rq);
	rq->info->storage = handler_storage_name(rq, hit->persistent);
	rep->secret = hit->msg;
	return handler_ok(rq);
}

enum status
handle_resolve(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_resolve *req = (const pb_resolve *)in;
	pb_resolve_reply *rep = (pb_resolve_reply *)out;
	const struct type_def *td = NULL;
	struct store_secret *tmp = NULL;
	struct store_secret *pers = NULL;
	size_t tmp_len = 0;
	size_t pers_len = 0;
	size_t path_len = strlen(req->path);
	store_status sst;
	enum status st = ST_OK;

	if (handler_require_role(rq, ROLE_READER, "resolving a secret") != ST_OK)
		return rq->info->outcome.status;
	if (handler_validate_type(rq, req->type, &td) != ST_OK)
		return rq->info->outcome.status;
	sst = store_resolve(rq->svc->temporary, td->type, req->path, path_len, &tmp, &tmp_len);
	if (sst != STORE_OK && sst != STORE_NOT_FOUND) {
		st = handler_store_failure(rq, sst, handler_storage_name(rq, false));
		goto done;
	}
	sst = store_resolve(rq->svc->persistent, td->type, req->path, path_len, &pers, &pers_len);
	if (sst != STORE_OK && sst != STORE_NOT_FOUND) {
		st = handler_store_failure(rq, sst, handler_storage_name(rq, true));
		goto done;
	}
	/* Longest scope wins; on a tie temporary beats persistent. Within one storage the
	 * store already chose the smaller name. */
	if (tmp != NULL && (pers == NULL || tmp_len >= pers_len)) {
		rep->secret = secret_message(rq, tmp, false);
		rq->info->storage = handler_storage_name(rq, false);
	} else if (pers != NULL) {
		rep->secret = secret_message(rq, pers, true);
		rq->info->storage = handler_storage_name(rq, true);
	}
	if ((tmp != NULL || pers != NULL) && rep->secret == NULL) {
		st = handler_no_memory(rq);
		goto done;
	}
	rep->found = rep->secret != NULL;
	if (rep->found)
		rq->info->name = rep->secret->name;
	st = handler_ok(rq);
done:
	store_secret_free(tmp);
	store_secret_free(pers);
	return st;
}
