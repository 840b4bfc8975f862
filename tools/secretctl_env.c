/*
 * secretctl_env.c: the variables that exec and env (secretctl_exec.c) hand to other
 * programs: which field of which secret goes under which name.
 *
 * The variables are the names the provider tools already read:
 *
 *   openai     api_key        OPENAI_API_KEY
 *              base_url       OPENAI_BASE_URL (only when set)
 *   ollama     api_url        OLLAMA_HOST
 *   azure_llm  api_key        AZURE_OPENAI_API_KEY
 *              resource_name  AZURE_OPENAI_ENDPOINT = https://<resource_name>.openai.azure.com
 *              api_version    OPENAI_API_VERSION
 *
 * --env VAR=[SECRET:]FIELD exports a field (or, for azure_llm, "endpoint") under VAR instead
 * of its default name; --prefix P exports every field as P_FIELD instead (the generic
 * scheme, also used for a type this table does not know).
 *
 * Not here: options, talking to secretd, exec (secretctl_exec.c).
 *
 * Thread safety: single-threaded.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <secretd.h>

#include "secretctl.h"
#include "secretctl_env.h"

/* A default variable: the field it comes from, optionally wrapped. key is what --env
 * names to replace it (the field, or a derived name such as "endpoint"). */
struct env_map {
	const char *type;
	const char *key;
	const char *field;
	const char *var;
	const char *before;
	const char *after;
};

static const struct env_map env_maps[] = {
    {"openai", "api_key", "api_key", "OPENAI_API_KEY", "", ""},
    {"openai", "base_url", "base_url", "OPENAI_BASE_URL", "", ""},
    {"ollama", "api_url", "api_url", "OLLAMA_HOST", "", ""},
    {"azure_llm", "api_key", "api_key", "AZURE_OPENAI_API_KEY", "", ""},
    {"azure_llm", "endpoint", "resource_name", "AZURE_OPENAI_ENDPOINT", "https://",
        ".openai.azure.com"},
    {"azure_llm", "api_version", "api_version", "OPENAI_API_VERSION", "", ""},
};

#define N_ENV_MAPS (sizeof(env_maps) / sizeof(env_maps[0]))

void
env_vars_free(struct env_vars *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		ctl_wipe_free(v->entries[i], v->sizes[i]);
	free(v->entries);
	free(v->sizes);
	free(v->name_lens);
	free(v->from);
	memset(v, 0, sizeof(*v));
}

/* A portable environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool
env_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '_'))
			return false;
	}
	return true;
}

/*
 * Add VAR=before+value+after, from secret `from`. Returns CTL_EXIT_OK, or an exit code
 * after printing why (a variable set twice, a value with a NUL byte, out of memory).
 */
static int
env_add(struct env_vars *v, const char *var, size_t var_len, const char *before,
    const secretd_field *field, const char *after, const char *from)
{
	size_t blen = strlen(before);
	size_t alen = strlen(after);
	size_t size;
	char *entry;
	size_t i;

	if (!env_name_ok(var, var_len))
		return ctl_usage_error(
		    "'%.*s' is not a valid environment variable name", (int)var_len, var);
	if (memchr(field->value, '\0', field->value_len) != NULL) {
		(void)fprintf(stderr,
		    "secretctl: field %s of secret %s holds a NUL byte and cannot go in the "
		    "environment\n",
		    field->key, from);
		return CTL_EXIT_STATUS;
	}
	for (i = 0; i < v->n; i++) {
		if (v->name_lens[i] == var_len && memcmp(v->entries[i], var, var_len) == 0)
			return ctl_usage_error("%.*s would be set from both %s and %s; choose "
			                       "with --env VAR=SECRET:FIELD",
			    (int)var_len, var, v->from[i], from);
	}
	if (v->n == v->cap) {
		size_t ncap = v->cap == 0 ? 8 : v->cap * 2;
		char **e = realloc(v->entries, ncap * sizeof(*e));
		size_t *s, *nl;
		const char **f;

		if (e != NULL)
			v->entries = e;
		s = e != NULL ? realloc(v->sizes, ncap * sizeof(*s)) : NULL;
		if (s != NULL)
			v->sizes = s;
		nl = s != NULL ? realloc(v->name_lens, ncap * sizeof(*nl)) : NULL;
		if (nl != NULL)
			v->name_lens = nl;
		f = nl != NULL ? realloc(v->from, ncap * sizeof(*f)) : NULL;
		if (f == NULL)
			return ctl_usage_error("out of memory");
		v->from = f;
		v->cap = ncap;
	}
	size = var_len + 1 + blen + field->value_len + alen + 1;
	entry = malloc(size);
	if (entry == NULL)
		return ctl_usage_error("out of memory");
	memcpy(entry, var, var_len);
	entry[var_len] = '=';
	memcpy(entry + var_len + 1, before, blen);
	memcpy(entry + var_len + 1 + blen, field->value, field->value_len);
	memcpy(entry + var_len + 1 + blen + field->value_len, after, alen);
	entry[size - 1] = '\0';
	v->entries[v->n] = entry;
	v->sizes[v->n] = size;
	v->name_lens[v->n] = var_len;
	v->from[v->n] = from;
	v->n++;
	return CTL_EXIT_OK;
}

/* The default mapping of (type, key), or NULL. */
static const struct env_map *
env_map_find(const char *type, const char *key)
{
	size_t i;

	for (i = 0; i < N_ENV_MAPS; i++) {
		if (strcmp(env_maps[i].type, type) == 0 && strcmp(env_maps[i].key, key) == 0)
			return &env_maps[i];
	}
	return NULL;
}

/* Whether the type has any default mapping. */
static bool
env_type_known(const char *type)
{
	size_t i;

	for (i = 0; i < N_ENV_MAPS; i++) {
		if (strcmp(env_maps[i].type, type) == 0)
			return true;
	}
	return false;
}

/* What --env key names in secret s: a derived key (endpoint) or a field; NULL if
 * neither. *mapp gets the derived mapping, or NULL for a plain field. */
static const secretd_field *
env_key_source(const secretd_secret *s, const char *key, const struct env_map **mapp)
{
	const struct env_map *m = env_map_find(s->type, key);

	*mapp = NULL;
	if (m != NULL && strcmp(m->key, m->field) != 0) {
		*mapp = m;
		return secretd_secret_field(s, m->field);
	}
	return secretd_secret_field(s, key);
}

/* Whether an --env spec took key of secret s (from[i]: the secret spec i took its value
 * from). */
static bool
env_claimed(const struct env_opts *o, const secretd_secret *const *from, const secretd_secret *s,
    const char *key)
{
	size_t i;

	for (i = 0; i < o->n_specs; i++) {
		if (from[i] == s && strcasecmp(o->specs[i].field, key) == 0)
			return true;
	}
	return false;
}

/*
 * Work out every variable from the secrets (borrowed; n of them, in the order given).
 * Explicit --env specs first, then each secret's defaults for the keys no spec took.
 */
int
env_build(const struct env_opts *o, secretd_secret *const *secrets, size_t n, struct env_vars *v)
{
	/* claimers[i]: the secret spec i took its value from. */
	const secretd_secret **claimers = NULL;
	int rc = CTL_EXIT_OK;
	size_t i, j, k;

	claimers = calloc(o->n_specs + 1, sizeof(*claimers));
	if (claimers == NULL)
		return ctl_usage_error("out of memory");
	for (i = 0; i < o->n_specs; i++) {
		const struct env_spec *sp = &o->specs[i];
		const secretd_field *found = NULL;
		const struct env_map *found_map = NULL;
		const secretd_secret *from = NULL;

		for (j = 0; j < n; j++) {
			const struct env_map *m;
			const secretd_field *f;

			if (sp->secret != NULL && strcasecmp(sp->secret, secrets[j]->name) != 0)
				continue;
			f = env_key_source(secrets[j], sp->field, &m);
			if (f == NULL)
				continue;
			if (from != NULL) {
				rc = ctl_usage_error("--env %s: both %s and %s have %s; write "
				                     "%s=SECRET:%s",
				    sp->var, from->name, secrets[j]->name, sp->field, sp->var,
				    sp->field);
				goto done;
			}
			from = secrets[j];
			found = f;
			found_map = m;
		}
		if (from == NULL) {
			rc = ctl_usage_error(
			    "--env %s: no secret given has a field %s", sp->var, sp->field);
			goto done;
		}
		claimers[i] = from;
		rc =
		    env_add(v, sp->var, strlen(sp->var), found_map != NULL ? found_map->before : "",
		        found, found_map != NULL ? found_map->after : "", from->name);
		if (rc != CTL_EXIT_OK)
			goto done;
	}
	for (j = 0; j < n; j++) {
		const secretd_secret *s = secrets[j];

		if (o->prefix != NULL || !env_type_known(s->type)) {
			const char *prefix = o->prefix != NULL ? o->prefix : s->type;

			for (k = 0; k < s->n_fields; k++) {
				const secretd_field *f = &s->fields[k];
				char var[320];
				int len;
				char *p;

				if (f->value_len == 0 || env_claimed(o, claimers, s, f->key))
					continue;
				len = snprintf(var, sizeof(var), "%s_%s", prefix, f->key);
				if (len < 0 || (size_t)len >= sizeof(var)) {
					rc = ctl_usage_error("--prefix: too long");
					goto done;
				}
				for (p = var; *p != '\0'; p++) {
					if (*p >= 'a' && *p <= 'z')
						*p = (char)(*p - 'a' + 'A');
					else if (!((*p >= 'A' && *p <= 'Z') ||
					             (*p >= '0' && *p <= '9')))
						*p = '_';
				}
				rc = env_add(v, var, (size_t)len, "", f, "", s->name);
				if (rc != CTL_EXIT_OK)
					goto done;
			}
			continue;
		}
		for (k = 0; k < N_ENV_MAPS; k++) {
			const struct env_map *m = &env_maps[k];
			const secretd_field *f;

			if (strcmp(m->type, s->type) != 0 || env_claimed(o, claimers, s, m->key))
				continue;
			f = secretd_secret_field(s, m->field);
			if (f == NULL || f->value_len == 0)
				continue;
			rc = env_add(v, m->var, strlen(m->var), m->before, f, m->after, s->name);
			if (rc != CTL_EXIT_OK)
				goto done;
		}
	}
done:
	free(claimers);
	return rc;
}
