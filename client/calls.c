/*
 * calls.c: libsecretd's public calls. Each builds its input message on the stack from
 * borrowed arguments, calls the protoc-c stub with the client's ProtobufCService, and in
 * its closure turns the unpacked output message into the public result.
 *
 * Not here: the transport (transport.c) or result layout (results.c). No call packs or
 * unpacks a message by hand.
 *
 * Thread safety: every function is safe to call from many threads on one client; all
 * per-call state lives on the caller's stack.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "client.h"
#include "path.h"

/* Copy the call's outcome to the caller's err (NULL-safe) and return its status. */
static secretd_status
call_finish(const struct client_call *call, secretd_error *err)
{
	if (err != NULL)
		*err = call->err;
	return call->err.status;
}

/* The cache's key for a storage: "" any, "m" memory, "s" sqlcipher. */
static const char *
cache_storage(secretd_storage storage)
{
	return storage == SECRETD_STORAGE_MEMORY      ? "m"
	       : storage == SECRETD_STORAGE_SQLCIPHER ? "s"
	                                              : "";
}

/* A call answered from the cache: err says OK like a call answered by the server. */
static secretd_status
cache_hit(secretd_error *err)
{
	if (err != NULL) {
		err->status = SECRETD_OK;
		err->reason[0] = '\0';
		memcpy(err->message, "OK", sizeof("OK"));
	}
	return SECRETD_OK;
}

/* After a read that went to the server: keep a result, or serve a stale one when the
 * server could not be reached (cache.h). Returns the call's status. */
static secretd_status
cache_after_read(secretd_client *client, enum cache_kind kind, const char *a, const char *b,
    const struct client_call *call, secretd_status st, secretd_secret **secretp, secretd_error *err)
{
	client_cache_reply(client->cache, call->epoch, call->rev, false);
	if (st == SECRETD_OK && *secretp != NULL)
		client_cache_insert(client->cache, kind, a, b, call->epoch, call->rev, *secretp);
	else if ((st == SECRETD_UNAVAILABLE || st == SECRETD_DEADLINE_EXCEEDED) &&
	         client_cache_lookup_stale(client->cache, kind, a, b, secretp))
		return cache_hit(err);
	return st;
}

/*
 * The closures run inside the stub, with the unpacked reply (NULL when the call failed:
 * then call->err already says why). They are declared with the generic ProtobufCClosure
 * signature, which is the type the transport calls them through.
 */

static void
create_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__SecretCreateReply *reply = (const void *)msg;
	secretd_create_result *result = call->target;

	if (reply == NULL)
		return;
	if (!client_name_fits(reply->name)) {
		(void)client_fail(&call->err, SECRETD_INTERNAL,
		    "bad reply to Create: a name longer than %d bytes", SECRETD_NAME_MAX);
		return;
	}
	if (result == NULL)
		return;
	client_copy_str(result->name, sizeof(result->name), reply->name);
	result->storage = client_storage_from_pb(reply->storage);
	client_copy_str(result->storage_name, sizeof(result->storage_name), reply->storage_name);
	client_copy_str(result->node, sizeof(result->node), reply->node);
	client_copy_str(result->storage_name, sizeof(result->storage_name), reply->storage_name);
	client_copy_str(result->node, sizeof(result->node), reply->node);
	result->created = reply->created;
}

static void
rekey_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__RekeyReply *reply = (const void *)msg;
	char *key_file = call->target;

	if (reply == NULL || key_file == NULL)
		return;
	client_copy_str(key_file, 4096, reply->key_file);
}

static void
drop_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__SecretDropReply *reply = (const void *)msg;
	secretd_drop_result *result = call->target;

	if (reply == NULL)
		return;
	if (!client_name_fits(reply->name)) {
		(void)client_fail(&call->err, SECRETD_INTERNAL,
		    "bad reply to Drop: a name longer than %d bytes", SECRETD_NAME_MAX);
		return;
	}
	if (result == NULL)
		return;
	client_copy_str(result->name, sizeof(result->name), reply->name);
	result->storage = client_storage_from_pb(reply->storage);
	result->dropped = reply->dropped;
}

static void
list_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__SecretListReply *reply = (const void *)msg;
	secretd_status st;

	if (reply == NULL)
		return;
	st = client_rows_build(reply->n_rows, reply->rows, call->target);
	if (st != SECRETD_OK)
		(void)client_fail(
		    &call->err, st, "cannot build the listing (%s)", secretd_status_str(st));
}

static void
get_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__SecretGetReply *reply = (const void *)msg;
	secretd_status st;

	if (reply == NULL)
		return;
	if (reply->secret == NULL) {
		(void)client_fail(&call->err, SECRETD_INTERNAL, "bad reply to Get: no secret");
		return;
	}
	st = client_secret_build(reply->secret, call->target);
	if (st != SECRETD_OK)
		(void)client_fail(
		    &call->err, st, "cannot build the secret (%s)", secretd_status_str(st));
}

static void
resolve_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__SecretResolveReply *reply = (const void *)msg;
	secretd_status st;

	if (reply == NULL || !reply->found)
		return; /* found == false: success with no secret */
	if (reply->secret == NULL) {
		(void)client_fail(
		    &call->err, SECRETD_INTERNAL, "bad reply to Resolve: found without a secret");
		return;
	}
	st = client_secret_build(reply->secret, call->target);
	if (st != SECRETD_OK)
		(void)client_fail(
		    &call->err, st, "cannot build the secret (%s)", secretd_status_str(st));
}

static void
execute_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__StatementReply *reply = (const void *)msg;
	secretd_status st;

	if (reply == NULL)
		return;
	st = client_result_build(reply, call->target);
	if (st == SECRETD_INTERNAL)
		(void)client_fail(&call->err, st, "bad reply to Execute: malformed result");
	else if (st != SECRETD_OK)
		(void)client_fail(&call->err, st, "cannot build the statement result (%s)",
		    secretd_status_str(st));
}

/* Check a secretd_storage from the caller. */
static bool
storage_valid(secretd_storage storage)
{
	return storage == SECRETD_STORAGE_ANY || storage == SECRETD_STORAGE_MEMORY ||
	       storage == SECRETD_STORAGE_SQLCIPHER;
}

secretd_status
secretd_create(secretd_client *client, const secretd_create_args *args, int timeout_ms,
    secretd_create_result *result, secretd_error *err)
{
	Secretd__V1__SecretCreate req = SECRETD__V1__SECRET_CREATE__INIT;
	Secretd__V1__Field *fields = NULL;
	Secretd__V1__Field **field_ptrs = NULL;
	struct client_call call;
	secretd_status st;
	size_t i;

	if (result != NULL)
		memset(result, 0, sizeof(*result));
	if (client == NULL || args == NULL || args->type == NULL)
		return client_fail(
		    err, SECRETD_INVALID_ARGUMENT, "secretd_create needs a client and a type");
	if ((args->n_fields > 0 && args->fields == NULL) ||
	    (args->n_scope > 0 && args->scope == NULL))
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "secretd_create: n_fields/n_scope without an array");
	if (args->on_conflict != SECRETD_CONFLICT_ERROR &&
	    args->on_conflict != SECRETD_CONFLICT_REPLACE &&
	    args->on_conflict != SECRETD_CONFLICT_IGNORE)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "secretd_create: unknown on_conflict %d", (int)args->on_conflict);
	for (i = 0; i < args->n_scope; i++) {
		if (args->scope[i] == NULL)
			return client_fail(
			    err, SECRETD_INVALID_ARGUMENT, "secretd_create: scope %zu is NULL", i);
	}
	if (args->n_fields > SIZE_MAX / sizeof(*field_ptrs))
		return client_fail(err, SECRETD_INVALID_ARGUMENT, "too many fields");

	/* The field messages point at the caller's borrowed keys and values. */
	if (args->n_fields > 0) {
		fields = calloc(args->n_fields, sizeof(*fields));
		field_ptrs = calloc(args->n_fields, sizeof(*field_ptrs));
		if (fields == NULL || field_ptrs == NULL) {
			st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
			goto done;
		}
	}
	for (i = 0; i < args->n_fields; i++) {
		const secretd_field *f = &args->fields[i];

		if (f->key == NULL || f->value == NULL) {
			st = client_fail(err, SECRETD_INVALID_ARGUMENT,
			    "secretd_create: field %zu has no key or no value", i);
			goto done;
		}
		secretd__v1__field__init(&fields[i]);
		fields[i].key = (char *)f->key;
		fields[i].value.data = (uint8_t *)f->value;
		fields[i].value.len = f->value_len == 0 ? strlen(f->value) : f->value_len;
		field_ptrs[i] = &fields[i];
	}
	req.name = (char *)(args->name != NULL ? args->name : "");
	req.type = (char *)args->type;
	req.n_fields = args->n_fields;
	req.fields = field_ptrs;
	req.n_scope = args->n_scope;
	req.scope = (char **)args->scope;
	req.persistent = args->persistent;
	req.on_conflict = (Secretd__V1__OnConflict)args->on_conflict;
	req.provider = (char *)(args->provider != NULL ? args->provider : "");

	if (!client_enter(client)) {
		st = client_fail(err, SECRETD_CANCELLED, "the client is closing");
		goto done;
	}
	client_call_init(&call, timeout_ms, result);
	secretd__v1__secrets__create(client_service(client), &req,
	    (Secretd__V1__SecretCreateReply_Closure)create_closure, &call);
	st = call_finish(&call, err);
	client_cache_reply(client->cache, call.epoch, call.rev, true);
	client_leave(client);
done:
	free(field_ptrs);
	free(fields); /* only pointers to the caller's values */
	return st;
}

secretd_status
secretd_drop(secretd_client *client, const char *name, secretd_storage storage, bool if_exists,
    int timeout_ms, secretd_drop_result *result, secretd_error *err)
{
	Secretd__V1__SecretDrop req = SECRETD__V1__SECRET_DROP__INIT;
	struct client_call call;

	if (result != NULL)
		memset(result, 0, sizeof(*result));
	if (client == NULL || name == NULL)
		return client_fail(
		    err, SECRETD_INVALID_ARGUMENT, "secretd_drop needs a client and a name");
	if (!storage_valid(storage))
		return client_fail(
		    err, SECRETD_INVALID_ARGUMENT, "unknown storage %d", (int)storage);
	req.name = (char *)name;
	req.storage = client_storage_to_pb(storage);
	req.if_exists = if_exists;
	if (!client_enter(client))
		return client_fail(err, SECRETD_CANCELLED, "the client is closing");
	client_call_init(&call, timeout_ms, result);
	secretd__v1__secrets__drop(client_service(client), &req,
	    (Secretd__V1__SecretDropReply_Closure)drop_closure, &call);
	client_cache_reply(client->cache, call.epoch, call.rev, true);
	client_leave(client);
	return call_finish(&call, err);
}

secretd_status
secretd_list(secretd_client *client, const secretd_list_args *args, int timeout_ms,
    secretd_rows **rowsp, secretd_error *err)
{
	Secretd__V1__SecretList req = SECRETD__V1__SECRET_LIST__INIT;
	struct client_call call;
	secretd_status st;

	if (rowsp != NULL)
		*rowsp = NULL;
	if (client == NULL || rowsp == NULL)
		return client_fail(
		    err, SECRETD_INVALID_ARGUMENT, "secretd_list needs a client and rowsp");
	if (args != NULL) {
		if (!storage_valid(args->storage))
			return client_fail(err, SECRETD_INVALID_ARGUMENT, "unknown storage %d",
			    (int)args->storage);
		req.unredacted = args->unredacted;
		req.type = (char *)(args->type != NULL ? args->type : "");
		req.storage = client_storage_to_pb(args->storage);
	}
	client_call_init(&call, timeout_ms, rowsp);
	secretd__v1__secrets__list(client_service(client), &req,
	    (Secretd__V1__SecretListReply_Closure)list_closure, &call);
	st = call_finish(&call, err);
	if (st != SECRETD_OK) {
		secretd_rows_free(*rowsp);
		*rowsp = NULL;
	}
	return st;
}

secretd_status
secretd_get(secretd_client *client, const char *name, secretd_storage storage, int timeout_ms,
    secretd_secret **secretp, secretd_error *err)
{
	Secretd__V1__SecretGet req = SECRETD__V1__SECRET_GET__INIT;
	struct client_call call;
	secretd_status st;

	if (secretp != NULL)
		*secretp = NULL;
	if (client == NULL || name == NULL || secretp == NULL)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "secretd_get needs a client, a name and secretp");
	if (!storage_valid(storage))
		return client_fail(
		    err, SECRETD_INVALID_ARGUMENT, "unknown storage %d", (int)storage);
	if (client->cache != NULL &&
	    client_cache_lookup(client->cache, CACHE_GET, name, cache_storage(storage), secretp))
		return cache_hit(err);
	req.name = (char *)name;
	req.storage = client_storage_to_pb(storage);
	if (!client_enter(client))
		return client_fail(err, SECRETD_CANCELLED, "the client is closing");
	client_call_init(&call, timeout_ms, secretp);
	secretd__v1__secrets__get(
	    client_service(client), &req, (Secretd__V1__SecretGetReply_Closure)get_closure, &call);
	st = call_finish(&call, err);
	if (st != SECRETD_OK) {
		secretd_secret_free(*secretp);
		*secretp = NULL;
	}
	if (client->cache != NULL)
		st = cache_after_read(
		    client, CACHE_GET, name, cache_storage(storage), &call, st, secretp, err);
	client_leave(client);
	return st;
}

secretd_status
secretd_resolve(secretd_client *client, const char *path, const char *type, int timeout_ms,
    secretd_secret **secretp, secretd_error *err)
{
	Secretd__V1__SecretResolve req = SECRETD__V1__SECRET_RESOLVE__INIT;
	struct client_call call;
	secretd_status st;

	if (secretp != NULL)
		*secretp = NULL;
	if (client == NULL || path == NULL || type == NULL || secretp == NULL)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "secretd_resolve needs a client, a path, a type and secretp");
	if (client->cache != NULL &&
	    client_cache_lookup(client->cache, CACHE_RESOLVE, type, path, secretp))
		return cache_hit(err);
	req.path = (char *)path;
	req.type = (char *)type;
	if (!client_enter(client))
		return client_fail(err, SECRETD_CANCELLED, "the client is closing");
	client_call_init(&call, timeout_ms, secretp);
	secretd__v1__secrets__resolve(client_service(client), &req,
	    (Secretd__V1__SecretResolveReply_Closure)resolve_closure, &call);
	st = call_finish(&call, err);
	if (st != SECRETD_OK) {
		secretd_secret_free(*secretp);
		*secretp = NULL;
	}
	if (client->cache != NULL)
		st = cache_after_read(client, CACHE_RESOLVE, type, path, &call, st, secretp, err);
	client_leave(client);
	return st;
}

secretd_status
secretd_execute(secretd_client *client, const char *statement, int timeout_ms,
    secretd_result **resultp, secretd_error *err)
{
	Secretd__V1__Statement req = SECRETD__V1__STATEMENT__INIT;
	struct client_call call;
	secretd_status st;

	if (resultp != NULL)
		*resultp = NULL;
	if (client == NULL || statement == NULL || resultp == NULL)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "secretd_execute needs a client, a statement and resultp");
	req.text = (char *)statement;
	if (!client_enter(client))
		return client_fail(err, SECRETD_CANCELLED, "the client is closing");
	client_call_init(&call, timeout_ms, resultp);
	secretd__v1__secrets__execute(client_service(client), &req,
	    (Secretd__V1__StatementReply_Closure)execute_closure, &call);
	st = call_finish(&call, err);
	/* A statement may have changed state: the next reads wait for its invalidation. */
	client_cache_reply(client->cache, call.epoch, call.rev, true);
	client_leave(client);
	if (st != SECRETD_OK) {
		secretd_result_free(*resultp);
		*resultp = NULL;
	}
	return st;
}

secretd_status
secretd_rekey(
    secretd_client *client, int timeout_ms, char *key_file, size_t key_file_len, secretd_error *err)
{
	Secretd__V1__RekeyRequest req = SECRETD__V1__REKEY_REQUEST__INIT;
	struct client_call call;
	char path[SD_PATH_BUF] = "";
	secretd_status st;

	if (client == NULL)
		return client_fail(err, SECRETD_INVALID_ARGUMENT, "secretd_rekey needs a client");
	client_call_init(&call, timeout_ms, path);
	secretd__v1__secrets__rekey(
	    client_service(client), &req, (Secretd__V1__RekeyReply_Closure)rekey_closure, &call);
	st = call_finish(&call, err);
	if (st == SECRETD_OK && key_file != NULL && key_file_len > 0)
		client_copy_str(key_file, key_file_len, path);
	return st;
}

static void
health_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__HealthReply *reply = (const void *)msg;
	secretd_health_info *info = call->target;

	if (reply == NULL || info == NULL)
		return;
	info->serving = reply->serving;
	info->writable = reply->writable;
	client_copy_str(
	    info->persistent_store, sizeof(info->persistent_store), reply->persistent_store);
	info->store_rev = reply->store_rev;
	info->latest_rev = reply->latest_rev;
	info->lag_ms = reply->lag_ms;
	info->persistent_count = reply->persistent_count;
	info->temporary_count = reply->temporary_count;
	client_copy_str(info->detail, sizeof(info->detail), reply->detail);
}

secretd_status
secretd_health(
    secretd_client *client, int timeout_ms, secretd_health_info *info, secretd_error *err)
{
	Secretd__V1__HealthRequest req = SECRETD__V1__HEALTH_REQUEST__INIT;
	struct client_call call;

	if (client == NULL || info == NULL)
		return client_fail(
		    err, SECRETD_INVALID_ARGUMENT, "secretd_health needs a client and an info");
	memset(info, 0, sizeof(*info));
	client_call_init(&call, timeout_ms, info);
	secretd__v1__secrets__health(
	    client_service(client), &req, (Secretd__V1__HealthReply_Closure)health_closure, &call);
	return call_finish(&call, err);
}
