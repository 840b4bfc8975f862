/*
 * handlers.c: the rules of SPEC sections 1 and 2 (secret model and operations).
 *
 * Every handler checks the caller's role, validates in the spec's order (type, provider,
 * fields, required fields, name, scope) before any conflict check, then makes one store
 * call per storage. Messages name what is wrong but never echo a field value.
 *
 * Thread safety: see handlers.h. No state of its own.
 */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "pb.h"
#include "store.h"
#include "types.h"
#include "utf8.h"

static const char storage_memory[] = "memory";
static const char storage_sqlcipher[] = "sqlcipher";

/* A lowercased (ASCII letters only) arena copy of s[0..n). */
static char *
lower_dup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_strndup(a, s, n);

	if (p == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (char)(p[i] - 'A' + 'a');
	return p;
}

/* Text safe to quote in a message: s itself when it is short printable UTF-8. */
static const char *
quotable(const char *s)
{
	size_t n = strlen(s);

	if (n > 64 || !utf8_valid((const uint8_t *)s, n))
		return "(unprintable)";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "(unprintable)";
	return s;
}

static enum status
no_memory(struct request *rq)
{
	return outcome_no_memory(&rq->info->outcome);
}

static enum status
ok(struct request *rq)
{
	/* Set directly: this runs on every successful call and needs no formatting. */
	rq->info->outcome.status = ST_OK;
	rq->info->outcome.reason = "";
	memcpy(rq->info->outcome.message, "OK", 3);
	return ST_OK;
}

/* The caller must hold at least role need. */
static enum status
require_role(struct request *rq, enum role need, const char *what)
{
	if (rq->caller->role == ROLE_NONE)
		return outcome_set(&rq->info->outcome, ST_UNAUTHENTICATED, "NO_CREDENTIALS",
		    "%s needs credentials: send a token", what);
	if (rq->caller->role < need)
		return outcome_set(&rq->info->outcome, ST_PERMISSION_DENIED, "ROLE",
		    "%s needs the %s role; this caller is %s", what, role_str(need),
		    role_str(rq->caller->role));
	return ST_OK;
}

/* Record the attempt in the audit trail before changing state; a trail that cannot be
 * written refuses the call (fail closed). */
static enum status
audit_attempt(struct request *rq)
{
	const struct service *svc = rq->svc;

	if (svc->audit_attempt == NULL || svc->audit_attempt(svc->audit_arg, rq->caller,
	                                      rq->info->method, rq->info->name, rq->info->storage))
		return ST_OK;
	return outcome_set(&rq->info->outcome, ST_UNAVAILABLE, "AUDIT",
	    "the audit trail cannot be written; nothing was changed");
}

/* Translate a store status for an operation on storage (named in the message). */
static enum status
store_failure(struct request *rq, store_status sst, const char *storage)
{
	struct outcome *oc = &rq->info->outcome;

	switch (sst) {
	case STORE_FULL:
		return outcome_set(oc, ST_RESOURCE_EXHAUSTED, "STORE_FULL",
		    "storage %s holds its maximum number of secrets", storage);
	case STORE_NO_SPACE:
		return outcome_set(oc, ST_RESOURCE_EXHAUSTED, "DISK_FULL",
		    "storage %s: the disk is full; nothing was changed", storage);
	case STORE_NO_MEMORY:
		return no_memory(rq);
	case STORE_READ_ONLY:
		return outcome_set(oc, ST_UNAVAILABLE, "READ_ONLY",
		    "storage %s cannot be written (read-only database); nothing was changed",
		    storage);
	case STORE_IO:
		return outcome_set(oc, ST_UNAVAILABLE, "IO",
		    "storage %s: I/O error; nothing was changed", storage);
	case STORE_CORRUPT:
		return outcome_set(oc, ST_DATA_LOSS, "CORRUPT", "storage %s is corrupt", storage);
	case STORE_BAD_KEY:
		return outcome_set(oc, ST_FAILED_PRECONDITION, "BAD_KEY",
		    "storage %s: the key does not open the database", storage);
	case STORE_UNAVAILABLE:
		return outcome_set(oc, ST_UNAVAILABLE, "NO_QUORUM",
		    "storage %s: etcd cannot commit (no quorum, or no member reachable); nothing "
		    "was changed",
		    storage);
	default:
		return outcome_set(
		    oc, ST_INTERNAL, "STORE", "storage %s: %s", storage, store_status_str(sst));
	}
}

/*
 * Normalise a secret name into an arena copy: ASCII letters lowercased, at most max_name
 * bytes, valid UTF-8, no control characters, not empty.
 */
static enum status
name_normalise(struct request *rq, const char *name, char **outp)
{
	size_t n = strlen(name);
	char buf[32];

	if (n == 0)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "BAD_NAME",
		    "a secret name is required");
	if (n > rq->svc->limits.max_name) {
		(void)snprintf(buf, sizeof(buf), "%zu", rq->svc->limits.max_name);
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "TOO_LARGE",
		    "secret name is longer than %s bytes", buf);
	}
	if (!utf8_valid((const uint8_t *)name, n))
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "BAD_NAME",
		    "secret name is not valid UTF-8");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "BAD_NAME",
			    "secret name contains a control character");
	*outp = lower_dup(rq->arena, name, n);
	return *outp == NULL ? no_memory(rq) : ST_OK;
}

/* The store and storage name for a wire storage value (memory for anything but
 * sqlcipher). */
static struct store *
store_for(struct request *rq, bool persistent)
{
	return persistent ? rq->svc->persistent : rq->svc->temporary;
}

static const char *
storage_name(bool persistent)
{
	return persistent ? storage_sqlcipher : storage_memory;
}

static enum status
validate_type(struct request *rq, const char *type, const struct type_def **tdp)
{
	char *lower;

	if (type == NULL || type[0] == '\0')
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "MISSING_TYPE",
		    "a secret needs a TYPE (openai, ollama or azure_llm)");
	lower = lower_dup(rq->arena, type, strlen(type));
	if (lower == NULL)
		return no_memory(rq);
	*tdp = type_find(lower);
	if (*tdp == NULL)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "UNKNOWN_TYPE",
		    "Secret type '%s' not found (known: %s)", quotable(type),
		    type_names(rq->arena));
	return ST_OK;
}

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
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "TOO_MANY_FIELDS",
		    "a secret has at most %s fields", buf);
	}
	fields = arena_alloc(rq->arena, (req->n_fields + 1) * sizeof(*fields));
	if (fields == NULL)
		return no_memory(rq);
	for (size_t i = 0; i < req->n_fields; i++) {
		const pb_field *f = req->fields[i];
		char *key = lower_dup(rq->arena, f->key, strlen(f->key));

		if (key == NULL)
			return no_memory(rq);
		if (!type_declares(td, key))
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "UNKNOWN_FIELD",
			    "Unknown field '%s' for secret type '%s'", quotable(f->key), td->type);
		for (size_t k = 0; k < i; k++)
			if (strcmp(fields[k].key, key) == 0)
				return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT,
				    "DUPLICATE_FIELD", "Field '%s' is given more than once", key);
		if (f->value.len > lim->max_value) {
			(void)snprintf(buf, sizeof(buf), "%zu", lim->max_value);
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "TOO_LARGE",
			    "value of field '%s' is longer than %s bytes", key, buf);
		}
		if (!utf8_valid(f->value.data, f->value.len))
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "BAD_VALUE",
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
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "MISSING_FIELD",
			    "Missing required field: '%s'", td->required[r]);
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
			return no_memory(rq);
		one[0] = td->default_scope;
		*scopep = one;
		*np = 1;
		return ST_OK;
	}
	if (req->n_scope > lim->max_scope) {
		(void)snprintf(buf, sizeof(buf), "%zu", lim->max_scope);
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "TOO_MANY_SCOPES",
		    "a secret has at most %s scope entries", buf);
	}
	for (size_t i = 0; i < req->n_scope; i++) {
		size_t n = strlen(req->scope[i]);

		if (n > lim->max_value) {
			(void)snprintf(buf, sizeof(buf), "%zu", lim->max_value);
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "TOO_LARGE",
			    "a scope entry is longer than %s bytes", buf);
		}
		if (!utf8_valid((const uint8_t *)req->scope[i], n))
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "BAD_SCOPE",
			    "a scope entry is not valid UTF-8");
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
		return outcome_set(&rq->info->outcome, ST_ALREADY_EXISTS, "ALREADY_EXISTS",
		    f->persistent ? "Persistent secret with name '%s' already exists!"
		                  : "Temporary secret with name '%s' already exists!",
		    f->name);
	if (sst != STORE_OK)
		return store_failure(rq, sst, storage_name(f->persistent));
	f->rep->name = (char *)f->name;
	f->rep->storage = f->persistent ? PB_STORAGE_SQLCIPHER : PB_STORAGE_MEMORY;
	f->rep->created = created;
	return ok(rq);
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
	const char *storage = storage_name(req->persistent);
	struct create_fin *fin = NULL;
	store_status sst;

	rq->info->mutating = true;
	rq->info->storage = storage;
	if (require_role(rq, ROLE_ADMIN, "CREATE SECRET") != ST_OK)
		return rq->info->outcome.status;
	if (validate_type(rq, req->type, &td) != ST_OK)
		return rq->info->outcome.status;
	if (req->provider[0] != '\0' && strcasecmp(req->provider, "config") != 0)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "UNKNOWN_PROVIDER",
		    "Unknown provider '%s' for secret type '%s' (only 'config' is supported)",
		    quotable(req->provider), td->type);
	if (validate_fields(rq, req, td, &fields) != ST_OK)
		return rq->info->outcome.status;
	if (name_normalise(rq, req->name[0] != '\0' ? req->name : td->default_name, &name) != ST_OK)
		return rq->info->outcome.status;
	rq->info->name = name;
	if (validate_scope(rq, req, td, &scope, &n_scope) != ST_OK)
		return rq->info->outcome.status;

	if (audit_attempt(rq) != ST_OK)
		return rq->info->outcome.status;
	sst = store_secret_new(name, td->type, scope, n_scope, fields, req->n_fields, &s);
	if (sst != STORE_OK)
		return store_failure(rq, sst, storage);
	fin = arena_alloc(rq->arena, sizeof(*fin));
	if (fin == NULL) {
		store_secret_free(s);
		return no_memory(rq);
	}
	fin->rq = *rq;
	fin->rep = rep;
	fin->name = name;
	fin->persistent = req->persistent;
	/* request_put takes s in every case, and runs create_finish now or once the write is
	 * durable (the request is then parked: see request_put). */
	return request_put(rq, store_for(rq, req->persistent), s,
	    req->on_conflict == SECRETD__V1__ON_CONFLICT__ON_CONFLICT_REPLACE
	        ? STORE_CONFLICT_REPLACE
	    : req->on_conflict == SECRETD__V1__ON_CONFLICT__ON_CONFLICT_IGNORE
	        ? STORE_CONFLICT_IGNORE
	        : STORE_CONFLICT_ERROR,
	    create_finish, fin);
}

/* Which storages a request's storage value allows, or an error for an unknown value. */
static enum status
storages_allowed(struct request *rq, int storage, bool *memp, bool *persp)
{
	switch (storage) {
	case PB_STORAGE_ANY:
		*memp = *persp = true;
		return ST_OK;
	case PB_STORAGE_MEMORY:
		*memp = true;
		*persp = false;
		return ST_OK;
	case PB_STORAGE_SQLCIPHER:
		*memp = false;
		*persp = true;
		return ST_OK;
	default:
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, "INVALID_STORAGE",
		    "unknown storage (use memory or sqlcipher)");
	}
}

/* The answer when name is in both storages and the request did not say which. */
static enum status
ambiguous(struct request *rq, const char *name)
{
	return outcome_set(&rq->info->outcome, ST_FAILED_PRECONDITION, "AMBIGUOUS",
	    "Ambiguous secret name '%s': it exists in both memory and sqlcipher; "
	    "name the storage (TEMPORARY or PERSISTENT)",
	    name);
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

	if (storages_allowed(rq, storage, &mem, &pers) != ST_OK)
		return rq->info->outcome.status;
	in_mem = mem && store_contains(rq->svc->temporary, name);
	in_pers = pers && store_contains(rq->svc->persistent, name);
	if (in_mem && in_pers)
		return ambiguous(rq, name);
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
		return ok(rq);
	}
	return outcome_set(&rq->info->outcome, ST_NOT_FOUND, "NOT_FOUND",
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
		f->rep->dropped = true;
		return ok(&f->rq);
	}
	if (sst != STORE_NOT_FOUND)
		return store_failure(&f->rq, sst, storage_name(f->persistent));
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
	if (require_role(rq, ROLE_ADMIN, "DROP SECRET") != ST_OK)
		return rq->info->outcome.status;
	if (name_normalise(rq, req->name, &name) != ST_OK)
		return rq->info->outcome.status;
	rq->info->name = name;
	st = locate(rq, name, req->storage, &persistent);
	if (st == ST_NOT_FOUND)
		return drop_missing(rq, rep, name, req->if_exists);
	if (st != ST_OK)
		return st;
	rq->info->storage = storage_name(persistent);
	if (audit_attempt(rq) != ST_OK)
		return rq->info->outcome.status;
	fin = arena_alloc(rq->arena, sizeof(*fin));
	if (fin == NULL)
		return no_memory(rq);
	fin->rq = *rq;
	fin->rep = rep;
	fin->name = name;
	fin->persistent = persistent;
	fin->if_exists = req->if_exists;
	return request_remove(rq, store_for(rq, persistent), name, drop_finish, fin);
}

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
	row->storage = (char *)storage_name(sink->persistent);
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

	if (require_role(rq, req->unredacted ? ROLE_ADMIN : ROLE_READER,
	        req->unredacted ? "an unredacted listing" : "listing secrets") != ST_OK)
		return rq->info->outcome.status;
	if (storages_allowed(rq, req->storage, &want_mem, &want_pers) != ST_OK)
		return rq->info->outcome.status;
	if (req->type[0] != '\0') {
		const struct type_def *td = NULL;

		if (validate_type(rq, req->type, &td) != ST_OK)
			return rq->info->outcome.status;
		type = td->type;
	}
	if (want_mem) {
		sst = store_list(rq->svc->temporary, type, collect_row, &mem);
		if (sst != STORE_OK)
			return store_failure(rq, sst, storage_memory);
	}
	if (want_pers) {
		sst = store_list(rq->svc->persistent, type, collect_row, &pers);
		if (sst != STORE_OK)
			return store_failure(rq, sst, storage_sqlcipher);
	}
	if (mem.failed || pers.failed)
		return no_memory(rq);
	/* Merge the two name-sorted runs; on equal names memory sorts before sqlcipher. */
	rep->rows = arena_alloc(rq->arena, (mem.n + pers.n + 1) * sizeof(*rep->rows));
	if (rep->rows == NULL)
		return no_memory(rq);
	while (i < mem.n || j < pers.n) {
		if (j == pers.n ||
		    (i < mem.n && strcmp(mem.rows[i]->name, pers.rows[j]->name) <= 0))
			rep->rows[rep->n_rows++] = mem.rows[i++];
		else
			rep->rows[rep->n_rows++] = pers.rows[j++];
	}
	return ok(rq);
}

/* A wire Secret built from a store secret (values copied into the arena). */
static pb_secret *
secret_message(struct arena *a, const struct store_secret *s, bool persistent)
{
	pb_secret *m = arena_alloc(a, sizeof(*m));

	if (m == NULL)
		return NULL;
	secretd__v1__secret__init(m);
	m->name = arena_strdup(a, s->name);
	m->type = arena_strdup(a, s->type);
	m->provider = (char *)"config";
	m->storage = persistent ? PB_STORAGE_SQLCIPHER : PB_STORAGE_MEMORY;
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
	struct arena *arena;
	bool persistent;
	bool found;
	pb_secret *msg; /* NULL with found: out of memory */
};

static bool
build_secret(const struct store_secret *s, void *arg)
{
	struct secret_sink *sink = arg;

	sink->found = true;
	sink->msg = secret_message(sink->arena, s, sink->persistent);
	return true;
}

enum status
handle_get(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	const pb_get *req = (const pb_get *)in;
	pb_get_reply *rep = (pb_get_reply *)out;
	struct secret_sink mem = {.arena = rq->arena};
	struct secret_sink pers = {.arena = rq->arena, .persistent = true};
	struct secret_sink *hit = NULL;
	bool want_mem = false;
	bool want_pers = false;
	char *name = NULL;

	if (require_role(rq, ROLE_READER, "GET SECRET") != ST_OK)
		return rq->info->outcome.status;
	if (name_normalise(rq, req->name, &name) != ST_OK)
		return rq->info->outcome.status;
	rq->info->name = name;
	if (storages_allowed(rq, req->storage, &want_mem, &want_pers) != ST_OK)
		return rq->info->outcome.status;
	/* Two lookups at most: read memory; then either check sqlcipher for ambiguity or
	 * read it. */
	if (want_mem)
		(void)store_read(rq->svc->temporary, name, build_secret, &mem);
	if (mem.found && want_pers && store_contains(rq->svc->persistent, name))
		return ambiguous(rq, name);
	if (mem.found)
		hit = &mem;
	else if (want_pers &&
	         store_read(rq->svc->persistent, name, build_secret, &pers) == STORE_OK)
		hit = &pers;
	if (hit == NULL)
		return outcome_set(&rq->info->outcome, ST_NOT_FOUND, "NOT_FOUND",
		    "Secret with name '%s' not found", name);
	if (hit->msg == NULL)
		return no_memory(rq);
	rq->info->storage = storage_name(hit->persistent);
	rep->secret = hit->msg;
	return ok(rq);
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

	if (require_role(rq, ROLE_READER, "resolving a secret") != ST_OK)
		return rq->info->outcome.status;
	if (validate_type(rq, req->type, &td) != ST_OK)
		return rq->info->outcome.status;
	sst = store_resolve(rq->svc->temporary, td->type, req->path, path_len, &tmp, &tmp_len);
	if (sst != STORE_OK && sst != STORE_NOT_FOUND) {
		st = store_failure(rq, sst, storage_memory);
		goto done;
	}
	sst = store_resolve(rq->svc->persistent, td->type, req->path, path_len, &pers, &pers_len);
	if (sst != STORE_OK && sst != STORE_NOT_FOUND) {
		st = store_failure(rq, sst, storage_sqlcipher);
		goto done;
	}
	/* Longest scope wins; on a tie temporary beats persistent. Within one storage the
	 * store already chose the smaller name. */
	if (tmp != NULL && (pers == NULL || tmp_len >= pers_len)) {
		rep->secret = secret_message(rq->arena, tmp, false);
		rq->info->storage = storage_memory;
	} else if (pers != NULL) {
		rep->secret = secret_message(rq->arena, pers, true);
		rq->info->storage = storage_sqlcipher;
	}
	if ((tmp != NULL || pers != NULL) && rep->secret == NULL) {
		st = no_memory(rq);
		goto done;
	}
	rep->found = rep->secret != NULL;
	if (rep->found)
		rq->info->name = rep->secret->name;
	st = ok(rq);
done:
	store_secret_free(tmp);
	store_secret_free(pers);
	return st;
}

enum status
handle_rekey(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	Secretd__V1__RekeyReply *rep = (Secretd__V1__RekeyReply *)out;
	const char *key_file = NULL;

	(void)in;
	rq->info->mutating = true;
	rq->info->storage = storage_sqlcipher;
	if (require_role(rq, ROLE_ADMIN, "rotating the database key") != ST_OK)
		return rq->info->outcome.status;
	if (rq->svc->rekey == NULL)
		return outcome_set(&rq->info->outcome, ST_UNIMPLEMENTED, "NO_REKEY",
		    "this server cannot rotate its key");
	if (audit_attempt(rq) != ST_OK)
		return rq->info->outcome.status;
	if (rq->svc->rekey(rq->svc->rekey_arg, &key_file, &rq->info->outcome) != ST_OK)
		return rq->info->outcome.status;
	rep->key_file = arena_strdup(rq->arena, key_file);
	return rep->key_file == NULL ? no_memory(rq) : ok(rq);
}
