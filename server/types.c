/*
 * types.c: the secret model's tables and the secret_string column. See types.h.
 */
#include "types.h"

#include <string.h>

static const struct type_def type_defs[] = {
    {
        .type = "openai",
        .default_name = "__default_openai",
        .default_scope = "openai://",
        .fields = {"api_key", "base_url"},
        .required = {"api_key"},
        .redacted = {"api_key"},
    },
    {
        .type = "ollama",
        .default_name = "__default_ollama",
        .default_scope = "ollama://",
        .fields = {"api_url"},
        .required = {"api_url"},
        .redacted = {"api_url"},
    },
    {
        .type = "azure_llm",
        .default_name = "__default_azure",
        .default_scope = "azure_llm://",
        .fields = {"api_key", "resource_name", "api_version"},
        .required = {"api_key", "resource_name", "api_version"},
        .redacted = {"api_key"},
    },
};

const char *
type_names(struct arena *a)
{
	size_t n = 0;
	char *out, *p;

	for (size_t i = 0; i < sizeof(type_defs) / sizeof(type_defs[0]); i++)
		n += strlen(type_defs[i].type) + 2;
	out = arena_alloc(a, n + 1);
	if (out == NULL)
		return "the known types";
	p = out;
	for (size_t i = 0; i < sizeof(type_defs) / sizeof(type_defs[0]); i++) {
		size_t len = strlen(type_defs[i].type);

		if (i > 0) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		memcpy(p, type_defs[i].type, len);
		p += len;
	}
	*p = '\0';
	return out;
}

static bool
in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; i < MAX_TYPE_FIELDS && list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

const struct type_def *
type_find(const char *lower)
{
	for (size_t i = 0; i < sizeof(type_defs) / sizeof(type_defs[0]); i++)
		if (strcmp(type_defs[i].type, lower) == 0)
			return &type_defs[i];
	return NULL;
}

bool
type_declares(const struct type_def *td, const char *key)
{
	return in_list(td->fields, key);
}

/* Build the secret_string column of a listing row. */
/* Append n bytes at *pp and advance it. */
static void
put(char **pp, const void *src, size_t n)
{
	memcpy(*pp, src, n);
	*pp += n;
}

#define PUT_LIT(pp, lit) put((pp), (lit), sizeof(lit) - 1)

char *
type_secret_string(struct arena *a, const struct store_secret *s, bool unredacted)
{
	const struct type_def *td = type_find(s->type);
	size_t name_len = strlen(s->name);
	size_t type_len = strlen(s->type);
	size_t len;
	char *buf;
	char *p;

	/* Built with memcpy from measured lengths: on a listing this runs once per row, and
	 * sprintf's format parsing was most of a List's cost. */
	len = sizeof("name=;type=;provider=config;serializable=true;scope=") + name_len + type_len;
	for (size_t i = 0; i < s->n_scope; i++)
		len += strlen(s->scope[i]) + 1;
	for (size_t i = 0; i < s->n_fields; i++)
		len += 2 + strlen(s->fields[i].key) +
		       (s->fields[i].value_len > 8 ? s->fields[i].value_len : 8);
	buf = arena_alloc(a, len + 1);
	if (buf == NULL)
		return NULL;
	p = buf;
	PUT_LIT(&p, "name=");
	put(&p, s->name, name_len);
	PUT_LIT(&p, ";type=");
	put(&p, s->type, type_len);
	PUT_LIT(&p, ";provider=config;serializable=true;scope=");
	for (size_t i = 0; i < s->n_scope; i++) {
		if (i > 0)
			PUT_LIT(&p, ",");
		put(&p, s->scope[i], strlen(s->scope[i]));
	}
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct store_field *f = &s->fields[i];

		PUT_LIT(&p, ";");
		put(&p, f->key, strlen(f->key));
		PUT_LIT(&p, "=");
		if (!unredacted && td != NULL && in_list(td->redacted, f->key))
			PUT_LIT(&p, "redacted");
		else
			put(&p, f->value, f->value_len);
	}
	*p = '\0';
	return buf;
}
