/*
 * test_sql.c: table-driven tests of the statement parser (server/sql.c, SPEC §3).
 *
 * Three tables: statements that parse (with every field of the produced request checked),
 * statements that fail (status, reason, exact byte offset and a message fragment), and
 * robustness runs (every prefix of every good statement, seeded random mutations) that
 * must never crash, read past the input (run under ASan) or echo a quoted value.
 *
 * Values in the error table that must never appear in a message contain "S3CRET".
 * Single-threaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "sql.h"

enum {
	MEM = SECRETD__V1__STORAGE__STORAGE_MEMORY,
	SQLC = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER,
	REPLACE = SECRETD__V1__ON_CONFLICT__ON_CONFLICT_REPLACE,
	IGNORE = SECRETD__V1__ON_CONFLICT__ON_CONFLICT_IGNORE,
};

/* A statement that parses. Strings not given are expected empty; fields are "key=value"
 * joined with "|", scope entries joined with "|" (NULL: no scope at all; "": one empty
 * scope). */
struct ok_case {
	const char *in;
	enum sql_kind kind;
	const char *name;     /* create/drop/get */
	const char *type;     /* create/resolve */
	const char *provider; /* create */
	const char *path;     /* resolve */
	const char *fields;   /* create */
	const char *scope;    /* create */
	int persistent;       /* create */
	int conflict;         /* create.on_conflict */
	int storage;          /* drop/get */
	int flag;             /* drop.if_exists, list.unredacted */
};

/* A statement that fails. len 0: strlen(in). offset: the byte offset the message names. */
struct err_case {
	const char *in;
	size_t len;
	enum status status;
	const char *reason;
	long offset;
	const char *msg; /* a fragment the message must contain; NULL: not checked */
};

static const struct ok_case ok_cases[] = {
    /* The seed statements, verbatim. */
    {"CREATE SECRET (TYPE OPENAI, API_KEY 'your-api-key');", SQL_CREATE, .type = "OPENAI",
        .fields = "API_KEY=your-api-key"},
    {"CREATE PERSISTENT SECRET (TYPE OLLAMA, API_URL '127.0.0.1:11434');", SQL_CREATE,
        .type = "OLLAMA", .fields = "API_URL=127.0.0.1:11434", .persistent = 1},
    {"CREATE SECRET (TYPE AZURE_LLM, API_KEY 'k', RESOURCE_NAME 'r', API_VERSION 'v');", SQL_CREATE,
        .type = "AZURE_LLM", .fields = "API_KEY=k|RESOURCE_NAME=r|API_VERSION=v"},
    {"DROP TEMPORARY SECRET __default_openai;", SQL_DROP, .name = "__default_openai",
        .storage = MEM},
    {"DROP PERSISTENT SECRET __default_ollama;", SQL_DROP, .name = "__default_ollama",
        .storage = SQLC},
    {"FROM duckdb_secrets();", SQL_LIST, .flag = 0},

    /* CREATE: case, names, quoting. */
    {"create secret (type openai, api_key 'k')", SQL_CREATE, .type = "openai",
        .fields = "api_key=k"},
    {"CrEaTe SeCrEt (TyPe OpenAI, Api_Key 'k')", SQL_CREATE, .type = "OpenAI",
        .fields = "Api_Key=k"},
    {"CREATE SECRET s1 (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s1", .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET MySecret (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "MySecret",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET \"My Secret\" (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "My Secret",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET \"a\"\"b\" (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "a\"b",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET \"ключ\" (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "ключ",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET naïve (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "naïve",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET ключ(TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "ключ", .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET \"select\" (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "select",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET \"SECRET\" IN memory (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "SECRET",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET s$1 (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s$1", .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET _x9 (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "_x9", .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET memory (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "memory",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET duckdb_secrets (TYPE openai, API_KEY 'k')", SQL_CREATE,
        .name = "duckdb_secrets", .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET \" \" (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = " ", .type = "openai",
        .fields = "API_KEY=k"},

    /* CREATE: conflict handling and storage. */
    {"CREATE OR REPLACE SECRET s (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k", .conflict = REPLACE},
    {"create or replace secret (type openai, api_key 'k')", SQL_CREATE, .type = "openai",
        .fields = "api_key=k", .conflict = REPLACE},
    {"CREATE SECRET IF NOT EXISTS s (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k", .conflict = IGNORE},
    {"CREATE SECRET IF NOT EXISTS (TYPE openai, API_KEY 'k')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .conflict = IGNORE},
    {"CREATE OR REPLACE PERSISTENT SECRET s (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k", .persistent = 1, .conflict = REPLACE},
    {"CREATE OR REPLACE TEMP SECRET s (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k", .conflict = REPLACE},
    {"CREATE TEMP SECRET s (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s", .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE TEMPORARY SECRET s (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k"},
    {"create temporary secret if not exists s in memory (type openai, api_key 'k')", SQL_CREATE,
        .name = "s", .type = "openai", .fields = "api_key=k", .conflict = IGNORE},
    {"CREATE PERSISTENT SECRET IF NOT EXISTS s IN sqlcipher (TYPE openai, API_KEY 'k')", SQL_CREATE,
        .name = "s", .type = "openai", .fields = "API_KEY=k", .persistent = 1, .conflict = IGNORE},
    {"CREATE SECRET s IN sqlcipher (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k", .persistent = 1},
    {"CREATE SECRET s IN memory (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET IN SQLCIPHER (TYPE openai, API_KEY 'k')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .persistent = 1},
    {"CREATE TEMPORARY SECRET s IN MEMORY (TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE PERSISTENT SECRET s IN \"SqlCipher\" (TYPE openai, API_KEY 'k')", SQL_CREATE,
        .name = "s", .type = "openai", .fields = "API_KEY=k", .persistent = 1},
    {"CREATE PERSISTENT SECRET s IN sqlcipher(TYPE openai, API_KEY 'k')", SQL_CREATE, .name = "s",
        .type = "openai", .fields = "API_KEY=k", .persistent = 1},

    /* CREATE: values. */
    {"CREATE SECRET (TYPE openai, API_KEY 'it''s')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=it's"},
    {"CREATE SECRET (TYPE openai, API_KEY '''')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY='"},
    {"CREATE SECRET (TYPE openai, API_KEY 'a;b')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=a;b"},
    {"CREATE SECRET (TYPE openai, API_KEY 'x=y')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=x=y"},
    {"CREATE SECRET (TYPE openai, API_KEY 'a,b')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=a,b"},
    {"CREATE SECRET (TYPE openai, API_KEY '(x)')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=(x)"},
    {"CREATE SECRET (TYPE openai, API_KEY ')')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=)"},
    {"CREATE SECRET (TYPE openai, API_KEY '-- not a comment')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=-- not a comment"},
    {"CREATE SECRET (TYPE openai, API_KEY '\"dq\"')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=\"dq\""},
    {"CREATE SECRET (TYPE openai, API_KEY '')", SQL_CREATE, .type = "openai", .fields = "API_KEY="},
    {"CREATE SECRET (TYPE openai, API_KEY 'ключ 🔑 naïve')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=ключ 🔑 naïve"},
    {"CREATE SECRET (TYPE openai, API_KEY 'line1\nline2')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=line1\nline2"},
    {"CREATE SECRET (TYPE openai, API_KEY '  padded  ')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=  padded  "},
    {"CREATE SECRET (TYPE openai, API_KEY sk_Bare_Word)", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=sk_Bare_Word"},
    {"CREATE SECRET (TYPE openai, API_KEY naïve)", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=naïve"},
    {"CREATE SECRET (TYPE openai, API_KEY secret)", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=secret"},
    {"CREATE SECRET (TYPE ollama, PORT 11434)", SQL_CREATE, .type = "ollama",
        .fields = "PORT=11434"},
    {"CREATE SECRET (TYPE ollama, A -1.5, B +3, C .5, D 1., E 007)", SQL_CREATE, .type = "ollama",
        .fields = "A=-1.5|B=+3|C=.5|D=1.|E=007"},
    {"CREATE SECRET (TYPE 'openai', API_KEY 'k')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE 'Open''AI')", SQL_CREATE, .type = "Open'AI"},
    {"CREATE SECRET (TYPE 42)", SQL_CREATE, .type = "42"},
    /* Left to the handler: missing TYPE, unknown and duplicate fields. */
    {"CREATE SECRET (API_KEY 'k')", SQL_CREATE, .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE openai, API_KEY 'a', api_key 'b')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=a|api_key=b"},
    {"CREATE SECRET (TYPE openai, BOGUS 'x', SECRET 'y')", SQL_CREATE, .type = "openai",
        .fields = "BOGUS=x|SECRET=y"},
    {"CREATE SECRET (API_KEY 'k', TYPE openai)", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k"},

    /* CREATE: SCOPE and PROVIDER. */
    {"CREATE SECRET (TYPE openai, API_KEY 'k', SCOPE 'openai://')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .scope = "openai://"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k', SCOPE ('a', 'b'))", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .scope = "a|b"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k', scope ('a','','b'))", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .scope = "a||b"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k', SCOPE '')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .scope = ""},
    {"CREATE SECRET (TYPE openai, API_KEY 'k', SCOPE (''))", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .scope = ""},
    {"CREATE SECRET (SCOPE 'it''s', TYPE openai, API_KEY 'k')", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k", .scope = "it's"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k', PROVIDER config)", SQL_CREATE, .type = "openai",
        .provider = "config", .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k', provider 'CONFIG')", SQL_CREATE, .type = "openai",
        .provider = "CONFIG", .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE openai, PROVIDER credential_chain)", SQL_CREATE, .type = "openai",
        .provider = "credential_chain"},
    {"CREATE OR REPLACE PERSISTENT SECRET \"Prod Key\" IN sqlcipher (TYPE azure_llm, "
     "PROVIDER config, API_KEY 'k', RESOURCE_NAME 'r', API_VERSION '2024-02-01', "
     "SCOPE ('azure_llm://a', 'azure_llm://b'));",
        SQL_CREATE, .name = "Prod Key", .type = "azure_llm", .provider = "config",
        .fields = "API_KEY=k|RESOURCE_NAME=r|API_VERSION=2024-02-01",
        .scope = "azure_llm://a|azure_llm://b", .persistent = 1, .conflict = REPLACE},

    /* CREATE: white space, comments, trailing ';'. */
    {"  \n\tCREATE\nSECRET\n(\nTYPE\topenai\n,API_KEY'k'\n)\n ;  \n", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET(TYPE openai,API_KEY'k')", SQL_CREATE, .type = "openai", .fields = "API_KEY=k"},
    {"-- a leading comment\nCREATE SECRET (TYPE openai, API_KEY 'k') -- trailing", SQL_CREATE,
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE -- between\nSECRET -- tokens\n(TYPE openai, -- here too\nAPI_KEY 'k');", SQL_CREATE,
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k'); -- after the semicolon", SQL_CREATE,
        .type = "openai", .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k')--", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k"},
    {"CREATE SECRET (TYPE openai, API_KEY 'k')\r\n;\r\n", SQL_CREATE, .type = "openai",
        .fields = "API_KEY=k"},

    /* DROP. */
    {"DROP SECRET s", SQL_DROP, .name = "s"},
    {"DROP SECRET IF EXISTS s", SQL_DROP, .name = "s", .flag = 1},
    {"DROP TEMP SECRET s", SQL_DROP, .name = "s", .storage = MEM},
    {"DROP PERSISTENT SECRET s FROM sqlcipher", SQL_DROP, .name = "s", .storage = SQLC},
    {"DROP SECRET s FROM memory", SQL_DROP, .name = "s", .storage = MEM},
    /* As in DuckDB 1.2.2: with FROM, the named storage is the only candidate and PERSISTENT
     * is ignored (DROP PERSISTENT SECRET s1 FROM memory drops the temporary s1). */
    {"DROP PERSISTENT SECRET s FROM memory", SQL_DROP, .name = "s", .storage = MEM},
    {"drop persistent secret if exists s from MEMORY;", SQL_DROP, .name = "s", .storage = MEM,
        .flag = 1},
    {"DROP SECRET s FROM SQLCIPHER;", SQL_DROP, .name = "s", .storage = SQLC},
    {"drop temporary secret if exists \"X Y\";", SQL_DROP, .name = "X Y", .storage = MEM,
        .flag = 1},
    {"DROP PERSISTENT SECRET IF EXISTS p FROM sqlcipher", SQL_DROP, .name = "p", .storage = SQLC,
        .flag = 1},
    {"DROP SECRET \"drop\"", SQL_DROP, .name = "drop"},
    {"DROP SECRET \"ключ\"", SQL_DROP, .name = "ключ"},
    {"DROP SECRET naïve -- bye", SQL_DROP, .name = "naïve"},
    {"DROP SECRET MixedCase", SQL_DROP, .name = "MixedCase"},

    /* duckdb_secrets(). */
    {"SELECT * FROM duckdb_secrets();", SQL_LIST, .flag = 0},
    {"select * from DUCKDB_SECRETS()", SQL_LIST, .flag = 0},
    {"SELECT*FROM duckdb_secrets()", SQL_LIST, .flag = 0},
    {"FROM duckdb_secrets( )", SQL_LIST, .flag = 0},
    {"FROM duckdb_secrets(redact = false)", SQL_LIST, .flag = 1},
    {"FROM duckdb_secrets(redact := false)", SQL_LIST, .flag = 1},
    {"FROM duckdb_secrets(redact=true)", SQL_LIST, .flag = 0},
    {"FROM duckdb_secrets(redact:=true)", SQL_LIST, .flag = 0},
    {"FROM duckdb_secrets(REDACT:=FALSE)", SQL_LIST, .flag = 1},
    {"SELECT * FROM duckdb_secrets( Redact = False );", SQL_LIST, .flag = 1},
    {"  from duckdb_secrets()  ;  ", SQL_LIST, .flag = 0},

    /* which_secret(). */
    {"FROM which_secret('openai://gpt-4o', 'openai')", SQL_RESOLVE, .path = "openai://gpt-4o",
        .type = "openai"},
    {"SELECT * FROM which_secret('', 'ollama');", SQL_RESOLVE, .path = "", .type = "ollama"},
    {"from WHICH_SECRET('p''q', 'T')", SQL_RESOLVE, .path = "p'q", .type = "T"},
    {"FROM which_secret('a;b--c', 'azure_llm') -- x", SQL_RESOLVE, .path = "a;b--c",
        .type = "azure_llm"},

    /* GET SECRET. */
    {"GET SECRET s", SQL_GET, .name = "s"},
    {"GET SECRET \"S\" FROM memory", SQL_GET, .name = "S", .storage = MEM},
    {"get secret s from sqlcipher;", SQL_GET, .name = "s", .storage = SQLC},
    {"GET SECRET naïve", SQL_GET, .name = "naïve"},
    {"GET SECRET __default_openai ;", SQL_GET, .name = "__default_openai"},
};

static const struct err_case err_cases[] = {
    {"CREATE OR REPLACE SECRET IF NOT EXISTS s (TYPE openai, API_KEY 'S3CRET')", 0,
        ST_INVALID_ARGUMENT, "SYNTAX", 25, "OR REPLACE cannot be combined with IF NOT EXISTS"},
    {"create or replace secret if not exists (type openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 25,
        "syntax error at or near \"if\""},
    {"CREATE TEMPORARY SECRET s IN sqlcipher (TYPE openai, API_KEY 'S3CRET')", 0,
        ST_INVALID_ARGUMENT, "INVALID_STORAGE", 29,
        "TEMPORARY secret cannot be stored in sqlcipher"},
    {"CREATE TEMP SECRET IN SQLCipher (TYPE openai)", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 22,
        "at or near \"SQLCipher\""},
    {"CREATE PERSISTENT SECRET s IN memory (TYPE openai)", 0, ST_INVALID_ARGUMENT,
        "INVALID_STORAGE", 30, "PERSISTENT secret cannot be stored in memory"},
    {"DROP TEMPORARY SECRET s FROM memory", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 24,
        "DROP TEMPORARY SECRET takes no FROM"},
    {"DROP TEMP SECRET s FROM sqlcipher", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 19,
        "takes no FROM"},
    {"DROP TEMPORARY SECRET s FROM nowhere", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 24,
        "takes no FROM"},
    {"CREATE SECRET s IN disk (TYPE openai)", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 19,
        "unknown storage at or near \"disk\""},
    {"DROP SECRET s FROM disk", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 19,
        "expected memory or sqlcipher"},
    {"GET SECRET s FROM \"tape\"", 0, ST_INVALID_ARGUMENT, "INVALID_STORAGE", 18,
        "unknown storage at or near quoted identifier"},
    {"GET SECRET s FROM 'memory'", 0, ST_INVALID_ARGUMENT, "SYNTAX", 18,
        "at or near string literal"},
    {"CREATE SECRET s IN (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 19,
        "expected a storage"},
    {"CREATE SECRET s IN memory", 0, ST_INVALID_ARGUMENT, "SYNTAX", 25,
        "syntax error at end of input (offset 25)"},
    {"CREATE SECRET s ()", 0, ST_INVALID_ARGUMENT, "SYNTAX", 17, "option list must not be empty"},
    {"CREATE SECRET ( )", 0, ST_INVALID_ARGUMENT, "SYNTAX", 16, "must not be empty"},
    {"DROP SECRET", 0, ST_INVALID_ARGUMENT, "SYNTAX", 11,
        "syntax error at end of input (offset 11): expected a secret name"},
    {"DROP SECRET IF EXISTS;", 0, ST_INVALID_ARGUMENT, "SYNTAX", 21, "expected a secret name"},
    {"DROP SECRET FROM memory", 0, ST_INVALID_ARGUMENT, "SYNTAX", 12, "must be double-quoted"},
    {"DROP PERSISTENT SECRET", 0, ST_INVALID_ARGUMENT, "SYNTAX", 22, "end of input"},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3CRET_unterminated)", 0, ST_INVALID_ARGUMENT, "SYNTAX",
        36, "unterminated quoted string at offset 36"},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3CRET'')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 36,
        "unterminated quoted string"},
    {"CREATE SECRET \"abc (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14,
        "unterminated quoted identifier at offset 14"},
    {"DROP SECRET \"S3CRET\"\"", 0, ST_INVALID_ARGUMENT, "SYNTAX", 12,
        "unterminated quoted identifier"},
    {"CREATE SECRET secret (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14,
        "syntax error at or near \"secret\" (offset 14)"},
    {"CREATE SECRET TYPE openai", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14,
        "syntax error at or near \"TYPE\" (offset 14)"},
    {"CREATE SECRET in (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 17, NULL},
    {"DROP SECRET select", 0, ST_INVALID_ARGUMENT, "SYNTAX", 12,
        "a keyword used as a name must be double-quoted"},
    {"GET SECRET from", 0, ST_INVALID_ARGUMENT, "SYNTAX", 11, "double-quoted"},
    {"DROP SECRET Create", 0, ST_INVALID_ARGUMENT, "SYNTAX", 12, "\"Create\""},
    {"FROM duckdb_secrets(); FROM duckdb_secrets()", 0, ST_INVALID_ARGUMENT, "SYNTAX", 23,
        "one statement per request"},
    {"DROP SECRET s; DROP SECRET t", 0, ST_INVALID_ARGUMENT, "SYNTAX", 15,
        "one statement per request"},
    {"DROP SECRET s extra", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14,
        "syntax error at or near \"extra\" (offset 14)"},
    {"DROP SECRET s;;", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14, NULL},
    {"DROP SECRET s; x", 0, ST_INVALID_ARGUMENT, "SYNTAX", 15, NULL},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3CRET') garbage", 0, ST_INVALID_ARGUMENT, "SYNTAX", 46,
        "\"garbage\""},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3CRET';", 0, ST_INVALID_ARGUMENT, "SYNTAX", 44,
        "expected \",\" or \")\""},
    {"", 0, ST_INVALID_ARGUMENT, "SYNTAX", 0, "syntax error at end of input (offset 0)"},
    {"   \n\t ", 0, ST_INVALID_ARGUMENT, "SYNTAX", 6, "at end of input (offset 6)"},
    {"-- only a comment", 0, ST_INVALID_ARGUMENT, "SYNTAX", 17, "end of input"},
    {";", 0, ST_INVALID_ARGUMENT, "SYNTAX", 0, "syntax error at or near \";\" (offset 0)"},
    {"CREATE SECRET (TYPE openai, TYPE ollama)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 28,
        "option TYPE given twice"},
    {"CREATE SECRET (type openai, api_key 'S3CRET', Type ollama)", 0, ST_INVALID_ARGUMENT, "SYNTAX",
        46, "option TYPE given twice at or near \"Type\""},
    {"CREATE SECRET (TYPE openai, PROVIDER config, PROVIDER config)", 0, ST_INVALID_ARGUMENT,
        "SYNTAX", 45, "option PROVIDER given twice"},
    {"CREATE SECRET (TYPE openai, SCOPE 'a', SCOPE 'b')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 39,
        "option SCOPE given twice"},
    {"CREATE SECRET (TYPE openai, 'S3CRET' 'x')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 28,
        "at or near string literal (offset 28): expected an option name"},
    {"CREATE SECRET (TYPE openai, 12345 'x')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 28,
        "at or near number"},
    {"CREATE SECRET ('S3CRET')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 15, "expected an option name"},
    {"CREATE SECRET (TYPE openai API_KEY 'S3CRET')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 27,
        "expected \",\" or \")\" after an option value"},
    {"CREATE SECRET (TYPE openai, SCOPE ())", 0, ST_INVALID_ARGUMENT, "SYNTAX", 35,
        "SCOPE list must not be empty"},
    {"CREATE SECRET (TYPE openai, SCOPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 34,
        "scope in single quotes"},
    {"CREATE SECRET (TYPE openai, SCOPE ('a' 'b'))", 0, ST_INVALID_ARGUMENT, "SYNTAX", 39,
        "in the SCOPE list"},
    {"CREATE SECRET (TYPE openai, SCOPE ('a',))", 0, ST_INVALID_ARGUMENT, "SYNTAX", 39,
        "a scope in single quotes"},
    {"CREATE SECRET (TYPE openai, SCOPE)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 33, NULL},
    {"CREATE SECRET (TYPE openai,)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 27,
        "expected an option name"},
    {"CREATE SECRET (TYPE openai, API_KEY)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 35,
        "expected a value"},
    {"CREATE SECRET (TYPE)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 19, "expected a value"},
    {"CREATE SECRET (TYPE openai, API_KEY \"S3CRET\")", 0, ST_INVALID_ARGUMENT, "SYNTAX", 36,
        "double-quoted value at or near quoted identifier (offset 36)"},
    {"CREATE SECRET (TYPE \"openai\")", 0, ST_INVALID_ARGUMENT, "SYNTAX", 20, "single quotes"},
    {"CREATE SECRET (TYPE openai, PORT 12ab)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 33,
        "malformed number at offset 33"},
    {"CREATE SECRET (TYPE openai, V 1.2.3)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 30,
        "malformed number"},
    {"CREATE SECRET (TYPE openai, X @)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 30, "at or near \"@\""},
    {"CREATE SECRET (TYPE openai, X \x01)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 30,
        "at or near byte 0x01"},
    {"CREATE SECRET (TYPE openai, X - 1)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 30, "\"-\""},
    {"CREATE SECRET (TYPE openai, X 'a' -- comment eats the paren)", 0, ST_INVALID_ARGUMENT,
        "SYNTAX", 60, "end of input"},
    {"CREATE SECRET (TYPE openai, X /* c */ 'a')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 30, NULL},
    {"CREATE SECRET s", 0, ST_INVALID_ARGUMENT, "SYNTAX", 15,
        "expected IN or \"(\" after the secret name"},
    {"CREATE SECRET a b (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 16,
        "after the secret name"},
    {"CREATE SECRET s IN memory TYPE openai", 0, ST_INVALID_ARGUMENT, "SYNTAX", 26,
        "expected \"(\" after the storage"},
    {"CREATE SECRET (TYPE openai", 0, ST_INVALID_ARGUMENT, "SYNTAX", 26,
        "end of input (offset 26)"},
    {"CREATE SECRET \"\" (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14,
        "zero-length quoted identifier at offset 14"},
    {"DROP SECRET \"\"", 0, ST_INVALID_ARGUMENT, "SYNTAX", 12, "zero-length quoted identifier"},
    {"CREATE OR SECRET s (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 10, "expected REPLACE"},
    {"CREATE REPLACE SECRET s (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 7,
        "expected SECRET"},
    {"CREATE SECRET IF EXISTS s (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 17,
        "expected NOT EXISTS"},
    {"CREATE SECRET IF NOT s (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 21,
        "expected EXISTS"},
    {"DROP SECRET IF NOT EXISTS s", 0, ST_INVALID_ARGUMENT, "SYNTAX", 15, "expected EXISTS"},
    {"CREATE PERSISTENT TEMPORARY SECRET s (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 18,
        "expected SECRET"},
    {"CREATE SECRETS s (TYPE openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 7, "expected SECRET"},
    {"UPDATE secrets SET x = 1", 0, ST_INVALID_ARGUMENT, "SYNTAX", 0, "expected a statement"},
    {"SELECT name FROM duckdb_secrets()", 0, ST_INVALID_ARGUMENT, "SYNTAX", 7,
        "expected \"*\" after SELECT"},
    {"SELECT * duckdb_secrets()", 0, ST_INVALID_ARGUMENT, "SYNTAX", 9,
        "expected FROM after SELECT *"},
    {"FROM duckdb_secrets", 0, ST_INVALID_ARGUMENT, "SYNTAX", 19,
        "expected \"(\" after duckdb_secrets"},
    {"FROM duckdb_secrets(", 0, ST_INVALID_ARGUMENT, "SYNTAX", 20, "end of input (offset 20)"},
    {"FROM duckdb_secrets(redact = maybe)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 29,
        "expected true or false"},
    {"FROM duckdb_secrets(redact = 'false')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 29,
        "expected true or false"},
    {"FROM duckdb_secrets(redact false)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 27,
        "\"=\" or \":=\" after redact"},
    {"FROM duckdb_secrets(redact : false)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 27, "\":\""},
    {"FROM duckdb_secrets(true)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 20, "redact = true|false"},
    {"FROM duckdb_secrets(redact = false, redact = true)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 34,
        "expected \")\""},
    {"FROM which_secret('a')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 21,
        "expected \",\" after the path"},
    {"FROM which_secret(a, 'b')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 18, "a path in single quotes"},
    {"FROM which_secret('a', openai)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 23,
        "a type in single quotes"},
    {"FROM which_secret('a', 'b', 'c')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 26, "after the type"},
    {"FROM which_secret('unterminated, 'x')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 34,
        "at or near text right after a string literal"},
    {"CREATE SECRET (TYPE openai, API_KEY 'ab'S3CRET')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 40,
        "right after a string literal (a quote inside a value is written '')"},
    {"CREATE SECRET (TYPE openai, API_KEY 'it's S3CRET')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 40,
        "right after a string literal"},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3CRET' x)", 0, ST_INVALID_ARGUMENT, "SYNTAX", 45,
        "at or near \"x\""},
    {"FROM which_secrets('a', 'b')", 0, ST_INVALID_ARGUMENT, "SYNTAX", 5,
        "duckdb_secrets() or which_secret()"},
    {"FROM secrets", 0, ST_INVALID_ARGUMENT, "SYNTAX", 5, NULL},
    {"GET s", 0, ST_INVALID_ARGUMENT, "SYNTAX", 4, "expected SECRET"},
    {"GET SECRET", 0, ST_INVALID_ARGUMENT, "SYNTAX", 10, "end of input"},
    {"GET SECRET s FROM", 0, ST_INVALID_ARGUMENT, "SYNTAX", 17, "expected a storage"},
    {"GET SECRET s FROM memory extra", 0, ST_INVALID_ARGUMENT, "SYNTAX", 25, NULL},
    {"DROP SECRET s FROM", 0, ST_INVALID_ARGUMENT, "SYNTAX", 18, NULL},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3CRET', SCOPE ('x', \"S3CRET\"))", 0,
        ST_INVALID_ARGUMENT, "SYNTAX", 58, "at or near quoted identifier"},
    /* NUL bytes: anywhere, even in a string or a comment, and with len counting them. */
    {"DROP SECRET s\0x", 15, ST_INVALID_ARGUMENT, "SYNTAX", 13, "NUL byte at offset 13"},
    {"CREATE SECRET (TYPE openai, API_KEY 'S3\0CRET')", 46, ST_INVALID_ARGUMENT, "SYNTAX", 39,
        "NUL byte"},
    {"\0", 1, ST_INVALID_ARGUMENT, "SYNTAX", 0, "NUL byte at offset 0"},
    {"FROM duckdb_secrets() -- \0", 26, ST_INVALID_ARGUMENT, "SYNTAX", 25, "NUL byte"},
    /* Bad bytes are described, not echoed raw. */
    {"DROP SECRET s \xff\xfe", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14,
        "at or near identifier (offset 14)"},
    {"DROP SECRET s \x7f", 0, ST_INVALID_ARGUMENT, "SYNTAX", 14, "byte 0x7F"},
};

/* Whether msg names offset off as "offset N" not followed by another digit. */
static int
names_offset(const char *msg, long off)
{
	char want[32];
	const char *p = msg;

	(void)snprintf(want, sizeof(want), "offset %ld", off);
	while ((p = strstr(p, want)) != NULL) {
		p += strlen(want);
		if (*p < '0' || *p > '9')
			return 1;
	}
	return 0;
}

/* Fields as "key=value|key=value" into buf (test values only: never real secrets). */
static void
join_fields(const Secretd__V1__SecretCreate *c, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n_fields; i++) {
		const Secretd__V1__Field *f = c->fields[i];
		int n = snprintf(buf + used, size - used, "%s%s=%.*s", i ? "|" : "", f->key,
		    (int)f->value.len, (const char *)f->value.data);

		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
	}
}

static void
join_scope(const Secretd__V1__SecretCreate *c, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n_scope; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? "|" : "", c->scope[i]);

		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
	}
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static void
check_ok(struct arena *a, const struct ok_case *tc)
{
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};
	char buf[512];
	enum status rc;

	rc = sql_parse(tc->in, strlen(tc->in), a, &st, &out);
	CHECK_STATUS(rc, ST_OK);
	if (rc != ST_OK) {
		fprintf(stderr, "  input: %s\n  message: %s\n", tc->in, out.message);
		return;
	}
	CHECK_STATUS(st.kind, tc->kind);
	switch (tc->kind) {
	case SQL_CREATE:
		CHECK_STR(st.create.name, or_empty(tc->name));
		CHECK_STR(st.create.type, or_empty(tc->type));
		CHECK_STR(st.create.provider, or_empty(tc->provider));
		join_fields(&st.create, buf, sizeof(buf));
		CHECK_STR(buf, or_empty(tc->fields));
		if (tc->scope == NULL) {
			CHECK_STATUS(st.create.n_scope, 0);
		} else {
			CHECK(st.create.n_scope > 0);
			join_scope(&st.create, buf, sizeof(buf));
			CHECK_STR(buf, tc->scope);
		}
		CHECK_STATUS(st.create.persistent, tc->persistent);
		CHECK_STATUS(st.create.on_conflict, tc->conflict);
		break;
	case SQL_DROP:
		CHECK_STR(st.drop.name, or_empty(tc->name));
		CHECK_STATUS(st.drop.storage, tc->storage);
		CHECK_STATUS(st.drop.if_exists, tc->flag);
		break;
	case SQL_LIST:
		CHECK_STATUS(st.list.unredacted, tc->flag);
		CHECK_STR(st.list.type, "");
		CHECK_STATUS(st.list.storage, 0);
		break;
	case SQL_RESOLVE:
		CHECK_STR(st.resolve.path, or_empty(tc->path));
		CHECK_STR(st.resolve.type, or_empty(tc->type));
		break;
	case SQL_GET:
		CHECK_STR(st.get.name, or_empty(tc->name));
		CHECK_STATUS(st.get.storage, tc->storage);
		break;
	}
	/* The other members stay empty. */
	if (tc->kind != SQL_CREATE)
		CHECK(st.create.n_fields == 0 && st.create.type[0] == '\0');
	if (tc->kind != SQL_DROP)
		CHECK(st.drop.name[0] == '\0');
	arena_reset(a);
}

static void
check_err(struct arena *a, const struct err_case *tc)
{
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};
	size_t len = tc->len != 0 ? tc->len : strlen(tc->in);
	enum status rc;

	rc = sql_parse(tc->in, len, a, &st, &out);
	CHECK_STATUS(rc, tc->status);
	CHECK_STATUS(out.status, tc->status);
	CHECK_STR(out.reason, tc->reason);
	CHECK(names_offset(out.message, tc->offset));
	if (tc->msg != NULL)
		CHECK(strstr(out.message, tc->msg) != NULL);
	CHECK(strstr(out.message, "S3CRET") == NULL);
	CHECK(strstr(out.message, "CRET'") == NULL);
	CHECK_STATUS(st.kind, 0);
	CHECK(st.create.n_fields == 0 && st.create.n_scope == 0);
	if (rc != tc->status || !names_offset(out.message, tc->offset) ||
	    (tc->msg != NULL && strstr(out.message, tc->msg) == NULL))
		fprintf(stderr, "  input: %s\n  message: %s (want offset %ld)\n", tc->in,
		    out.message, tc->offset);
	arena_reset(a);
}

/* A statement whose option list has many fields: the arrays grow past any first guess. */
static void
check_many_fields(struct arena *a)
{
	enum { N = 3000 };
	size_t size = 64 + (size_t)N * 32;
	char *text = malloc(size);
	size_t used;
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};

	CHECK(text != NULL);
	if (text == NULL)
		return;
	used = (size_t)snprintf(text, size, "CREATE SECRET (TYPE openai, SCOPE ('s0'");
	for (int i = 1; i < N; i++)
		used += (size_t)snprintf(text + used, size - used, ", 's%d'", i);
	used += (size_t)snprintf(text + used, size - used, ")");
	for (int i = 0; i < N; i++)
		used += (size_t)snprintf(text + used, size - used, ", K%d 'v%d'", i, i);
	used += (size_t)snprintf(text + used, size - used, ")");
	CHECK(used < size);
	CHECK_STATUS(sql_parse(text, used, a, &st, &out), ST_OK);
	CHECK_STATUS(st.create.n_fields, N);
	CHECK_STATUS(st.create.n_scope, N);
	if (st.create.n_fields == N && st.create.n_scope == N) {
		CHECK_STR(st.create.fields[N - 1]->key, "K2999");
		CHECK(st.create.fields[N - 1]->value.len == 5 &&
		      memcmp(st.create.fields[N - 1]->value.data, "v2999", 5) == 0);
		CHECK_STR(st.create.scope[N - 1], "s2999");
	}
	free(text);
	arena_reset(a);
}

/* A long identifier is echoed cut to 64 bytes, at a character boundary. */
static void
check_echo_truncated(struct arena *a)
{
	char text[256];
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "DROP SECRET s ");
	memset(text + n, 'a', 100);
	n += 100;
	CHECK_STATUS(sql_parse(text, n, a, &st, &out), ST_INVALID_ARGUMENT);
	CHECK(
	    strstr(out.message,
	        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"") != NULL);
	CHECK(names_offset(out.message, 14));

	/* 2-byte characters from byte 14 on: 64 is not a boundary after an odd prefix. */
	n = (size_t)snprintf(text, sizeof(text), "DROP SECRET s x");
	for (int i = 0; i < 50; i++) {
		text[n++] = (char)0xD0;
		text[n++] = (char)0xB6; /* ж */
	}
	CHECK_STATUS(sql_parse(text, n, a, &st, &out), ST_INVALID_ARGUMENT);
	CHECK(strstr(out.message, "x\xD0\xB6") != NULL);
	CHECK(strstr(out.message, "\xD0...\"") == NULL);
	CHECK(strstr(out.message, "\xB6...\"") != NULL);
	arena_reset(a);
}

static void
check_null_text(struct arena *a)
{
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};

	CHECK_STATUS(sql_parse(NULL, 0, a, &st, &out), ST_INVALID_ARGUMENT);
	CHECK(names_offset(out.message, 0));
	CHECK_STATUS(sql_parse(NULL, 5, a, &st, &out), ST_INVALID_ARGUMENT);
	CHECK_STR(out.reason, "SYNTAX");
	arena_reset(a);
}

/* The parse must not depend on a NUL after the text: parse statements from an exactly
 * sized heap copy (ASan flags any read past it), followed by garbage when len is short. */
static void
check_not_terminated(struct arena *a)
{
	static const char text[] = "DROP SECRET s; DROP SECRET t";
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};
	char *copy = malloc(13);

	CHECK(copy != NULL);
	if (copy == NULL)
		return;
	memcpy(copy, text, 13);
	CHECK_STATUS(sql_parse(copy, 13, a, &st, &out), ST_OK);
	CHECK_STR(st.drop.name, "s");
	CHECK_STATUS(sql_parse(text, 14, a, &st, &out), ST_OK);
	CHECK_STATUS(sql_parse(text, 17, a, &st, &out), ST_INVALID_ARGUMENT);
	CHECK(names_offset(out.message, 15));
	free(copy);
	arena_reset(a);
}

/* Every outcome of a parse is OK or a well-formed error; never anything else. Returns 1
 * when the invariant holds. */
static int
parse_is_sane(struct arena *a, const char *text, size_t len)
{
	struct sql_statement st;
	struct outcome out = {ST_OK, "", ""};
	enum status rc = sql_parse(text, len, a, &st, &out);
	int ok;

	if (rc == ST_OK)
		ok = st.kind >= SQL_CREATE && st.kind <= SQL_GET;
	else
		ok = rc == ST_INVALID_ARGUMENT && out.status == rc && out.reason[0] != '\0' &&
		     strstr(out.message, "offset ") != NULL && st.kind == 0;
	arena_reset(a);
	return ok;
}

/* Every prefix of every good statement, from an exactly sized buffer. */
static void
check_prefixes(struct arena *a)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		size_t n = strlen(ok_cases[i].in);

		for (size_t k = 0; k <= n; k++) {
			char *copy = malloc(k + 1);

			if (copy == NULL)
				continue;
			memcpy(copy, ok_cases[i].in, k);
			if (!parse_is_sane(a, k > 0 ? copy : NULL, k))
				bad++;
			free(copy);
		}
	}
	CHECK_STATUS(bad, 0);
}

/* xorshift64*: deterministic, state on the caller's stack. */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Seeded mutations (byte flips, inserted grammar characters, cuts) of good statements. */
static void
check_mutations(struct arena *a)
{
	static const char alphabet[] = "'\"();,=:*-\n \0\x80\xff";
	uint64_t seed = 0x5eed5eed5eedULL;
	size_t ncases = sizeof(ok_cases) / sizeof(ok_cases[0]);
	int bad = 0;

	for (int iter = 0; iter < 20000; iter++) {
		const char *src = ok_cases[next_rand(&seed) % ncases].in;
		size_t n = strlen(src);
		char *buf = malloc(n + 8);
		int edits = 1 + (int)(next_rand(&seed) % 4);

		if (buf == NULL)
			continue;
		memcpy(buf, src, n);
		for (int e = 0; e < edits && n > 0; e++) {
			size_t at = next_rand(&seed) % n;
			uint64_t r = next_rand(&seed);

			switch (r % 3) {
			case 0:
				buf[at] = (char)(r >> 8);
				break;
			case 1:
				buf[at] = alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
				break;
			default:
				n = at;
				break;
			}
		}
		char *exact = malloc(n > 0 ? n : 1);

		if (exact != NULL) {
			memcpy(exact, buf, n);
			if (!parse_is_sane(a, exact, n))
				bad++;
			free(exact);
		}
		free(buf);
	}
	CHECK_STATUS(bad, 0);
}

int
main(void)
{
	struct arena a;

	arena_init(&a, 4096);
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++)
		check_ok(&a, &ok_cases[i]);
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
		check_err(&a, &err_cases[i]);
	check_many_fields(&a);
	check_echo_truncated(&a);
	check_null_text(&a);
	check_not_terminated(&a);
	check_prefixes(&a);
	check_mutations(&a);
	fprintf(stderr, "%zu statements that parse, %zu that fail\n",
	    sizeof(ok_cases) / sizeof(ok_cases[0]), sizeof(err_cases) / sizeof(err_cases[0]));
	arena_fini(&a);
	return check_report();
}
