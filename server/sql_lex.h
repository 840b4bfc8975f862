/*
 * sql_lex.h: the interface between the two halves of the statement parser: the lexer and
 * error reporting (sql_lex.c) and the recursive-descent grammar (sql.c). Not part of sql.h:
 * only sql.c and sql_lex.c include it.
 *
 * What it does not do: no grammar (sql.c); no allocation (the parser copies token text into
 * its arena itself).
 *
 * Thread-safety: no global mutable state; a struct parser belongs to one sql_parse call.
 */
#ifndef SECRETD_SERVER_SQL_LEX_H
#define SECRETD_SERVER_SQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "status.h"

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
	size_t etcd_off; /* where a storage named etcd was read; SIZE_MAX: none */
};

/* Whether s[0..n) equals the upper-case word w (NUL-terminated), ignoring ASCII case. Both
 * borrowed. */
bool sql_word_eq(const char *s, size_t n, const char *w);

/* Whether t (borrowed, a token of p's text) is a bare word that cannot be a secret name: a
 * keyword of the grammar, option keys included. */
bool sql_is_reserved(const struct parser *p, const struct token *t);

/* Skip white space and `--` comments, then scan the next token into p->tok. Returns ST_OK,
 * or ST_INVALID_ARGUMENT (reason "SYNTAX", set in p->out) for an unterminated quote or a
 * malformed number. */
enum status sql_lex_next(struct parser *p);

/* Fail with "<what> at or near <token> (offset N)[: <detail>]" and the given reason; t
 * describes the token without echoing what may be a secret. detail may be NULL. Everything is borrowed. Sets p->out and returns ST_INVALID_ARGUMENT. */
enum status sql_fail_at(struct parser *p, const struct token *t, enum reason reason,
    const char *what, const char *detail);

/* Fail with "syntax error at or near <current token> (offset N): expected <expect>".
 * Sets p->out and returns ST_INVALID_ARGUMENT (reason "SYNTAX"). */
enum status sql_fail_syntax(struct parser *p, const char *expect);

/* Fail because the arena could not allocate. Sets p->out and returns ST_RESOURCE_EXHAUSTED
 * (reason "NO_MEMORY"). */
enum status sql_fail_nomem(struct parser *p);

#endif
