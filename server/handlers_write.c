/*
 * handlers_write.c: the handlers that change state: Create and Drop (SPEC section 2) and
 * Rekey. Each validates everything before it looks for a conflict, writes the audit
 * attempt, then makes its one store write (request_put / request_remove, which may park
 * the call until the write is durable).
 *
 * Thread safety: see handlers.h. No state of its own.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "handlers_internal.h"
#include "store.h"
#include "utf8.h"

/* Validate the fields of a create request into arena store_fields (keys lowercased). */
static enum status
validate_fields(struct request *rq, const pb_create *req, const struct type_def *td,
    struct store_field **fieldsp)
{
	const struct limits *lim = &rq->svc->limits;
	struct store_field *fields;
	char buf[64];

	if (req->n_fields > lim->max_fields) {
		(void)snprintf(buf, sizeof(buf), "%zu", lim->max_fields);
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_TOO_MANY_FIELDS,
		    "a secret has at most %s fields", buf);
	}
	fields = arena_alloc(rq->arena, (req->n_fields + 1) * sizeof(*fields));
	if (fields == NULL)
		return handler_no_memory(rq);
	for (size_t i = 0; i < req->n_fields; i++) {
		const pb_field *f = req->fields[i];
		char *key = handler_lower_dup(rq->arena, f->key, strlen(f->key));

		if (key == NULL)
			return handler_no_memory(rq);
		if (!type_declares(td, key))
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
			    REASON_UNKNOWN_FIELD, "Unknown field '%s' for secret type '%s'",
			    handler_quotable(f->key), td->type);
		for (size_t k = 0; k < i; k++)
			if (strcmp(fields[k].key, key) == 0)
				return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
				    REASON_DUPLICATE_FIELD, "Field '%s' is given more than once",
				    key);
		if (f->value.len > lim->max_value) {
			(void)snprintf(buf, sizeof(buf), "%zu", lim->max_value);
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
			    REASON_TOO_LARGE, "value of field '%s' is longer than %s bytes", key,
			    buf);
		}
		if (!utf8_valid(f->value.data, f->value.len))
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
			    REASON_BAD_VALUE,
			    "value of field '%s' is not valid UTF-8 text (or holds a NUL byte)",
			    key);
		fields[i].key = key;
		fields[i].value = f->value.data != NULL ? f->value.data : (const uint8_t *)"";
		fields[i].value_len = f->value.len;
	}
	for (size_t r = 0; r < MAX_TYPE_FIELDS && td->required[r] != NULL; r++) {
		bool present = false;

		for (size_t i = 0; i < req->n_fields; i++)
			if (strcmp(fields[i].key, td->required[r]) == 0 && fields[i].value_len > 0)
				present = true;
		if (!present)
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
			    REASON_MISSING_FIELD, "Missing required field: '%s'", td->required[r]);
	}
	*fieldsp = fields;
	return ST_OK;
}

static enum status
validate_scope(struct request *rq, const pb_create *req, const struct type_def *td,
    const char *const **scopep, size_t *np)
{
	const struct limits *lim = &rq->svc->limits;
	char buf[64];

	if (req->n_scope == 0) {
		const char **one = arena_alloc(rq->arena, sizeof(*one));

		if (one == NULL)
			return handler_no_memory(rq);
		one[0] = td->default_scope;
		*scopep = one;
		*np = 1;
		return ST_OK;
	}
	if (req->n_scope > lim->max_scope) {
		(void)snprintf(buf, sizeof(buf), "%zu", lim->max_scope);
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_TOO_MANY_SCOPES,
		    "a secret has at most %s scope entries", buf);
	}
	for (size_t i = 0; i < req->n_scope; i++) {
		size_t n = strlen(req->scope[i]);

		if (n > lim->max_value) {
			(void)snprintf(buf, sizeof(buf), "%zu", lim->max_value);
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
			    REASON_TOO_LARGE, "a scope entry is longer than %s bytes", buf);
		}
		if (!utf8_valid((const uint8_t *)req->scope[i], n))
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
			    REASON_BAD_SCOPE, "a scope entry is not valid UTF-8");
	}
	*scopep = (const char *const *)req->scope;
	*np = req->n_scope;
	return ST_OK;
}

/* What a Create needs once its store write is over (arena memory). */
struct create_fin {
	struct request rq;
	pb_create_reply *rep;
	const char *name;
	bool persistent;
};

/* The end of a Create, from the store's answer. */
static enum status
create_finish(void *arg, store_status sst, bool created)
{
	struct create_fin *f = arg;
	struct request *rq = &f->rq;

	if (sst == STORE_EXISTS)
		return outcome_set(&rq->info->outcome, ST_ALREADY_EXISTS, REASON_ALREADY_EXISTS,
		    f->persistent ? "Persistent secret with name '%s' already exists!"
		                  : "Temporary secret with name '%s' already exists!",
		    f->name);
	if (sst != STORE_OK)
		return handler_store_failure(rq, sst, handler_storage_name(rq, f->persistent));
	f->rep->name = (char *)f->name;
	f->rep->storage = f->persistent ? PB_STORAGE_SQLCIPHER : PB_STORAGE_MEMORY;
	f->rep->storage_name = (char *)handler_storage_name(rq, f->persistent);
	f->rep->node = handler_node_of(rq, f->persistent);
	f->rep->created = created;
	return handler_ok(rq);
}

enum status
handle_create(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_create *req = (const pb_create *)in;
	pb_create_reply *rep = (pb_create_reply *)out;
	const struct type_def *td = NULL;
	struct store_field *fields = NULL;
	const char *const *scope = NULL;
	size_t n_scope = 0;
	char *name = NULL;
	struct store_secret *s = NULL;
	const char *storage = handler_storage_name(rq, req->persistent);
	struct create_fin *fin = NULL;
	store_status sst;

	rq->info->mutating = true;
	rq->info->storage = storage;
	if (handler_require_role(rq, ROLE_ADMIN, "CREATE SECRET") != ST_OK)
		return rq->info->outcome.status;
	if (handler_validate_type(rq, req->type, &td) != ST_OK)
		return rq->info->outcome.status;
	if (req->provider[0] != '\0' && strcasecmp(req->provider, "config") != 0)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_UNKNOWN_PROVIDER,
		    "Unknown provider '%s' for secret type '%s' (only 'config' is supported)",
		    handler_quotable(req->provider), td->type);
	if (validate_fields(rq, req, td, &fields) != ST_OK)
		return rq->info->outcome.status;
	if (handler_name_normalise(
	        rq, req->name[0] != '\0' ? req->name : td->default_name, &name) != ST_OK)
		return rq->info->outcome.status;
	rq->info->name = name;
	if (validate_scope(rq, req, td, &scope, &n_scope) != ST_OK)
		return rq->info->outcome.status;

	if (handler_audit_attempt(rq) != ST_OK)
		return rq->info->outcome.status;
	sst = store_secret_new(name, td->type, scope, n_scope, fields, req->n_fields, &s);
	if (sst != STORE_OK)
		return handler_store_failure(rq, sst, storage);
	fin = arena_alloc(rq->arena, sizeof(*fin));
	if (fin == NULL) {
		store_secret_free(s);
		return handler_no_memory(rq);
	}
	fin->rq = *rq;
	fin->rep = rep;
	fin->name = name;
	fin->persistent = req->persistent;
	/* request_put takes s in every case, and runs create_finish now or once the write is
	 * durable (the request is then parked: see request_put). */
	return request_put(rq, handler_store_for(rq, req->persistent), s,
	    req->on_conflict == SECRETD__V1__ON_CONFLICT__ON_CONFLICT_REPLACE
	        ? STORE_CONFLICT_REPLACE
	    : req->on_conflict == SECRETD__V1__ON_CONFLICT__ON_CONFLICT_IGNORE
	        ? STORE_CONFLICT_IGNORE
	        : STORE_CONFLICT_ERROR,
	    create_finish, fin);
}

/*
 * Find which storage holds name among those allowed: ST_OK with *persistentp, or
 * NOT_FOUND (message unset), or FAILED_PRECONDITION/AMBIGUOUS when both do.
 */
static enum status
locate(struct request *rq, const char *name, int storage, bool *persistentp)
{
	bool mem = false;
	bool pers = false;
	bool in_mem;
	bool in_pers;

	if (handler_storages_allowed(rq, storage, &mem, &pers) != ST_OK)
		return rq->info->outcome.status;
	in_mem = mem && store_contains(rq->svc->temporary, name);
	in_pers = pers && store_contains(rq->svc->persistent, name);
	if (in_mem && in_pers)
		return handler_ambiguous(rq, name);
	if (!in_mem && !in_pers)
		return ST_NOT_FOUND;
	*persistentp = in_pers;
	return ST_OK;
}

/* The answer when name was in no allowed storage: success with if_exists, else
 * NOT_FOUND. */
static enum status
drop_missing(struct request *rq, pb_drop_reply *rep, char *name, bool if_exists)
{
	if (if_exists) {
		rep->name = name;
		rep->storage = PB_STORAGE_ANY;
		rep->dropped = false;
		return handler_ok(rq);
	}
	return outcome_set(&rq->info->outcome, ST_NOT_FOUND, REASON_NOT_FOUND,
	    "Failed to remove non-existent secret with name '%s'", name);
}

/* What a Drop needs once its store write is over (arena memory). */
struct drop_fin {
	struct request rq;
	pb_drop_reply *rep;
	char *name;
	bool persistent;
	bool if_exists;
};

/* The end of a Drop, from the store's answer. */
static enum status
drop_finish(void *arg, store_status sst, bool created)
{
	struct drop_fin *f = arg;

	(void)created;
	if (sst == STORE_OK) {
		f->rep->name = f->name;
		f->rep->storage = f->persistent ? PB_STORAGE_SQLCIPHER : PB_STORAGE_MEMORY;
		f->rep->storage_name = (char *)handler_storage_name(&f->rq, f->persistent);
		f->rep->node = handler_node_of(&f->rq, f->persistent);
		f->rep->dropped = true;
		return handler_ok(&f->rq);
	}
	if (sst != STORE_NOT_FOUND)
		return handler_store_failure(&f->rq, sst, handler_storage_name(&f->rq, f->persistent));
	/* Dropped by a concurrent call between locate and remove: not found. */
	return drop_missing(&f->rq, f->rep, f->name, f->if_exists);
}

enum status
handle_drop(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_drop *req = (const pb_drop *)in;
	pb_drop_reply *rep = (pb_drop_reply *)out;
	struct drop_fin *fin = NULL;
	char *name = NULL;
	bool persistent = false;
	enum status st;

	rq->info->mutating = true;
	if (handler_require_role(rq, ROLE_ADMIN, "DROP SECRET") != ST_OK)
		return rq->info->outcome.status;
	if (handler_name_normalise(rq, req->name, &name) != ST_OK)
		return rq->info->outcome.status;
	rq->info->name = name;
	st = locate(rq, name, req->storage, &persistent);
	if (st == ST_NOT_FOUND && rq->info->request_id != 0 &&
	    req->storage != PB_STORAGE_MEMORY && store_tags_removes(rq->svc->persistent)) {
		/* Absent here, but maybe by this very request: resent through this node after
		 * its first attempt committed through another. The shared store knows (it
		 * answers NOT_FOUND otherwise, and drop_finish turns that into drop_missing). */
		st = ST_OK;
		persistent = true;
	}
	if (st == ST_NOT_FOUND)
		return drop_missing(rq, rep, name, req->if_exists);
	if (st != ST_OK)
		return st;
	rq->info->storage = handler_storage_name(rq, persistent);
	if (handler_audit_attempt(rq) != ST_OK)
		return rq->info->outcome.status;
	fin = arena_alloc(rq->arena, sizeof(*fin));
	if (fin == NULL)
		return handler_no_memory(rq);
	fin->rq = *rq;
	fin->rep = rep;
	fin->name = name;
	fin->persistent = persistent;
	fin->if_exists = req->if_exists;
	return request_remove(rq, handler_store_for(rq, persistent), name, drop_finish, fin);
}

enum status
handle_rekey(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	Secretd__V1__RekeyReply *rep = (Secretd__V1__RekeyReply *)out;
	const char *key_file = NULL;

	(void)in;
	rq->info->mutating = true;
	rq->info->storage = handler_storage_name(rq, true);
	if (handler_require_role(rq, ROLE_ADMIN, "rotating the database key") != ST_OK)
		return rq->info->outcome.status;
	if (rq->svc->rekey == NULL)
		return outcome_set(&rq->info->outcome, ST_UNIMPLEMENTED, REASON_NO_REKEY,
		    "this server cannot rotate its key");
	if (handler_audit_attempt(rq) != ST_OK)
		return rq->info->outcome.status;
	if (rq->svc->rekey(rq->svc->rekey_arg, &key_file, &rq->info->outcome) != ST_OK)
		return rq->info->outcome.status;
	rep->key_file = arena_strdup(rq->arena, key_file);
	return rep->key_file == NULL ? handler_no_memory(rq) : handler_ok(rq);
}
