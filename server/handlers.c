/*
 * handlers.c: the rules of SPEC sections 1 and 2 (secret model and operations) that every
 * handler shares: roles, the audit attempt, store failures, names, types and storages.
 * The handlers themselves are in handlers_write.c (Create, Drop, Rekey) and
 * handlers_read.c (List, Get, Resolve).
 *
 * Every handler checks the caller's role, validates in the spec's order (type, provider,
 * fields, required fields, name, scope) before any conflict check, then makes one store
 * call per storage. Messages name what is wrong but never echo a field value.
 *
 * Thread safety: see handlers.h. No state of its own.
 */
#include "handlers_internal.h"

#include <stdio.h>
#include <string.h>

#include "store.h"
#include "utf8.h"

static const char storage_memory[] = "memory";

/* A lowercased (ASCII letters only) arena copy of s[0..n). */
char *
handler_lower_dup(struct arena *a, const char *s, size_t n)
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
const char *
handler_quotable(const char *s)
{
	size_t n = strlen(s);

	if (n > 64 || !utf8_valid((const uint8_t *)s, n))
		return "(unprintable)";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "(unprintable)";
	return s;
}

enum status
handler_no_memory(struct request *rq)
{
	return outcome_no_memory(&rq->info->outcome);
}

enum status
handler_ok(struct request *rq)
{
	/* Set directly: this runs on every successful call and needs no formatting. */
	rq->info->outcome.status = ST_OK;
	rq->info->outcome.reason = "";
	memcpy(rq->info->outcome.message, "OK", 3);
	return ST_OK;
}

/* The caller must hold at least role need. */
enum status
handler_require_role(struct request *rq, enum role need, const char *what)
{
	if (rq->caller->role == ROLE_NONE)
		return outcome_set(&rq->info->outcome, ST_UNAUTHENTICATED, REASON_NO_CREDENTIALS,
		    "%s needs credentials: send a token", what);
	if (rq->caller->role < need)
		return outcome_set(&rq->info->outcome, ST_PERMISSION_DENIED, REASON_ROLE,
		    "%s needs the %s role; this caller is %s", what, role_str(need),
		    role_str(rq->caller->role));
	return ST_OK;
}

/* Record the attempt in the audit trail before changing state; a trail that cannot be
 * written refuses the call (fail closed). */
enum status
handler_audit_attempt(struct request *rq)
{
	const struct service *svc = rq->svc;

	if (svc->audit_attempt == NULL || svc->audit_attempt(svc->audit_arg, rq->caller,
	                                      rq->info->method, rq->info->name, rq->info->storage))
		return ST_OK;
	return outcome_set(&rq->info->outcome, ST_UNAVAILABLE, REASON_AUDIT,
	    "the audit trail cannot be written; nothing was changed");
}

/* Translate a store status for an operation on storage (named in the message). */
enum status
handler_store_failure(struct request *rq, store_status sst, const char *storage)
{
	struct outcome *oc = &rq->info->outcome;

	switch (sst) {
	case STORE_FULL:
		return outcome_set(oc, ST_RESOURCE_EXHAUSTED, REASON_STORE_FULL,
		    "storage %s holds its maximum number of secrets", storage);
	case STORE_NO_SPACE:
		return outcome_set(oc, ST_RESOURCE_EXHAUSTED, REASON_DISK_FULL,
		    "storage %s: the disk is full; nothing was changed", storage);
	case STORE_NO_MEMORY:
		return handler_no_memory(rq);
	case STORE_READ_ONLY:
		return outcome_set(oc, ST_UNAVAILABLE, REASON_READ_ONLY,
		    "storage %s cannot be written (read-only database); nothing was changed",
		    storage);
	case STORE_IO:
		return outcome_set(oc, ST_UNAVAILABLE, REASON_IO,
		    "storage %s: I/O error; nothing was changed", storage);
	case STORE_CORRUPT:
		return outcome_set(
		    oc, ST_DATA_LOSS, REASON_CORRUPT, "storage %s is corrupt", storage);
	case STORE_BAD_KEY:
		return outcome_set(oc, ST_FAILED_PRECONDITION, REASON_BAD_KEY,
		    "storage %s: the key does not open the database", storage);
	case STORE_UNAVAILABLE:
		return outcome_set(oc, ST_UNAVAILABLE, REASON_NO_QUORUM,
		    "storage %s: etcd cannot commit (no quorum, or no member reachable); nothing "
		    "was changed",
		    storage);
	default:
		return outcome_set(oc, ST_INTERNAL, REASON_STORE, "storage %s: %s", storage,
		    store_status_str(sst));
	}
}

/*
 * Normalise a secret name into an arena copy: ASCII letters lowercased, at most max_name
 * bytes, valid UTF-8, no control characters, not empty.
 */
enum status
handler_name_normalise(struct request *rq, const char *name, char **outp)
{
	size_t n = strlen(name);
	char buf[32];

	if (n == 0)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_BAD_NAME,
		    "a secret name is required");
	if (n > rq->svc->limits.max_name) {
		(void)snprintf(buf, sizeof(buf), "%zu", rq->svc->limits.max_name);
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_TOO_LARGE,
		    "secret name is longer than %s bytes", buf);
	}
	if (!utf8_valid((const uint8_t *)name, n))
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_BAD_NAME,
		    "secret name is not valid UTF-8");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_BAD_NAME,
			    "secret name contains a control character");
	*outp = handler_lower_dup(rq->arena, name, n);
	return *outp == NULL ? handler_no_memory(rq) : ST_OK;
}

/* The store and storage name for a wire storage value (memory for anything but
 * sqlcipher). */
struct store *
handler_store_for(struct request *rq, bool persistent)
{
	return persistent ? rq->svc->persistent : rq->svc->temporary;
}

/* "memory", or the persistent backend's name: "sqlcipher", or "etcd" on a cluster node. */
const char *
handler_storage_name(const struct request *rq, bool persistent)
{
	return persistent ? store_name(rq->svc->persistent) : storage_memory;
}

/* The node a secret lives on, for replies: this node's name for a temporary secret in
 * cluster mode, else "" (a persistent secret is on every node; one machine has no node). */
char *
handler_node_of(const struct request *rq, bool persistent)
{
	return (char *)(!persistent && rq->svc->node_name != NULL ? rq->svc->node_name : "");
}

enum status
handler_validate_type(struct request *rq, const char *type, const struct type_def **tdp)
{
	char *lower;

	if (type == NULL || type[0] == '\0')
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_MISSING_TYPE,
		    "a secret needs a TYPE (openai, ollama or azure_llm)");
	lower = handler_lower_dup(rq->arena, type, strlen(type));
	if (lower == NULL)
		return handler_no_memory(rq);
	*tdp = type_find(lower);
	if (*tdp == NULL)
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_UNKNOWN_TYPE,
		    "Secret type '%s' not found (known: %s)", handler_quotable(type),
		    type_names(rq->arena));
	return ST_OK;
}

/* Which storages a request's storage value allows, or an error for an unknown value. */
enum status
handler_storages_allowed(struct request *rq, int storage, bool *memp, bool *persp)
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
		return outcome_set(&rq->info->outcome, ST_INVALID_ARGUMENT, REASON_INVALID_STORAGE,
		    "unknown storage (use memory or sqlcipher)");
	}
}

/* The answer when name is in both storages and the request did not say which. */
enum status
handler_ambiguous(struct request *rq, const char *name)
{
	return outcome_set(&rq->info->outcome, ST_FAILED_PRECONDITION, REASON_AMBIGUOUS,
	    "Ambiguous secret name '%s': it exists in both memory and %s; "
	    "name the storage (TEMPORARY or PERSISTENT)",
	    name, handler_storage_name(rq, true));
}
