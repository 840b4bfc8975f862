/*
 * test_core.c: secretd end to end through libsecretd, against real secretd processes on
 * ipc:// sockets in a temporary directory (SPEC sections 1, 2, 5 and 6).
 *
 * Covers: the three types with their default names, named secrets, every validation
 * error, every conflict mode, one name in both storages and the AMBIGUOUS drop, List
 * compared field by field (secret_string included), Get, Resolve's tie-breaks, restart,
 * a wrong key refused with the database byte-identical, no value in the database file or
 * the log, and many threads and processes at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

/* Distinctive values: the leak checks search every byte written for them. */
#define V_OPENAI "sk-LEAKCHECK-openai-7f3a91"
#define V_OLLAMA "10.9.8.7:11434-LEAKCHECK"
#define V_AZURE "az-LEAKCHECK-key-55e2"
#define V_PERS "sk-LEAKCHECK-persistent-c0ffee"

static const char *const leak_values[] = {V_OPENAI, V_OLLAMA, V_AZURE, V_PERS};

static struct server_proc srv;

static secretd_status
create(secretd_client *c, const char *name, const char *type, bool persistent,
    secretd_conflict mode, const secretd_field *fields, size_t n_fields, const char *const *scope,
    size_t n_scope, secretd_create_result *res, secretd_error *err)
{
	secretd_create_args a = {
	    .name = name,
	    .type = type,
	    .fields = fields,
	    .n_fields = n_fields,
	    .scope = scope,
	    .n_scope = n_scope,
	    .persistent = persistent,
	    .on_conflict = mode,
	};

	return secretd_create(c, &a, 5000, res, err);
}

#define F(k, v) ((secretd_field){.key = (k), .value = (v), .value_len = strlen(v)})

static void
test_defaults(secretd_client *c)
{
	secretd_create_result r;
	secretd_error e;
	secretd_field openai[] = {F("API_KEY", V_OPENAI)};
	secretd_field ollama[] = {F("api_url", V_OLLAMA)};
	secretd_field azure[] = {
	    F("api_key", V_AZURE), F("resource_name", "res1"), F("api_version", "2024-06-01")};

	CHECK_STATUS(create(c, NULL, "OPENAI", false, 0, openai, 1, NULL, 0, &r, &e), SECRETD_OK);
	CHECK_STR(r.name, "__default_openai");
	CHECK(r.storage == SECRETD_STORAGE_MEMORY && r.created);
	CHECK_STATUS(create(c, NULL, "ollama", true, 0, ollama, 1, NULL, 0, &r, &e), SECRETD_OK);
	CHECK_STR(r.name, "__default_ollama");
	CHECK(r.storage == SECRETD_STORAGE_SQLCIPHER);
	CHECK_STATUS(create(c, NULL, "Azure_LLM", false, 0, azure, 3, NULL, 0, &r, &e), SECRETD_OK);
	CHECK_STR(r.name, "__default_azure");
	/* A named secret: ASCII letters lowercased, non-ASCII kept. */
	CHECK_STATUS(
	    create(c, "MyKey-Ä", "openai", false, 0, openai, 1, NULL, 0, &r, &e), SECRETD_OK);
	CHECK_STR(r.name, "mykey-Ä");
}

struct bad_case {
	const char *what;
	const char *name;
	const char *type;
	secretd_field fields[20];
	size_t n_fields;
	const char *provider;
	secretd_status want;
	const char *message; /* substring */
};

/* A marker in every bad value of test_validation: no error message may contain it. */
#define LEAK "LEAKCHECK"

static void
test_validation(secretd_client *c)
{
	static char long_name[300];
	static char big_value[16 * 1024 + 2];
	static const char bad_utf8[] = {
	    'L', 'E', 'A', 'K', 'C', 'H', 'E', 'C', 'K', (char)0xC3, 'b', 0};
	const struct bad_case cases[] = {
	    {"no type", NULL, "", {F("api_key", LEAK "x")}, 1, NULL, SECRETD_INVALID_ARGUMENT,
	        "TYPE"},
	    {"unknown type", NULL, "anthropic", {F("api_key", LEAK "x")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "Secret type 'anthropic' not found"},
	    {"unknown field", NULL, "openai", {F("api_key", LEAK "x"), F("model", LEAK "m")}, 2,
	        NULL, SECRETD_INVALID_ARGUMENT, "Unknown field 'model'"},
	    {"duplicate field", NULL, "openai", {F("api_key", LEAK "x"), F("API_KEY", LEAK "y")}, 2,
	        NULL, SECRETD_INVALID_ARGUMENT, "more than once"},
	    {"missing required", NULL, "openai", {F("base_url", LEAK "http://h")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "Missing required field: 'api_key'"},
	    {"empty required", NULL, "ollama", {F("api_url", "")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "Missing required field: 'api_url'"},
	    {"azure order 1", NULL, "azure_llm", {F("api_version", LEAK "v")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "Missing required field: 'api_key'"},
	    {"azure order 2", NULL, "azure_llm",
	        {F("api_key", LEAK "k"), F("api_version", LEAK "v")}, 2, NULL,
	        SECRETD_INVALID_ARGUMENT, "Missing required field: 'resource_name'"},
	    {"azure order 3", NULL, "azure_llm",
	        {F("api_key", LEAK "k"), F("resource_name", LEAK "r")}, 2, NULL,
	        SECRETD_INVALID_ARGUMENT, "Missing required field: 'api_version'"},
	    {"provider", NULL, "openai", {F("api_key", LEAK "x")}, 1, "env",
	        SECRETD_INVALID_ARGUMENT, "Unknown provider 'env'"},
	    {"long name", long_name, "openai", {F("api_key", LEAK "x")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "longer than 255 bytes"},
	    {"control char", "bad\tname", "openai", {F("api_key", LEAK "x")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "control character"},
	    {"big value", NULL, "openai", {F("api_key", big_value)}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "longer than 16384 bytes"},
	    {"bad utf8", NULL, "openai", {F("api_key", bad_utf8)}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "not valid UTF-8"},
	    /* Validation comes before the conflict check: the name exists, the field is bad. */
	    {"validate first", "__default_openai", "openai", {F("nope", LEAK "x")}, 1, NULL,
	        SECRETD_INVALID_ARGUMENT, "Unknown field 'nope'"},
	};
	secretd_field many[17];

	memset(long_name, 'n', 256);
	memset(big_value, 'v', 16 * 1024 + 1);
	memcpy(big_value, LEAK, strlen(LEAK));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *bc = &cases[i];
		secretd_create_args a = {.name = bc->name,
		    .type = bc->type,
		    .fields = bc->fields,
		    .n_fields = bc->n_fields,
		    .provider = bc->provider};
		secretd_error e;

		memset(&e, 0, sizeof(e));
		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, &e), bc->want);
		if (strstr(e.message, bc->message) == NULL)
			fprintf(stderr, "case '%s': message '%s' lacks '%s'\n", bc->what, e.message,
			    bc->message);
		CHECK(strstr(e.message, bc->message) != NULL);
		CHECK(strstr(e.message, LEAK) == NULL);
	}
	for (size_t i = 0; i < 17; i++)
		many[i] = F("api_key", LEAK "x");
	{
		secretd_create_args a = {.type = "openai", .fields = many, .n_fields = 17};
		secretd_error e;

		CHECK_STATUS(secretd_create(c, &a, 5000, NULL, &e), SECRETD_INVALID_ARGUMENT);
		CHECK(strstr(e.message, "at most 16 fields") != NULL);
		CHECK(strstr(e.message, LEAK) == NULL);
	}
}

/* A name of SECRETD_NAME_MAX bytes, the server's default --max-name, comes back whole in
 * every result that carries a name: create, drop, and the same through statements. */
static void
test_longest_name(secretd_client *c)
{
	secretd_field f[] = {F("api_key", "v")};
	char name[SECRETD_NAME_MAX + 1];
	char stmt[SECRETD_NAME_MAX + 128];
	secretd_create_result cr;
	secretd_drop_result dr;
	secretd_result *res = NULL;
	secretd_error e;

	memset(name, 'l', SECRETD_NAME_MAX);
	name[SECRETD_NAME_MAX] = '\0';
	CHECK_STATUS(create(c, name, "openai", false, 0, f, 1, NULL, 0, &cr, &e), SECRETD_OK);
	CHECK(strcmp(cr.name, name) == 0);
	CHECK_STATUS(
	    secretd_drop(c, name, SECRETD_STORAGE_MEMORY, false, 5000, &dr, &e), SECRETD_OK);
	CHECK(strcmp(dr.name, name) == 0 && dr.dropped);
	(void)snprintf(stmt, sizeof(stmt), "CREATE SECRET %s (TYPE openai, API_KEY 'v')", name);
	CHECK_STATUS(secretd_execute(c, stmt, 5000, &res, &e), SECRETD_OK);
	CHECK(res != NULL && res->kind == SECRETD_RESULT_CREATED &&
	      strcmp(res->created.name, name) == 0);
	secretd_result_free(res);
	res = NULL;
	(void)snprintf(stmt, sizeof(stmt), "DROP SECRET %s", name);
	CHECK_STATUS(secretd_execute(c, stmt, 5000, &res, &e), SECRETD_OK);
	CHECK(res != NULL && res->kind == SECRETD_RESULT_DROPPED &&
	      strcmp(res->dropped.name, name) == 0);
	secretd_result_free(res);
}

static void
test_conflicts(secretd_client *c)
{
	secretd_field f1[] = {F("api_key", "first")};
	secretd_field f2[] = {F("api_url", "http://second")};
	secretd_create_result r;
	secretd_secret *s = NULL;
	secretd_error e;

	CHECK_STATUS(
	    create(c, "conf", "openai", false, SECRETD_CONFLICT_ERROR, f1, 1, NULL, 0, &r, &e),
	    SECRETD_OK);
	CHECK_STATUS(
	    create(c, "conf", "openai", false, SECRETD_CONFLICT_ERROR, f1, 1, NULL, 0, &r, &e),
	    SECRETD_ALREADY_EXISTS);
	CHECK_STR(e.message, "Temporary secret with name 'conf' already exists!");
	/* The other storage is never looked at. */
	CHECK_STATUS(
	    create(c, "conf", "openai", true, SECRETD_CONFLICT_ERROR, f1, 1, NULL, 0, &r, &e),
	    SECRETD_OK);
	CHECK_STATUS(
	    create(c, "CONF", "openai", true, SECRETD_CONFLICT_ERROR, f1, 1, NULL, 0, &r, &e),
	    SECRETD_ALREADY_EXISTS);
	CHECK_STR(e.message, "Persistent secret with name 'conf' already exists!");
	/* ignore: nothing changes. */
	CHECK_STATUS(
	    create(c, "conf", "ollama", false, SECRETD_CONFLICT_IGNORE, f2, 1, NULL, 0, &r, &e),
	    SECRETD_OK);
	CHECK(!r.created);
	CHECK_STATUS(secretd_get(c, "conf", SECRETD_STORAGE_MEMORY, 5000, &s, &e), SECRETD_OK);
	CHECK(s != NULL && strcmp(s->type, "openai") == 0);
	secretd_secret_free(s);
	/* replace: whole, and the type may change. */
	CHECK_STATUS(
	    create(c, "conf", "ollama", false, SECRETD_CONFLICT_REPLACE, f2, 1, NULL, 0, &r, &e),
	    SECRETD_OK);
	CHECK(r.created);
	s = NULL;
	CHECK_STATUS(secretd_get(c, "conf", SECRETD_STORAGE_MEMORY, 5000, &s, &e), SECRETD_OK);
	CHECK(s != NULL && strcmp(s->type, "ollama") == 0 && s->n_fields == 1);
	CHECK(s != NULL && secretd_secret_field(s, "api_key") == NULL);
	secretd_secret_free(s);
}

static void
test_both_storages(secretd_client *c)
{
	secretd_field f[] = {F("api_key", "k")};
	secretd_drop_result d;
	secretd_secret *s = NULL;
	secretd_error e;

	CHECK_STATUS(create(c, "twin", "openai", false, 0, f, 1, NULL, 0, NULL, &e), SECRETD_OK);
	CHECK_STATUS(create(c, "twin", "openai", true, 0, f, 1, NULL, 0, NULL, &e), SECRETD_OK);
	CHECK_STATUS(secretd_drop(c, "twin", SECRETD_STORAGE_ANY, false, 5000, &d, &e),
	    SECRETD_FAILED_PRECONDITION);
	CHECK_STR(e.reason, "AMBIGUOUS");
	CHECK_STATUS(secretd_drop(c, "twin", SECRETD_STORAGE_ANY, true, 5000, &d, &e),
	    SECRETD_FAILED_PRECONDITION);
	CHECK_STR(e.reason, "AMBIGUOUS");
	CHECK_STATUS(
	    secretd_get(c, "twin", SECRETD_STORAGE_ANY, 5000, &s, &e), SECRETD_FAILED_PRECONDITION);
	CHECK_STR(e.reason, "AMBIGUOUS");
	CHECK_STATUS(secretd_get(c, "TWIN", SECRETD_STORAGE_SQLCIPHER, 5000, &s, &e), SECRETD_OK);
	CHECK(s != NULL && s->storage == SECRETD_STORAGE_SQLCIPHER);
	secretd_secret_free(s);
	CHECK_STATUS(
	    secretd_drop(c, "twin", SECRETD_STORAGE_MEMORY, false, 5000, &d, &e), SECRETD_OK);
	CHECK(d.dropped && d.storage == SECRETD_STORAGE_MEMORY);
	CHECK_STATUS(secretd_drop(c, "twin", SECRETD_STORAGE_ANY, false, 5000, &d, &e), SECRETD_OK);
	CHECK(d.dropped && d.storage == SECRETD_STORAGE_SQLCIPHER);
	CHECK_STATUS(
	    secretd_drop(c, "twin", SECRETD_STORAGE_ANY, false, 5000, &d, &e), SECRETD_NOT_FOUND);
	CHECK_STR(e.message, "Failed to remove non-existent secret with name 'twin'");
	CHECK_STATUS(secretd_drop(c, "twin", SECRETD_STORAGE_ANY, true, 5000, &d, &e), SECRETD_OK);
	CHECK(!d.dropped);
	CHECK_STATUS(secretd_get(c, "twin", SECRETD_STORAGE_ANY, 5000, &s, &e), SECRETD_NOT_FOUND);
}

struct want_row {
	const char *name;
	const char *type;
	bool persistent;
	const char *storage;
	const char *scope;
	const char *secret_string;
};

static void
check_rows(const secretd_rows *rows, const struct want_row *want, size_t n)
{
	CHECK_STATUS(rows->n_rows, n);
	for (size_t i = 0; i < n && i < rows->n_rows; i++) {
		const secretd_row *r = &rows->rows[i];

		CHECK_STR(r->name, want[i].name);
		CHECK_STR(r->type, want[i].type);
		CHECK_STR(r->provider, "config");
		CHECK(r->persistent == want[i].persistent);
		CHECK_STR(r->storage, want[i].storage);
		CHECK(r->n_scope == 1);
		if (r->n_scope == 1)
			CHECK_STR(r->scope[0], want[i].scope);
		CHECK_STR(r->secret_string, want[i].secret_string);
	}
}

static void
test_list(secretd_client *c)
{
	secretd_field base[] = {F("api_key", V_PERS), F("base_url", "http://llm.local/v1")};
	const struct want_row want[] = {
	    {"__default_azure", "azure_llm", false, "memory", "azure_llm://",
	        "name=__default_azure;type=azure_llm;provider=config;serializable=true;"
	        "scope=azure_llm://;api_key=redacted;api_version=2024-06-01;resource_name=res1"},
	    {"__default_ollama", "ollama", true, "sqlcipher", "ollama://",
	        "name=__default_ollama;type=ollama;provider=config;serializable=true;"
	        "scope=ollama://;api_url=redacted"},
	    {"__default_openai", "openai", false, "memory", "openai://",
	        "name=__default_openai;type=openai;provider=config;serializable=true;"
	        "scope=openai://;api_key=redacted"},
	    {"conf", "ollama", false, "memory", "ollama://",
	        "name=conf;type=ollama;provider=config;serializable=true;scope=ollama://;"
	        "api_url=redacted"},
	    {"conf", "openai", true, "sqlcipher", "openai://",
	        "name=conf;type=openai;provider=config;serializable=true;scope=openai://;"
	        "api_key=redacted"},
	    {"mykey-Ä", "openai", false, "memory", "openai://",
	        "name=mykey-Ä;type=openai;provider=config;serializable=true;scope=openai://;"
	        "api_key=redacted"},
	    {"withbase", "openai", true, "sqlcipher", "openai://",
	        "name=withbase;type=openai;provider=config;serializable=true;scope=openai://;"
	        "api_key=redacted;base_url=http://llm.local/v1"},
	};
	secretd_list_args unred = {.unredacted = true, .type = "ollama"};
	secretd_list_args pers = {.storage = SECRETD_STORAGE_SQLCIPHER};
	secretd_rows *rows = NULL;
	secretd_error e;

	CHECK_STATUS(
	    create(c, "withbase", "openai", true, 0, base, 2, NULL, 0, NULL, &e), SECRETD_OK);
	CHECK_STATUS(secretd_list(c, NULL, 5000, &rows, &e), SECRETD_OK);
	if (rows != NULL) {
		check_rows(rows, want, sizeof(want) / sizeof(want[0]));
		for (size_t i = 0; i < rows->n_rows; i++)
			CHECK(strstr(rows->rows[i].secret_string, "LEAKCHECK") == NULL);
	}
	secretd_rows_free(rows);
	rows = NULL;
	CHECK_STATUS(secretd_list(c, &pers, 5000, &rows, &e), SECRETD_OK);
	CHECK(rows != NULL && rows->n_rows == 3);
	secretd_rows_free(rows);
	rows = NULL;
	/* Unredacted (this process has the server's uid: admin) shows values. */
	CHECK_STATUS(secretd_list(c, &unred, 5000, &rows, &e), SECRETD_OK);
	CHECK(rows != NULL && rows->n_rows == 2);
	if (rows != NULL && rows->n_rows == 2) {
		CHECK_STR(rows->rows[0].name, "__default_ollama");
		CHECK_STR(rows->rows[0].secret_string,
		    "name=__default_ollama;type=ollama;provider=config;serializable=true;"
		    "scope=ollama://;api_url=" V_OLLAMA);
	}
	secretd_rows_free(rows);
}

static void
expect_resolve(secretd_client *c, const char *path, const char *type, const char *name,
    secretd_storage storage)
{
	secretd_secret *s = NULL;
	secretd_error e;

	CHECK_STATUS(secretd_resolve(c, path, type, 5000, &s, &e), SECRETD_OK);
	if (name == NULL) {
		CHECK(s == NULL);
	} else {
		CHECK(s != NULL);
		if (s != NULL) {
			CHECK_STR(s->name, name);
			CHECK(s->storage == storage);
			if (strcmp(s->name, name) != 0)
				fprintf(stderr, "resolve %s: got %s\n", path, s->name);
		}
	}
	secretd_secret_free(s);
}

static void
test_get_resolve(secretd_client *c)
{
	secretd_field fa[] = {F("api_key", "ka")};
	const char *gpt4[] = {"openai://gpt-4"};
	const char *multi[] = {"https://x", "openai://gpt-4o-mini"};
	const char *empty[] = {""};
	secretd_secret *s = NULL;
	secretd_error e;

	CHECK_STATUS(
	    secretd_get(c, "__default_openai", SECRETD_STORAGE_ANY, 5000, &s, &e), SECRETD_OK);
	if (s != NULL) {
		const secretd_field *f = secretd_secret_field(s, "api_key");

		CHECK_STR(s->type, "openai");
		CHECK_STR(s->provider, "config");
		CHECK(s->n_scope == 1 && strcmp(s->scope[0], "openai://") == 0);
		CHECK(f != NULL && f->value_len == strlen(V_OPENAI) &&
		      memcmp(f->value, V_OPENAI, f->value_len) == 0);
	}
	secretd_secret_free(s);
	s = NULL;
	CHECK_STATUS(secretd_get(c, "nope", SECRETD_STORAGE_ANY, 5000, &s, &e), SECRETD_NOT_FOUND);
	CHECK(s == NULL);

	CHECK_STATUS(
	    create(c, "zz_gpt4_t", "openai", false, 0, fa, 1, gpt4, 1, NULL, &e), SECRETD_OK);
	CHECK_STATUS(
	    create(c, "aa_gpt4_p", "openai", true, 0, fa, 1, gpt4, 1, NULL, &e), SECRETD_OK);
	CHECK_STATUS(
	    create(c, "mm_gpt4_t", "openai", false, 0, fa, 1, gpt4, 1, NULL, &e), SECRETD_OK);
	CHECK_STATUS(create(c, "multi", "openai", true, 0, fa, 1, multi, 2, NULL, &e), SECRETD_OK);
	/* Same length: temporary beats persistent, then the smaller name. */
	expect_resolve(c, "openai://gpt-4-turbo", "openai", "mm_gpt4_t", SECRETD_STORAGE_MEMORY);
	/* Longest prefix wins over storage. */
	expect_resolve(
	    c, "openai://gpt-4o-mini-2024", "openai", "multi", SECRETD_STORAGE_SQLCIPHER);
	expect_resolve(c, "https://x/y", "OpenAI", "multi", SECRETD_STORAGE_SQLCIPHER);
	/* Among several default scopes the smaller name wins (temporary first). */
	expect_resolve(c, "openai://davinci", "openai", "__default_openai", SECRETD_STORAGE_MEMORY);
	/* Case-sensitive prefix, type filter, no match. */
	expect_resolve(c, "OPENAI://gpt-4", "openai", NULL, 0);
	/* conf (temporary, ollama type after the replace) ties with __default_ollama. */
	expect_resolve(c, "ollama://llama3", "ollama", "conf", SECRETD_STORAGE_MEMORY);
	expect_resolve(c, "s3://bucket", "azure_llm", NULL, 0);
	/* SCOPE '' matches every path. */
	CHECK_STATUS(create(c, "catchall", "azure_llm", false, 0,
	                 (secretd_field[]){
	                     F("api_key", "k"), F("resource_name", "r"), F("api_version", "v")},
	                 3, empty, 1, NULL, &e),
	    SECRETD_OK);
	expect_resolve(c, "s3://bucket", "azure_llm", "catchall", SECRETD_STORAGE_MEMORY);
	expect_resolve(c, "", "azure_llm", "catchall", SECRETD_STORAGE_MEMORY);
	CHECK_STATUS(secretd_resolve(c, "x", "nosuchtype", 5000, &s, &e), SECRETD_INVALID_ARGUMENT);
}

static void
test_restart(secretd_client **cp)
{
	secretd_secret *s = NULL;
	secretd_error e;

	secretd_client_close(*cp);
	*cp = NULL;
	CHECK_STATUS(harness_stop(&srv), 0);
	CHECK(harness_start(&srv, NULL));
	CHECK_STATUS(secretd_client_open(srv.url, NULL, cp, &e), SECRETD_OK);
	CHECK_STATUS(secretd_get(*cp, "__default_openai", 0, 5000, &s, &e), SECRETD_NOT_FOUND);
	CHECK_STATUS(secretd_get(*cp, "withbase", 0, 5000, &s, &e), SECRETD_OK);
	if (s != NULL) {
		const secretd_field *f = secretd_secret_field(s, "api_key");

		CHECK(f != NULL && strcmp(f->value, V_PERS) == 0);
		CHECK(s->storage == SECRETD_STORAGE_SQLCIPHER);
	}
	secretd_secret_free(s);
	s = NULL;
	CHECK_STATUS(secretd_get(*cp, "__default_ollama", 0, 5000, &s, &e), SECRETD_OK);
	secretd_secret_free(s);
}

static void
test_wrong_key(secretd_client **cp)
{
	char key_path[400], db_path[400], saved[400], cmd[1400];
	char *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	int exit_status = -1;
	FILE *f;

	secretd_client_close(*cp);
	*cp = NULL;
	CHECK_STATUS(harness_stop(&srv), 0);
	(void)snprintf(key_path, sizeof(key_path), "%s/secretd.key", srv.data_dir);
	(void)snprintf(db_path, sizeof(db_path), "%s/secrets.db", srv.data_dir);
	(void)snprintf(saved, sizeof(saved), "%s/saved.key", srv.dir);
	(void)snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", key_path, saved);
	CHECK(system(cmd) == 0);
	f = fopen(key_path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", f);
		fclose(f);
	}
	before = file_read(db_path, &nb);
	CHECK(!harness_start(&srv, &exit_status));
	CHECK_STATUS(exit_status, 1);
	after = file_read(db_path, &na);
	CHECK(before != NULL && after != NULL && nb == na && nb > 0 &&
	      memcmp(before, after, nb) == 0);
	free(before);
	free(after);
	{
		char *log = file_read(srv.log_path, NULL);

		CHECK(log != NULL && strstr(log, "the key does not open this database") != NULL);
		free(log);
	}
	(void)snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", saved, key_path);
	CHECK(system(cmd) == 0);
	CHECK(harness_start(&srv, NULL));
	CHECK_STATUS(secretd_client_open(srv.url, NULL, cp, NULL), SECRETD_OK);
}

/* Each worker creates, reads, lists and drops its own secrets and checks every answer. */
struct load_arg {
	secretd_client *c;
	int id;
	int failures;
};

static void *
load_worker(void *p)
{
	struct load_arg *la = p;

	for (int i = 0; i < 60; i++) {
		char name[64], val[64];
		secretd_field f[1];
		secretd_create_args a = {
		    .name = name, .type = "openai", .fields = f, .n_fields = 1};
		secretd_secret *s = NULL;
		secretd_drop_result d;

		(void)snprintf(name, sizeof(name), "load-%d-%d-%d", (int)getpid(), la->id, i);
		(void)snprintf(val, sizeof(val), "v-%d-%d", la->id, i);
		f[0] = F("api_key", val);
		a.persistent = (i % 4) == 0;
		if (secretd_create(la->c, &a, 10000, NULL, NULL) != SECRETD_OK)
			la->failures++;
		if (secretd_get(la->c, name, 0, 10000, &s, NULL) != SECRETD_OK || s == NULL ||
		    strcmp(s->fields[0].value, val) != 0)
			la->failures++;
		secretd_secret_free(s);
		if (secretd_drop(la->c, name, 0, false, 10000, &d, NULL) != SECRETD_OK ||
		    !d.dropped)
			la->failures++;
	}
	return NULL;
}

static int
run_load(const char *url, int threads)
{
	pthread_t th[16];
	struct load_arg args[16];
	secretd_client *c = NULL;
	int failures = 0;

	if (secretd_client_open(url, NULL, &c, NULL) != SECRETD_OK)
		return 1;
	for (int i = 0; i < threads; i++) {
		args[i] = (struct load_arg){c, i, 0};
		if (pthread_create(&th[i], NULL, load_worker, &args[i]) != 0)
			failures++;
	}
	for (int i = 0; i < threads; i++) {
		(void)pthread_join(th[i], NULL);
		failures += args[i].failures;
	}
	secretd_client_close(c);
	return failures;
}

/* Several client processes: each re-executes this program with --load (nng's threads do
 * not survive fork, so the children start fresh). */
static void
test_concurrency(void)
{
	pid_t kids[3];
	int failures;

	for (int k = 0; k < 3; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			execl("/proc/self/exe", "test_core", "--load", srv.url, (char *)NULL);
			_exit(127);
		}
	}
	failures = run_load(srv.url, 8);
	CHECK_STATUS(failures, 0);
	for (int k = 0; k < 3; k++) {
		int st = -1;

		CHECK(kids[k] > 0 && waitpid(kids[k], &st, 0) == kids[k]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

static void
test_no_leaks(void)
{
	const char *files[] = {"secrets.db", "secrets.db-wal", "secrets.db-shm", "secretd.key"};

	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char path[400];

		(void)snprintf(path, sizeof(path), "%s/%s", srv.data_dir, files[f]);
		for (size_t v = 0; v < sizeof(leak_values) / sizeof(leak_values[0]); v++) {
			CHECK(!file_contains(path, leak_values[v], strlen(leak_values[v])));
			/* Also the distinctive part alone, in case of a partial write. */
			CHECK(!file_contains(path, "LEAKCHECK", 9));
		}
	}
	CHECK(!file_contains(srv.log_path, "LEAKCHECK", 9));
}

int
main(int argc, char **argv)
{
	secretd_client *c = NULL;
	secretd_error e;

	if (argc == 3 && strcmp(argv[1], "--load") == 0)
		return run_load(argv[2], 4) == 0 ? 0 : 1;

	if (!harness_init(&srv) || !harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, &e), SECRETD_OK);
	test_defaults(c);
	test_validation(c);
	test_longest_name(c);
	test_conflicts(c);
	test_both_storages(c);
	test_list(c);
	test_get_resolve(c);
	test_concurrency();
	test_restart(&c);
	test_wrong_key(&c);
	secretd_client_close(c);
	CHECK_STATUS(harness_stop(&srv), 0);
	test_no_leaks();
	harness_cleanup(&srv);
	return check_report();
}
