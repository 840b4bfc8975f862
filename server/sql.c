/*
 * sql.c: hand-written lexer and recursive-descent parser for the statement dialect of
 * SPEC §3. See sql.h for the contract.
 *
 * The lexer produces one token at a time on demand (one token of lookahead is all the
 * grammar needs); quoted tokens keep their quotes and are unescaped only when the parser
 * keeps their text, straight into the arena. The parser never recurses more than a fixed
 * depth, so no input can exhaust the stack.
 *
 * Not done here: semantic checks of types, fields, names and providers (the handlers make
 * them, for both the SQL and the RPC path); block comments (/ * ... * /), which SPEC §3 does
 * not allow.
 *
 * Thread-safety: no global mutable state; see sql.h.
 */
#include "sql.h"

#include "utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum tok_kind {
	TOK_END = 0, /* end of input; off is len */
	TOK_IDENT,   /* bare identifier or keyword */
	TOK_QIDENT,  /* "double quoted" identifier, quotes included */
	TOK_STRING,  /* 'single quoted' string literal, quotes included */
	TOK_NUMBER,  /* [+-]digits[.digits] */
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_COMMA,
	TOK_SEMI,
	TOK_STAR,
	TOK_EQ,      /* = */
	TOK_COLONEQ, /* := */
	TOK_OTHER,   /* any other single byte */
};

struct token {
	enum tok_kind kind;
	size_t off; /* byte offset of the first byte in the text */
	size_t len; /* bytes, quotes included */
};

struct parser {
	const char *s;
	size_t n;
	size_t pos; /* where the lexer goes on */
	struct token tok;
	size_t string_end; /* offset just past the last string literal; SIZE_MAX: none yet */
	struct arena *a;
	struct outcome *out;
};

/* Identifiers longer than this are cut (at a UTF-8 boundary) when echoed in a message. */
enum { SQL_ECHO_MAX = 64 };

/* Words that cannot be a bare secret name: every keyword of the grammar, including the
 * option keys, so that `CREATE SECRET TYPE openai` is reported at TYPE. */
static const char *const sql_reserved[] = { "CREATE", "OR", "REPLACE", "TEMPORARY", "TEMP",
	"PERSISTENT", "SECRET", "IF", "NOT", "EXISTS", "IN", "DROP", "FROM", "SELECT", "GET",
	"TYPE", "PROVIDER", "SCOPE" };

static const char reason_syntax[] = "SYNTAX";
static const char reason_storage[] = "INVALID_STORAGE";

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_ident_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}

static bool
is_ident_char(unsigned char c)
{
	return is_ident_start(c) || is_digit(c) || c == '$';
}

static unsigned char
ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

/* Whether s[0..n) equals the upper-case word w, ignoring ASCII case. */
static bool
word_eq(const char *s, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (w[i] == '\0' || ascii_upper((unsigned char)s[i]) != (unsigned char)w[i])
			return false;
	}
	return w[n] == '\0';
}

/* Put a description of tok for an error message into buf: the text of a bare identifier
 * or punctuation, but only the kind of a literal, which may hold a secret. */
static void
describe(const struct parser *p, const struct token *t, char *buf, size_t size)
{
	const unsigned char *s = (const unsigned char *)p->s + t->off;

	switch (t->kind) {
	case TOK_END:
		(void)snprintf(buf, size, "end of input");
		break;
	case TOK_IDENT: {
		size_t n = t->len;

		/* A word glued to a closing quote is most likely the rest of a value whose inner
		 * quote was not doubled ('it's ...'): part of a secret, perhaps; not echoed. */
		if (t->off == p->string_end) {
			(void)snprintf(buf, size,
			    "text right after a string literal (a quote "
			    "inside a value is written '')");
			break;
		}
		/* Bytes that are not UTF-8 could not go into a JSON reply: not echoed. */
		if (!utf8_valid(s, n)) {
			(void)snprintf(buf, size, "identifier");
			break;
		}
		if (n > SQL_ECHO_MAX) {
			n = SQL_ECHO_MAX;
			while (n > 0 && (s[n] & 0xC0) == 0x80)
				n--; /* cut before a character, not through it */
		}
		(void)snprintf(
		    buf, size, "\"%.*s%s\"", (int)n, (const char *)s, n < t->len ? "..." : "");
		break;
	}
	case TOK_QIDENT:
		(void)snprintf(buf, size, "quoted identifier");
		break;
	case TOK_STRING:
		(void)snprintf(buf, size, "string literal");
		break;
	case TOK_NUMBER:
		(void)snprintf(buf, size, "number");
		break;
	case TOK_LPAREN:
	case TOK_RPAREN:
	case TOK_COMMA:
	case TOK_SEMI:
	case TOK_STAR:
	case TOK_EQ:
	case TOK_COLONEQ:
		(void)snprintf(buf, size, "\"%.*s\"", (int)t->len, (const char *)s);
		break;
	case TOK_OTHER:
		if (s[0] >= 0x21 && s[0] < 0x7F)
			(void)snprintf(buf, size, "\"%c\"", s[0]);
		else
			(void)snprintf(buf, size, "byte 0x%02X", (unsigned)s[0]);
		break;
	}
}

/* Fail with "<what> at or near <token> (offset N)[: <detail>]". */
static enum status
fail_at(struct parser *p, const struct token *t, const char *reason, const char *what,
    const char *detail)
{
	char desc[96];

	describe(p, t, desc, sizeof(desc));
	return outcome_set(p->out, ST_INVALID_ARGUMENT, reason, "%s %s %s (offset %zu)%s%s", what,
	    t->kind == TOK_END ? "at" : "at or near", desc, t->off, detail ? ": " : "",
	    detail ? detail : "");
}

/* Fail with "syntax error at or near <current token> (offset N): expected <expect>". */
static enum status
fail_syntax(struct parser *p, const char *expect)
{
	char detail[256];

	(void)snprintf(detail, sizeof(detail), "expected %s", expect);
	return fail_at(p, &p->tok, reason_syntax, "syntax error", detail);
}

static enum status
fail_nomem(struct parser *p)
{
	return outcome_set(p->out, ST_RESOURCE_EXHAUSTED, "OUT_OF_MEMORY",
	    "out of memory while parsing the statement");
}

/* Scan a quoted token starting at p->pos (the opening quote q); doubled quotes stand for
 * one. On success p->tok covers both quotes. */
static enum status
lex_quoted(struct parser *p, unsigned char q, enum tok_kind kind, const char *what)
{
	size_t start = p->pos;
	size_t i = start + 1;

	for (;;) {
		const char *end = i < p->n ? memchr(p->s + i, q, p->n - i) : NULL;

		if (end == NULL)
			return outcome_set(p->out, ST_INVALID_ARGUMENT, reason_syntax,
			    "unterminated %s at offset %zu", what, start);
		i = (size_t)(end - p->s) + 1;
		if (i < p->n && (unsigned char)p->s[i] == q) {
			i++;
			continue;
		}
		break;
	}
	p->tok.kind = kind;
	p->tok.off = start;
	p->tok.len = i - start;
	p->pos = i;
	if (kind == TOK_STRING)
		p->string_end = i;
	return ST_OK;
}

/* Scan a number: an optional sign, digits with at most one decimal point. Letters glued to
 * it (`12ab`, `1.2.3`) make it malformed rather than two tokens. */
static enum status
lex_number(struct parser *p)
{
	size_t start = p->pos;
	size_t i = start;
	size_t digits = 0, dots = 0;

	if (p->s[i] == '+' || p->s[i] == '-')
		i++;
	while (i < p->n && (is_ident_char((unsigned char)p->s[i]) || p->s[i] == '.')) {
		unsigned char c = (unsigned char)p->s[i];

		if (is_digit(c))
			digits++;
		else if (c == '.')
			dots++;
		else
			dots = 2; /* any other character: malformed */
		i++;
	}
	if (digits == 0 || dots > 1)
		return outcome_set(p->out, ST_INVALID_ARGUMENT, reason_syntax,
		    "malformed number at offset %zu", start);
	p->tok.kind = TOK_NUMBER;
	p->tok.off = start;
	p->tok.len = i - start;
	p->pos = i;
	return ST_OK;
}

/* Skip white space and `--` comments, then scan the next token into p->tok. */
static enum status
lex_next(struct parser *p)
{
	const char *s = p->s;
	size_t n = p->n;
	unsigned char c, c1;

	for (;;) {
		while (p->pos < n && is_space((unsigned char)s[p->pos]))
			p->pos++;
		if (p->pos + 1 < n && s[p->pos] == '-' && s[p->pos + 1] == '-') {
			const char *nl = memchr(s + p->pos, '\n', n - p->pos);

			p->pos = nl != NULL ? (size_t)(nl - s) + 1 : n;
			continue;
		}
		break;
	}
	p->tok.off = p->pos;
	p->tok.len = 0;
	if (p->pos >= n) {
		p->tok.kind = TOK_END;
		return ST_OK;
	}
	c = (unsigned char)s[p->pos];
	c1 = p->pos + 1 < n ? (unsigned char)s[p->pos + 1] : 0;
	if (is_ident_start(c)) {
		size_t i = p->pos + 1;

		while (i < n && is_ident_char((unsigned char)s[i]))
			i++;
		p->tok.kind = TOK_IDENT;
		p->tok.len = i - p->pos;
		p->pos = i;
		return ST_OK;
	}
	if (c == '"')
		return lex_quoted(p, '"', TOK_QIDENT, "quoted identifier");
	if (c == '\'')
		return lex_quoted(p, '\'', TOK_STRING, "quoted string");
	if (is_digit(c) || (c == '.' && is_digit(c1)) ||
	    ((c == '+' || c == '-') &&
	        (is_digit(c1) ||
	            (c1 == '.' && p->pos + 2 < n && is_digit((unsigned char)s[p->pos + 2])))))
		return lex_number(p);
	p->tok.len = 1;
	switch (c) {
	case '(':
		p->tok.kind = TOK_LPAREN;
		break;
	case ')':
		p->tok.kind = TOK_RPAREN;
		break;
	case ',':
		p->tok.kind = TOK_COMMA;
		break;
	case ';':
		p->tok.kind = TOK_SEMI;
		break;
	case '*':
		p->tok.kind = TOK_STAR;
		break;
	case '=':
		p->tok.kind = TOK_EQ;
		break;
	case ':':
		if (c1 == '=') {
			p->tok.kind = TOK_COLONEQ;
			p->tok.len = 2;
		} else {
			p->tok.kind = TOK_OTHER;
		}
		break;
	default:
		p->tok.kind = TOK_OTHER;
		break;
	}
	p->pos += p->tok.len;
	return ST_OK;
}

/* Whether the current token is the bare keyword kw (upper case). */
static bool
at_kw(const struct parser *p, const char *kw)
{
	return p->tok.kind == TOK_IDENT && word_eq(p->s + p->tok.off, p->tok.len, kw);
}

static bool
is_reserved(const struct parser *p, const struct token *t)
{
	size_t i;

	if (t->kind != TOK_IDENT)
		return false;
	for (i = 0; i < sizeof(sql_reserved) / sizeof(sql_reserved[0]); i++) {
		if (word_eq(p->s + t->off, t->len, sql_reserved[i]))
			return true;
	}
	return false;
}

/* Consume the keyword kw or fail with a syntax error expecting expect. */
static enum status
expect_kw(struct parser *p, const char *kw, const char *expect)
{
	if (!at_kw(p, kw))
		return fail_syntax(p, expect);
	return lex_next(p);
}

/* Consume a token of kind k or fail with a syntax error expecting expect. */
static enum status
expect_tok(struct parser *p, enum tok_kind k, const char *expect)
{
	if (p->tok.kind != k)
		return fail_syntax(p, expect);
	return lex_next(p);
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
	return p->tok.kind == TOK_QIDENT || (p->tok.kind == TOK_IDENT && !is_reserved(p, &p->tok));
}

/* Take the name at the current token (at_name is true) into *namep and move on. */
static enum status
take_name(struct parser *p, char **namep)
{
	size_t len;
	char *name;

	if (p->tok.kind == TOK_QIDENT && p->tok.len == 2)
		return outcome_set(p->out, ST_INVALID_ARGUMENT, reason_syntax,
		    "zero-length quoted identifier at offset %zu", p->tok.off);
	name = token_text(p, &p->tok, &len);
	if (name == NULL)
		return fail_nomem(p);
	*namep = name;
	return lex_next(p);
}

/* A required secret name. */
static enum status
parse_name(struct parser *p, char **namep)
{
	if (!at_name(p))
		return fail_syntax(p,
		    p->tok.kind == TOK_IDENT
		        ? "a secret name (a keyword used as a name must be double-quoted)"
		        : "a secret name");
	return take_name(p, namep);
}

/* A storage name, memory or sqlcipher (case-insensitive, bare or double-quoted). Leaves the
 * storage's token in *tokp for later errors and moves on. */
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
		return fail_syntax(p, "a storage (memory or sqlcipher)");
	}
	if (word_eq(s, n, "MEMORY"))
		*storagep = SECRETD__V1__STORAGE__STORAGE_MEMORY;
	else if (word_eq(s, n, "SQLCIPHER"))
		*storagep = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	else
		return fail_at(
		    p, &p->tok, reason_storage, "unknown storage", "expected memory or sqlcipher");
	return lex_next(p);
}

/* An option value: a 'string', a bare word or a number, kept as text. A "double quoted"
 * token is an identifier in SQL, never a value: rejected with a hint rather than guessed. */
static enum status
parse_value(struct parser *p, char **valuep, size_t *lenp, const char *expect)
{
	char *v;

	if (p->tok.kind == TOK_QIDENT)
		return fail_at(p, &p->tok, reason_syntax, "double-quoted value",
		    "\"...\" is an identifier; write a value in single quotes ('...')");
	if (p->tok.kind != TOK_STRING && p->tok.kind != TOK_IDENT && p->tok.kind != TOK_NUMBER)
		return fail_syntax(p, expect);
	v = token_text(p, &p->tok, lenp);
	if (v == NULL)
		return fail_nomem(p);
	*valuep = v;
	return lex_next(p);
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
			return fail_nomem(p);
		arr = arena_alloc(p->a, cap * sizeof(*arr));
		if (arr == NULL)
			return fail_nomem(p);
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
		return fail_syntax(p, "a scope in single quotes");
	v = token_text(p, &p->tok, &len);
	if (v == NULL)
		return fail_nomem(p);
	st = push_ptr(p, &arr, &c->n_scope, capp, v);
	c->scope = (char **)arr;
	if (st != ST_OK)
		return st;
	return lex_next(p);
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
		return fail_syntax(p, "a scope in single quotes or a parenthesised list of them");
	if ((st = lex_next(p)) != ST_OK)
		return st;
	if (p->tok.kind == TOK_RPAREN)
		return fail_syntax(
		    p, "a scope in single quotes (the SCOPE list must not be empty)");
	for (;;) {
		if ((st = push_scope(p, c, &cap)) != ST_OK)
			return st;
		if (p->tok.kind == TOK_RPAREN)
			return lex_next(p);
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
	char *value;
	size_t len;

	f = arena_alloc(p->a, sizeof(*f));
	if (f == NULL)
		return fail_nomem(p);
	*f = init;
	f->key = token_text(p, key, &len);
	if (f->key == NULL)
		return fail_nomem(p);
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
		return fail_at(p, key, reason_syntax, msg, NULL);
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

	if ((st = lex_next(p)) != ST_OK)
		return st;
	if (p->tok.kind == TOK_RPAREN)
		return fail_syntax(p, "an option name (the option list must not be empty)");
	for (;;) {
		struct token key = p->tok;

		if (key.kind != TOK_IDENT)
			return fail_syntax(p, "an option name");
		if ((st = lex_next(p)) != ST_OK)
			return st;
		if (word_eq(p->s + key.off, key.len, "TYPE")) {
			st = parse_once(p, &key, "TYPE", &seen_type, &c->type);
		} else if (word_eq(p->s + key.off, key.len, "PROVIDER")) {
			st = parse_once(p, &key, "PROVIDER", &seen_provider, &c->provider);
		} else if (word_eq(p->s + key.off, key.len, "SCOPE")) {
			if (seen_scope)
				return fail_at(
				    p, &key, reason_syntax, "option SCOPE given twice", NULL);
			seen_scope = true;
			st = parse_scope(p, c);
		} else {
			st = push_field(p, c, &field_cap, &key);
		}
		if (st != ST_OK)
			return st;
		if (p->tok.kind == TOK_RPAREN)
			return lex_next(p);
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
	struct token storage_tok = { TOK_END, 0, 0 };
	const char *expect;

	if ((st = lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "OR")) {
		if ((st = lex_next(p)) != ST_OK ||
		    (st = expect_kw(p, "REPLACE", "REPLACE")) != ST_OK)
			return st;
		replace = true;
	}
	if (at_kw(p, "TEMPORARY") || at_kw(p, "TEMP")) {
		temporary = true;
	} else if (at_kw(p, "PERSISTENT")) {
		persistent = true;
	}
	if ((temporary || persistent) && (st = lex_next(p)) != ST_OK)
		return st;
	if ((st = expect_kw(p, "SECRET", "SECRET")) != ST_OK)
		return st;
	if (at_kw(p, "IF")) {
		if (replace)
			return fail_at(p, &p->tok, reason_syntax, "syntax error",
			    "OR REPLACE cannot be combined with IF NOT EXISTS");
		if ((st = lex_next(p)) != ST_OK ||
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
		if ((st = lex_next(p)) != ST_OK ||
		    (st = parse_storage(p, &storage, &storage_tok)) != ST_OK)
			return st;
		if (temporary && storage == SECRETD__V1__STORAGE__STORAGE_SQLCIPHER)
			return fail_at(p, &storage_tok, reason_storage,
			    "a TEMPORARY secret cannot be stored in sqlcipher",
			    "temporary secrets live in memory");
		if (persistent && storage == SECRETD__V1__STORAGE__STORAGE_MEMORY)
			return fail_at(p, &storage_tok, reason_storage,
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
		return fail_syntax(p, expect);
	return parse_options(p, c);
}

/* [FROM storage] of DROP and GET, after the name. temporary/persistent: the statement's
 * keyword, which a storage may contradict. */
static enum status
parse_from_storage(
    struct parser *p, bool temporary, bool persistent, Secretd__V1__Storage *storagep)
{
	enum status st;
	struct token storage_tok = { TOK_END, 0, 0 };

	if (!at_kw(p, "FROM"))
		return ST_OK;
	if (temporary)
		return fail_at(p, &p->tok, reason_storage, "DROP TEMPORARY SECRET takes no FROM",
		    "a temporary secret is always in memory");
	if ((st = lex_next(p)) != ST_OK || (st = parse_storage(p, storagep, &storage_tok)) != ST_OK)
		return st;
	if (persistent && *storagep == SECRETD__V1__STORAGE__STORAGE_MEMORY)
		return fail_at(p, &storage_tok, reason_storage,
		    "a PERSISTENT secret is never in memory",
		    "persistent secrets live in sqlcipher");
	return ST_OK;
}

/* DROP [TEMPORARY|TEMP|PERSISTENT] SECRET [IF EXISTS] name [FROM storage], at DROP. */
static enum status
parse_drop(struct parser *p, Secretd__V1__SecretDrop *d)
{
	enum status st;
	bool temporary = false, persistent = false;

	if ((st = lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "TEMPORARY") || at_kw(p, "TEMP")) {
		temporary = true;
		d->storage = SECRETD__V1__STORAGE__STORAGE_MEMORY;
	} else if (at_kw(p, "PERSISTENT")) {
		persistent = true;
		d->storage = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	}
	if ((temporary || persistent) && (st = lex_next(p)) != ST_OK)
		return st;
	if ((st = expect_kw(p, "SECRET", "SECRET")) != ST_OK)
		return st;
	if (at_kw(p, "IF")) {
		if ((st = lex_next(p)) != ST_OK || (st = expect_kw(p, "EXISTS", "EXISTS")) != ST_OK)
			return st;
		d->if_exists = true;
	}
	if ((st = parse_name(p, &d->name)) != ST_OK)
		return st;
	return parse_from_storage(p, temporary, persistent, &d->storage);
}

/* GET SECRET name [FROM storage], at GET. */
static enum status
parse_get(struct parser *p, Secretd__V1__SecretGet *g)
{
	enum status st;

	if ((st = lex_next(p)) != ST_OK || (st = expect_kw(p, "SECRET", "SECRET")) != ST_OK ||
	    (st = parse_name(p, &g->name)) != ST_OK)
		return st;
	return parse_from_storage(p, false, false, &g->storage);
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
		if ((st = lex_next(p)) != ST_OK)
			return st;
		if (p->tok.kind != TOK_EQ && p->tok.kind != TOK_COLONEQ)
			return fail_syntax(p, "\"=\" or \":=\" after redact");
		if ((st = lex_next(p)) != ST_OK)
			return st;
		if (at_kw(p, "TRUE"))
			l->unredacted = false;
		else if (at_kw(p, "FALSE"))
			l->unredacted = true;
		else
			return fail_syntax(p, "true or false");
		if ((st = lex_next(p)) != ST_OK)
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
		return fail_syntax(p, "a path in single quotes");
	if ((r->path = token_text(p, &p->tok, &len)) == NULL)
		return fail_nomem(p);
	if ((st = lex_next(p)) != ST_OK ||
	    (st = expect_tok(p, TOK_COMMA, "\",\" after the path")) != ST_OK)
		return st;
	if (p->tok.kind != TOK_STRING)
		return fail_syntax(p, "a type in single quotes");
	if ((r->type = token_text(p, &p->tok, &len)) == NULL)
		return fail_nomem(p);
	if ((st = lex_next(p)) != ST_OK)
		return st;
	return expect_tok(p, TOK_RPAREN, "\")\" after the type");
}

/* FROM duckdb_secrets(...) or FROM which_secret(...), at FROM. */
static enum status
parse_from(struct parser *p, struct sql_statement *stmt)
{
	enum status st;

	if ((st = lex_next(p)) != ST_OK)
		return st;
	if (at_kw(p, "DUCKDB_SECRETS")) {
		stmt->kind = SQL_LIST;
		if ((st = lex_next(p)) != ST_OK)
			return st;
		return parse_list_args(p, &stmt->list);
	}
	if (at_kw(p, "WHICH_SECRET")) {
		stmt->kind = SQL_RESOLVE;
		if ((st = lex_next(p)) != ST_OK)
			return st;
		return parse_resolve_args(p, &stmt->resolve);
	}
	return fail_syntax(p, "duckdb_secrets() or which_secret()");
}

static enum status
parse_statement(struct parser *p, struct sql_statement *stmt)
{
	enum status st;

	if ((st = lex_next(p)) != ST_OK)
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
		if ((st = lex_next(p)) != ST_OK ||
		    (st = expect_tok(p, TOK_STAR, "\"*\" after SELECT")) != ST_OK)
			return st;
		if (!at_kw(p, "FROM"))
			return fail_syntax(p, "FROM after SELECT *");
		st = parse_from(p, stmt);
	} else if (at_kw(p, "FROM")) {
		st = parse_from(p, stmt);
	} else {
		return fail_syntax(p, "a statement: CREATE, DROP, GET, SELECT or FROM");
	}
	if (st != ST_OK)
		return st;
	if (p->tok.kind == TOK_SEMI && (st = lex_next(p)) != ST_OK)
		return st;
	if (p->tok.kind != TOK_END)
		return fail_syntax(p, "end of statement (one statement per request)");
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
}

enum status
sql_parse(
    const char *text, size_t len, struct arena *a, struct sql_statement *stmt, struct outcome *out)
{
	struct parser p = {
		.s = text, .n = len, .pos = 0, .string_end = SIZE_MAX, .a = a, .out = out
	};
	const char *nul;
	enum status st;

	statement_init(stmt);
	if (text == NULL) {
		if (len > 0)
			return outcome_set(
			    out, ST_INVALID_ARGUMENT, reason_syntax, "no statement text");
		p.s = "";
	}
	nul = len > 0 ? memchr(p.s, '\0', len) : NULL;
	if (nul != NULL)
		return outcome_set(out, ST_INVALID_ARGUMENT, reason_syntax,
		    "NUL byte at offset %zu", (size_t)(nul - p.s));
	st = parse_statement(&p, stmt);
	if (st != ST_OK)
		statement_init(stmt);
	return st;
}
