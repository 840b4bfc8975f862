/*
 * sql.c: hand-written recursive-descent parser for the statement dialect of SPEC §3. See
 * sql.h for the contract; the lexer and the error reporting it shares with this file are in
 * sql_lex.c.
 *
 * The parser never recurses more than a fixed depth, so no input can exhaust the stack.
 *
 * Not done here: semantic checks of types, fields, names and providers (the handlers make
 * them, for both the SQL and the RPC path); tokens (sql_lex.c).
 *
 * Thread-safety: no global mutable state; see sql.h.
 */
#include "sql.h"

#include "sql_lex.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Whether the current token is the bare keyword kw (upper case). */
static bool
at_kw(const struct parser *p, const char *kw)
{
	return p->tok.kind == TOK_IDENT && sql_word_eq(p->s + p->tok.off, p->tok.len, kw);
}

/* Consume the keyword kw or fail with a syntax error expecting expect. */
static enum status
expect_kw(struct parser *p, const char *kw, const char *expect)
{
	if (!at_kw(p, kw))
		return sql_fail_syntax(p, expect);
	return sql_lex_next(p);
}

/* Consume a token of kind k or fail with a syntax error expecting expect. */
static enum status
expect_tok(struct parser *p, enum tok_kind k, const char *expect)
{
	if (p->tok.kind != k)
		return sql_fail_syntax(p, expect);
	return sql_lex_next(p);
}

/* The text of token t into the arena, unquoted (a doubled quote becomes one) when it is a
 * quoted token; *lenp gets its length. NULL when out of memory. */
static char *
token_text(struct parser *p, const struct token *t, size_t *lenp)
{
	const char *s = p->s + t->off;
	size_t n = t->len;
	char *buf;
	size_t i, j;

	if (t->kind != TOK_QIDENT && t->kind != TOK_STRING) {
		*lenp = n;
		return arena_strndup(p->a, s, n);
	}
	buf = arena_alloc(p->a, n - 1); /* n >= 2: both quotes; room for the NUL */
	if (buf == NULL)
		return NULL;
	for (i = 1, j = 0; i + 1 < n; i++) {
		buf[j++] = s[i];
		if (s[i] == s[0])
			i++; /* the lexer only lets quotes through in pairs */
	}
	buf[j] = '\0';
	*lenp = j;
	return buf;
}

/* A secret name: a bare non-keyword identifier or a non-empty "quoted" one. */
static bool
at_name(const struct parser *p)
{
	return p->tok.kind == TOK_QIDENT ||
	       (p->tok.kind == TOK_IDENT && !sql_is_reserved(p, &p->tok));
}

/* Take the name at the current token (at_name is true) into *namep and move on. */
static enum status
take_name(struct parser *p, char **namep)
{
	size_t len;
	char *name;

	if (p->tok.kind == TOK_QIDENT && p->tok.len == 2)
		return outcome_set(p->out, ST_INVALID_ARGUMENT, REASON_SYNTAX,
		    "zero-length quoted identifier at offset %zu", p->tok.off);
	name = token_text(p, &p->tok, &len);
	if (name == NULL)
		return sql_fail_nomem(p);
	*namep = name;
	return sql_lex_next(p);
}

/* A required secret name. */
static enum status
parse_name(struct parser *p, char **namep)
{
	if (!at_name(p))
		return sql_fail_syntax(
		    p, p->tok.kind == TOK_IDENT
		           ? "a secret name (a keyword used as a name must be double-quoted)"
		           : "a secret name");
	return take_name(p, namep);
}

/* A storage name, memory or sqlcipher, or etcd (the persistent storage of a cluster node:
 * noted in p->etcd_off for the caller to check) (case-insensitive, bare or double-quoted).
 * Leaves the storage's token in *tokp for later errors and moves on. */
static enum status
parse_storage(struct parser *p, Secretd__V1__Storage *storagep, struct token *tokp)
{
	const char *s = p->s + p->tok.off;
	size_t n = p->tok.len;

	*tokp = p->tok;
	if (p->tok.kind == TOK_QIDENT) {
		s++;
		n -= 2;
	} else if (p->tok.kind != TOK_IDENT) {
		return sql_fail_syntax(p, "a storage (memory or sqlcipher)");
	}
	if (sql_word_eq(s, n, "MEMORY"))
		*storagep = SECRETD__V1__STORAGE__STORAGE_MEMORY;
	else if (sql_word_eq(s, n, "SQLCIPHER"))
		*storagep = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	else if (sql_word_eq(s, n, "ETCD")) {
		*storagep = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
		p->etcd_off = p->tok.off;
	} else
		return sql_fail_at(p, &p->tok, REASON_INVALID_STORAGE, "unknown storage",
		    "expected memory or sqlcipher");
	return sql_lex_next(p);
}

/* An option value: a 'string', a bare word or a number, kept as text. A "double quoted"
 * token is an identifier in SQL, never a value: rejected with a hint rather than guessed. */
static enum status
parse_value(struct parser *p, char **valuep, size_t *lenp, const char *expect)
{
	char *v;

	if (p->tok.kind == TOK_QIDENT)
		return sql_fail_at(p, &p->tok, REASON_SYNTAX, "double-quoted value",
		    "\"...\" is an identifier; write a value in single quotes ('...')");
	if (p->tok.kind != TOK_STRING && p->tok.kind != TOK_IDENT && p->tok.kind != TOK_NUMBER)
		return sql_fail_syntax(p, expect);
	v = token_text(p, &p->tok, lenp);
	if (v == NULL)
		return sql_fail_nomem(p);
	*valuep = v;
	return sql_lex_next(p);
}

/* Append item to the arena array *arrp of *np pointers, growing it by doubling. The old
 * array stays in the arena until its reset. */
static enum status
push_ptr(struct parser *p, void ***arrp, size_t *np, size_t *capp, void *item)
{
	if (*np == *capp) {
		size_t cap = *capp == 0 ? 4 : *capp * 2;
		void **arr;

		if (cap > SIZE_MAX / sizeof(*arr))
			return sql_fail_nomem(p);
		arr = arena_alloc(p->a, cap * sizeof(*arr));
		if (arr == NULL)
			return sql_fail_nomem(p);
		if (*np > 0)
			memcpy(arr, *arrp, *np * sizeof(*arr));
		*arrp = arr;
		*capp = cap;
	}
	(*arrp)[(*np)++] = item;
	return ST_OK;
}

static enum status
push_scope(struct parser *p, Secretd__V1__SecretCreate *c, size_t *capp)
{
	enum status st;
	void **arr = (void **)c->scope;
	size_t len;
	char *v;

	if (p->tok.kind != TOK_STRING)
		return sql_fail_syntax(p, "a scope in single quotes");
	v = token_text(p, &p->tok, &len);
	if (v == NULL)
		return sql_fail_nomem(p);
	st = push_ptr(p, &arr, &c->n_scope, capp, v);
	c->scope = (char **)arr;
	if (st != ST_OK)
		return st;
	return sql_lex_next(p);
}

/* SCOPE 'a' or SCOPE ('a', 'b', ...); the list may not be empty. */
static enum status
parse_scope(struct parser *p, Secretd__V1__SecretCreate *c)
{
	enum status st;
	size_t cap = 0;

	if (p->tok.kind == TOK_STRING)
		return push_scope(p, c, &cap);
	if (p->tok.kind != TOK_LPAREN)
		return sql_fail_syntax(
		    p, "a scope in single quotes or a parenthesised list of them");
	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	if (p->tok.kind == TOK_RPAREN)
		return sql_fail_syntax(
		    p, "a scope in single quotes (the SCOPE list must not be empty)");
	for (;;) {
		if ((st = push_scope(p, c, &cap)) != ST_OK)
			return st;
		if (p->tok.kind == TOK_RPAREN)
			return sql_lex_next(p);
		if ((st = expect_tok(p, TOK_COMMA, "\",\" or \")\" in the SCOPE list")) != ST_OK)
			return st;
	}
}

static enum status
push_field(struct parser *p, Secretd__V1__SecretCreate *c, size_t *capp, const struct token *key)
{
	static const Secretd__V1__Field init = SECRETD__V1__FIELD__INIT;
	enum status st;
	void **arr = (void **)c->fields;
	Secretd__V1__Field *f;
	char *value = NULL;
	size_t len;

	f = arena_alloc(p->a, sizeof(*f));
	if (f == NULL)
		return sql_fail_nomem(p);
	*f = init;
	f->key = token_text(p, key, &len);
	if (f->key == NULL)
		return sql_fail_nomem(p);
	if ((st = parse_value(p, &value, &len, "a value after the option name")) != ST_OK)
		return st;
	f->value.data = (uint8_t *)value;
	f->value.len = len;
	st = push_ptr(p, &arr, &c->n_fields, capp, f);
	c->fields = (Secretd__V1__Field **)arr;
	return st;
}

/* A once-only option (TYPE, PROVIDER): fail at its second appearance. */
static enum status
parse_once(struct parser *p, const struct token *key, const char *name, bool *seenp, char **valuep)
{
	char msg[48];
	size_t len;

	if (*seenp) {
		(void)snprintf(msg, sizeof(msg), "option %s given twice", name);
		return sql_fail_at(p, key, REASON_SYNTAX, msg, NULL);
	}
	*seenp = true;
	return parse_value(p, valuep, &len, "a value after the option name");
}

/* '(' key value {',' key value} ')', at the '('. */
static enum status
parse_options(struct parser *p, Secretd__V1__SecretCreate *c)
{
	enum status st;
	bool seen_type = false, seen_provider = false, seen_scope = false;
	size_t field_cap = 0;

	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	if (p->tok.kind == TOK_RPAREN)
		return sql_fail_syntax(p, "an option name (the option list must not be empty)");
	for (;;) {
		struct token key = p->tok;

		if (key.kind != TOK_IDENT)
			return sql_fail_syntax(p, "an option name");
		if ((st = sql_lex_next(p)) != ST_OK)
			return st;
		if (sql_word_eq(p->s + key.off, key.len, "TYPE")) {
			st = parse_once(p, &key, "TYPE", &seen_type, &c->type);
		} else if (sql_word_eq(p->s + key.off, key.len, "PROVIDER")) {
			st = parse_once(p, &key, "PROVIDER", &seen_provider, &c->provider);
		} else if (sql_word_eq(p->s + key.off, key.len, "SCOPE")) {
			if (seen_scope)
				return sql_fail_at(
				    p, &key, REASON_SYNTAX, "option SCOPE given twice", NULL);
			seen_scope = true;
			st = parse_scope(p, c);
		} else {
			st = push_field(p, c, &field_cap, &key);
		}
		if (st != ST_OK)
			return st;
		if (p->tok.kind == TOK_RPAREN)
			return sql_lex_next(p);
		if ((st = expect_tok(p, TOK_COMMA, "\",\" or \")\" after an option value")) !=
		    ST_OK)
			return st;
	}
}

/* CREATE [OR REPLACE] [TEMPORARY|TEMP|PERSISTENT] SECRET [IF NOT EXISTS] [name]
 * [IN storage] ( options ), at CREATE. */
static enum status
parse_create(struct parser *p, Secretd__V1__SecretCreate *c)
{
	enum status st;
	bool replace = false, temporary = false, persistent = false, named = false;
	Secretd__V1__Storage storage = SECRETD__V1__STORAGE__STORAGE_UNSPECIFIED;
	struct token storage_tok = {TOK_END, 0, 0};
	const char *expect;

	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "OR")) {
		if ((st = sql_lex_next(p)) != ST_OK ||
		    (st = expect_kw(p, "REPLACE", "REPLACE")) != ST_OK)
			return st;
		replace = true;
	}
	if (at_kw(p, "TEMPORARY") || at_kw(p, "TEMP")) {
		temporary = true;
	} else if (at_kw(p, "PERSISTENT")) {
		persistent = true;
	}
	if ((temporary || persistent) && (st = sql_lex_next(p)) != ST_OK)
		return st;
	if ((st = expect_kw(p, "SECRET", "SECRET")) != ST_OK)
		return st;
	if (at_kw(p, "IF")) {
		if (replace)
			return sql_fail_at(p, &p->tok, REASON_SYNTAX, "syntax error",
			    "OR REPLACE cannot be combined with IF NOT EXISTS");
		if ((st = sql_lex_next(p)) != ST_OK ||
		    (st = expect_kw(p, "NOT", "NOT EXISTS")) != ST_OK ||
		    (st = expect_kw(p, "EXISTS", "EXISTS")) != ST_OK)
			return st;
		c->on_conflict = SECRETD__V1__ON_CONFLICT__ON_CONFLICT_IGNORE;
	} else if (replace) {
		c->on_conflict = SECRETD__V1__ON_CONFLICT__ON_CONFLICT_REPLACE;
	}
	if (at_name(p)) {
		if ((st = take_name(p, &c->name)) != ST_OK)
			return st;
		named = true;
	}
	if (at_kw(p, "IN")) {
		if ((st = sql_lex_next(p)) != ST_OK ||
		    (st = parse_storage(p, &storage, &storage_tok)) != ST_OK)
			return st;
		if (temporary && storage == SECRETD__V1__STORAGE__STORAGE_SQLCIPHER)
			return sql_fail_at(p, &storage_tok, REASON_INVALID_STORAGE,
			    p->etcd_off != SIZE_MAX ? "a TEMPORARY secret cannot be stored in etcd"
			                            : "a TEMPORARY secret cannot be stored in sqlcipher",
			    "temporary secrets live in memory");
		if (persistent && storage == SECRETD__V1__STORAGE__STORAGE_MEMORY)
			return sql_fail_at(p, &storage_tok, REASON_INVALID_STORAGE,
			    "a PERSISTENT secret cannot be stored in memory",
			    "persistent secrets live in sqlcipher");
		expect = "\"(\" after the storage";
	} else if (named) {
		expect = "IN or \"(\" after the secret name";
	} else if (p->tok.kind == TOK_IDENT) {
		expect = "a secret name, IN or \"(\" (a keyword used as a name must be "
		         "double-quoted)";
	} else {
		expect = "a secret name, IN or \"(\" after SECRET";
	}
	c->persistent = persistent || storage == SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	if (p->tok.kind != TOK_LPAREN)
		return sql_fail_syntax(p, expect);
	return parse_options(p, c);
}

/* [FROM storage] of DROP and GET, after the name. temporary: the statement said TEMPORARY,
 * which DuckDB refuses to combine with FROM. PERSISTENT with FROM is not an error: as in
 * DuckDB (checked on 1.2.2), the named storage is then the only candidate and the keyword
 * is ignored, so DROP PERSISTENT SECRET s FROM memory drops the temporary s. */
static enum status
parse_from_storage(struct parser *p, bool temporary, Secretd__V1__Storage *storagep)
{
	enum status st;
	struct token storage_tok = {TOK_END, 0, 0};

	if (!at_kw(p, "FROM"))
		return ST_OK;
	if (temporary)
		return sql_fail_at(p, &p->tok, REASON_INVALID_STORAGE,
		    "DROP TEMPORARY SECRET takes no FROM",
		    "a temporary secret is always in memory");
	if ((st = sql_lex_next(p)) != ST_OK ||
	    (st = parse_storage(p, storagep, &storage_tok)) != ST_OK)
		return st;
	return ST_OK;
}

/* DROP [TEMPORARY|TEMP|PERSISTENT] SECRET [IF EXISTS] name [FROM storage], at DROP. */
static enum status
parse_drop(struct parser *p, Secretd__V1__SecretDrop *d)
{
	enum status st;
	bool temporary = false, persistent = false;

	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "TEMPORARY") || at_kw(p, "TEMP")) {
		temporary = true;
		d->storage = SECRETD__V1__STORAGE__STORAGE_MEMORY;
	} else if (at_kw(p, "PERSISTENT")) {
		persistent = true;
		d->storage = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	}
	if ((temporary || persistent) && (st = sql_lex_next(p)) != ST_OK)
		return st;
	if ((st = expect_kw(p, "SECRET", "SECRET")) != ST_OK)
		return st;
	if (at_kw(p, "IF")) {
		if ((st = sql_lex_next(p)) != ST_OK ||
		    (st = expect_kw(p, "EXISTS", "EXISTS")) != ST_OK)
			return st;
		d->if_exists = true;
	}
	if ((st = parse_name(p, &d->name)) != ST_OK)
		return st;
	return parse_from_storage(p, temporary, &d->storage);
}

/* GET SECRET name [FROM storage], at GET. */
static enum status
parse_get(struct parser *p, Secretd__V1__SecretGet *g)
{
	enum status st;

	if ((st = sql_lex_next(p)) != ST_OK || (st = expect_kw(p, "SECRET", "SECRET")) != ST_OK ||
	    (st = parse_name(p, &g->name)) != ST_OK)
		return st;
	return parse_from_storage(p, false, &g->storage);
}

/* duckdb_secrets( [redact [:]= true|false] ), at the '('. */
static enum status
parse_list_args(struct parser *p, Secretd__V1__SecretList *l)
{
	enum status st;
	bool had_arg;

	if ((st = expect_tok(p, TOK_LPAREN, "\"(\" after duckdb_secrets")) != ST_OK)
		return st;
	had_arg = at_kw(p, "REDACT");
	if (had_arg) {
		if ((st = sql_lex_next(p)) != ST_OK)
			return st;
		if (p->tok.kind != TOK_EQ && p->tok.kind != TOK_COLONEQ)
			return sql_fail_syntax(p, "\"=\" or \":=\" after redact");
		if ((st = sql_lex_next(p)) != ST_OK)
			return st;
		if (at_kw(p, "TRUE"))
			l->unredacted = false;
		else if (at_kw(p, "FALSE"))
			l->unredacted = true;
		else
			return sql_fail_syntax(p, "true or false");
		if ((st = sql_lex_next(p)) != ST_OK)
			return st;
	}
	return expect_tok(p, TOK_RPAREN, had_arg ? "\")\"" : "\")\" or redact = true|false");
}

/* which_secret('path', 'type'), at the '('. */
static enum status
parse_resolve_args(struct parser *p, Secretd__V1__SecretResolve *r)
{
	enum status st;
	size_t len;

	if ((st = expect_tok(p, TOK_LPAREN, "\"(\" after which_secret")) != ST_OK)
		return st;
	if (p->tok.kind != TOK_STRING)
		return sql_fail_syntax(p, "a path in single quotes");
	if ((r->path = token_text(p, &p->tok, &len)) == NULL)
		return sql_fail_nomem(p);
	if ((st = sql_lex_next(p)) != ST_OK ||
	    (st = expect_tok(p, TOK_COMMA, "\",\" after the path")) != ST_OK)
		return st;
	if (p->tok.kind != TOK_STRING)
		return sql_fail_syntax(p, "a type in single quotes");
	if ((r->type = token_text(p, &p->tok, &len)) == NULL)
		return sql_fail_nomem(p);
	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	return expect_tok(p, TOK_RPAREN, "\")\" after the type");
}

/* FROM duckdb_secrets(...) or FROM which_secret(...), at FROM. */
static enum status
parse_from(struct parser *p, struct sql_statement *stmt)
{
	enum status st;

	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "DUCKDB_SECRETS")) {
		stmt->kind = SQL_LIST;
		if ((st = sql_lex_next(p)) != ST_OK)
			return st;
		return parse_list_args(p, &stmt->list);
	}
	if (at_kw(p, "WHICH_SECRET")) {
		stmt->kind = SQL_RESOLVE;
		if ((st = sql_lex_next(p)) != ST_OK)
			return st;
		return parse_resolve_args(p, &stmt->resolve);
	}
	return sql_fail_syntax(p, "duckdb_secrets() or which_secret()");
}

static enum status
parse_statement(struct parser *p, struct sql_statement *stmt)
{
	enum status st;

	if ((st = sql_lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "CREATE")) {
		stmt->kind = SQL_CREATE;
		st = parse_create(p, &stmt->create);
	} else if (at_kw(p, "DROP")) {
		stmt->kind = SQL_DROP;
		st = parse_drop(p, &stmt->drop);
	} else if (at_kw(p, "GET")) {
		stmt->kind = SQL_GET;
		st = parse_get(p, &stmt->get);
	} else if (at_kw(p, "SELECT")) {
		if ((st = sql_lex_next(p)) != ST_OK ||
		    (st = expect_tok(p, TOK_STAR, "\"*\" after SELECT")) != ST_OK)
			return st;
		if (!at_kw(p, "FROM"))
			return sql_fail_syntax(p, "FROM after SELECT *");
		st = parse_from(p, stmt);
	} else if (at_kw(p, "FROM")) {
		st = parse_from(p, stmt);
	} else {
		return sql_fail_syntax(p, "a statement: CREATE, DROP, GET, SELECT or FROM");
	}
	if (st != ST_OK)
		return st;
	if (p->tok.kind == TOK_SEMI && (st = sql_lex_next(p)) != ST_OK)
		return st;
	if (p->tok.kind != TOK_END)
		return sql_fail_syntax(p, "end of statement (one statement per request)");
	return ST_OK;
}

static void
statement_init(struct sql_statement *stmt)
{
	static const Secretd__V1__SecretCreate create = SECRETD__V1__SECRET_CREATE__INIT;
	static const Secretd__V1__SecretDrop drop = SECRETD__V1__SECRET_DROP__INIT;
	static const Secretd__V1__SecretList list = SECRETD__V1__SECRET_LIST__INIT;
	static const Secretd__V1__SecretResolve resolve = SECRETD__V1__SECRET_RESOLVE__INIT;
	static const Secretd__V1__SecretGet get = SECRETD__V1__SECRET_GET__INIT;

	stmt->kind = (enum sql_kind)0;
	stmt->create = create;
	stmt->drop = drop;
	stmt->list = list;
	stmt->resolve = resolve;
	stmt->get = get;
	stmt->etcd_off = SIZE_MAX;
}

enum status
sql_parse(
    const char *text, size_t len, struct arena *a, struct sql_statement *stmt, struct outcome *out)
{
	struct parser p = {.s = text,
	    .n = len,
	    .pos = 0,
	    .string_end = SIZE_MAX,
	    .a = a,
	    .out = out,
	    .etcd_off = SIZE_MAX};
	const char *nul;
	enum status st;

	statement_init(stmt);
	if (text == NULL) {
		if (len > 0)
			return outcome_set(
			    out, ST_INVALID_ARGUMENT, REASON_SYNTAX, "no statement text");
		p.s = "";
	}
	nul = len > 0 ? memchr(p.s, '\0', len) : NULL;
	if (nul != NULL)
		return outcome_set(out, ST_INVALID_ARGUMENT, REASON_SYNTAX,
		    "NUL byte at offset %zu", (size_t)(nul - p.s));
	st = parse_statement(&p, stmt);
	if (st != ST_OK)
		statement_init(stmt);
	else
		stmt->etcd_off = p.etcd_off;
	return st;
}
