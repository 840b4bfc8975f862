/*
 * types.c: the secret model's tables and the secret_string column. See types.h.
 */
#include "types.h"

#include <stdio.h>
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
char *
type_secret_string(struct arena *a, const struct store_secret *s, bool unredacted)
{
	const struct type_def *td = type_find(s->type);
	size_t len = 0;
	char *buf;
	char *p;

	len += strlen("name=") + strlen(s->name) + strlen(";type=") + strlen(s->type) +
	       strlen(";provider=config;serializable=true;scope=");
	for (size_t i = 0; i < s->n_scope; i++)
		len += strlen(s->scope[i]) + 1;
	for (size_t i = 0; i < s->n_fields; i++)
		len += 1 + strlen(s->fields[i].key) + 1 +
		       (s->fields[i].value_len > 8 ? s->fields[i].value_len : 8);
	buf = arena_alloc(a, len + 1);
	if (buf == NULL)
		return NULL;
	p = buf;
	p += sprintf(p, "name=%s;type=%s;provider=config;serializable=true;scope=", s->name,
	    s->type);
	for (size_t i = 0; i < s->n_scope; i++)
		p += sprintf(p, "%s%s", i > 0 ? "," : "", s->scope[i]);
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct store_field *f = &s->fields[i];
		bool redact = !unredacted && td != NULL && in_list(td->redacted, f->key);

		p += sprintf(p, ";%s=", f->key);
		if (redact) {
			p += sprintf(p, "redacted");
		} else {
			memcpy(p, f->value, f->value_len);
			p += f->value_len;
			*p = '\0';
		}
	}
	return buf;
}

