/*
 * sql_lex.c: the lexer of the statement dialect (SPEC §3) and the error reporting that the
 * lexer and the parser (sql.c) share. See sql.h for the contract, sql_lex.h for the
 * interface between the two halves.
 *
 * The lexer produces one token at a time on demand (one token of lookahead is all the
 * grammar needs); quoted tokens keep their quotes and are unescaped only when the parser
 * keeps their text, straight into the arena.
 *
 * Error messages describe a token without echoing anything that may be part of a secret
 * value (see describe and sql.h).
 *
 * Not done here: any grammar (sql.c); block comments (/ * ... * /), which SPEC §3 does not
 * allow.
 *
 * Thread-safety: no global mutable state; see sql.h.
 */
#include "sql_lex.h"

#include "utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Identifiers longer than this are cut (at a UTF-8 boundary) when echoed in a message. */
enum { SQL_ECHO_MAX = 64 };

/* Words that cannot be a bare secret name: every keyword of the grammar, including the
 * option keys, so that `CREATE SECRET TYPE openai` is reported at TYPE. */
static const char *const sql_reserved[] = {"CREATE", "OR", "REPLACE", "TEMPORARY", "TEMP",
    "PERSISTENT", "SECRET", "IF", "NOT", "EXISTS", "IN", "DROP", "FROM", "SELECT", "GET", "TYPE",
    "PROVIDER", "SCOPE"};

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
bool
sql_word_eq(const char *s, size_t n, const char *w)
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
enum status
sql_fail_at(struct parser *p, const struct token *t, enum reason reason, const char *what,
    const char *detail)
{
	char desc[96];

	describe(p, t, desc, sizeof(desc));
	return outcome_set(p->out, ST_INVALID_ARGUMENT, reason, "%s %s %s (offset %zu)%s%s", what,
	    t->kind == TOK_END ? "at" : "at or near", desc, t->off, detail ? ": " : "",
	    detail ? detail : "");
}

/* Fail with "syntax error at or near <current token> (offset N): expected <expect>". */
enum status
sql_fail_syntax(struct parser *p, const char *expect)
{
	char detail[256];

	(void)snprintf(detail, sizeof(detail), "expected %s", expect);
	return sql_fail_at(p, &p->tok, REASON_SYNTAX, "syntax error", detail);
}

enum status
sql_fail_nomem(struct parser *p)
{
	return outcome_set(p->out, ST_RESOURCE_EXHAUSTED, REASON_NO_MEMORY,
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
			return outcome_set(p->out, ST_INVALID_ARGUMENT, REASON_SYNTAX,
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
		return outcome_set(p->out, ST_INVALID_ARGUMENT, REASON_SYNTAX,
		    "malformed number at offset %zu", start);
	p->tok.kind = TOK_NUMBER;
	p->tok.off = start;
	p->tok.len = i - start;
	p->pos = i;
	return ST_OK;
}

/* Skip white space and `--` comments, then scan the next token into p->tok. */
enum status
sql_lex_next(struct parser *p)
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

bool
sql_is_reserved(const struct parser *p, const struct token *t)
{
	size_t i;

	if (t->kind != TOK_IDENT)
		return false;
	for (i = 0; i < sizeof(sql_reserved) / sizeof(sql_reserved[0]); i++) {
		if (sql_word_eq(p->s + t->off, t->len, sql_reserved[i]))
			return true;
	}
	return false;
}
