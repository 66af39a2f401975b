/* flags.c - see flags.h. */
#include "config.h"

#include "flags.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *perch_flag_kind_name(uint32_t kind)
{
	switch (kind) {
	case PERCH_FLAG_STRING: return "string";
	case PERCH_FLAG_BOOL: return "bool";
	case PERCH_FLAG_INT: return "int";
	case PERCH_FLAG_DURATION: return "duration";
	case PERCH_FLAG_STRING_LIST: return "list";
	default: return "unknown";
	}
}

perch_cli *perch_cli_new(void)
{
	return perch_xcalloc(1, sizeof(perch_cli));
}

static void free_list(perch_flagdef *d)
{
	for (size_t i = 0; i < d->n_list; i++)
		free(d->list[i]);
	free(d->list);
	d->list = NULL;
	d->n_list = 0;
}

static void free_def(perch_flagdef *d)
{
	free(d->name);
	for (size_t i = 0; i < d->n_env; i++)
		free(d->env[i]);
	free(d->env);
	free(d->default_value);
	free(d->usage);
	free(d->owner);
	free(d->owner_path);
	free(d->config_key);
	free(d->arg);
	free(d->where);
	free(d->str);
	free_list(d);
}

void perch_cli_free(perch_cli *cli)
{
	if (cli == NULL)
		return;
	for (size_t i = 0; i < cli->n; i++)
		free_def(&cli->defs[i]);
	free(cli->defs);
	free(cli);
}

perch_flagdef *perch_cli_find(const perch_cli *cli, const char *name)
{
	for (size_t i = 0; i < cli->n; i++)
		if (strcmp(cli->defs[i].name, name) == 0)
			return &cli->defs[i];
	return NULL;
}

static perch_flagdef *push(perch_cli *cli, const perch_flag *f, const char *owner,
			   const char *path, char *config_key)
{
	cli->defs = perch_xrealloc(cli->defs, (cli->n + 1) * sizeof *cli->defs);
	perch_flagdef *d = &cli->defs[cli->n++];
	memset(d, 0, sizeof *d);
	d->name = perch_xstrdup(f->name);
	d->kind = f->kind;
	if (f->env)
		for (const char *const *e = f->env; *e; e++) {
			d->env = perch_xrealloc(d->env, (d->n_env + 1) * sizeof *d->env);
			d->env[d->n_env++] = perch_xstrdup(*e);
		}
	d->default_value = f->default_value ? perch_xstrdup(f->default_value) : NULL;
	d->usage = perch_xstrdup(f->usage ? f->usage : "");
	d->owner = perch_xstrdup(owner);
	d->owner_path = path ? perch_xstrdup(path) : NULL;
	d->config_key = config_key;
	return d;
}

void perch_cli_add_host(perch_cli *cli, const perch_flag *flag, const char *config_key)
{
	push(cli, flag, "perch", NULL, config_key ? perch_xstrdup(config_key) : NULL);
}

char *perch_flag_config_key(const char *plugin, const char *flag_name)
{
	size_t pl = strlen(plugin);
	if (strncmp(flag_name, "backend-", 8) != 0 || strncmp(flag_name + 8, plugin, pl) != 0 ||
	    flag_name[8 + pl] != '-' || flag_name[9 + pl] == '\0')
		return NULL;
	char *key = perch_xstrdup(flag_name + 9 + pl);
	for (char *p = key; *p; p++)
		if (*p == '-')
			*p = '_';
	return key;
}

static bool valid_flag_name(const char *s)
{
	if (s == NULL || *s == '\0' || *s == '-')
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on", "t", "TRUE", "True"};
	static const char *const no[] = {"false", "0", "no", "off", "f", "FALSE", "False"};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
		if (strcmp(s, yes[i]) == 0)
			return *out = true, true;
	for (size_t i = 0; i < sizeof no / sizeof *no; i++)
		if (strcmp(s, no[i]) == 0)
			return *out = false, true;
	return false;
}

char *perch_flag_parse(perch_flagdef *d, const char *text)
{
	free(d->str);
	d->str = perch_xstrdup(text);
	switch (d->kind) {
	case PERCH_FLAG_STRING:
		return NULL;
	case PERCH_FLAG_BOOL:
		if (!parse_bool(text, &d->b))
			return perch_xstrdup("not a boolean (true or false)");
		return NULL;
	case PERCH_FLAG_INT: {
		char *end;
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (*text == '\0' || *end != '\0' || isspace((unsigned char)*text))
			return perch_xstrdup("not an integer");
		if (errno == ERANGE)
			return perch_xstrdup("integer out of range");
		d->i = v;
		return NULL;
	}
	case PERCH_FLAG_DURATION:
		if (!perch_parse_duration(text, &d->i))
			return perch_xstrdup("not a duration (for example 30s, 1m30s, 250ms)");
		return NULL;
	case PERCH_FLAG_STRING_LIST: {
		free_list(d);
		const char *p = text;
		while (*text) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			d->list = perch_xrealloc(d->list, (d->n_list + 1) * sizeof *d->list);
			d->list[d->n_list++] = perch_xstrndup(p, n);
			if (!comma)
				break;
			p = comma + 1;
		}
		return NULL;
	}
	default:
		return perch_xasprintf("flag kind %u is unknown", d->kind);
	}
}

static const char *owner_desc(const perch_flagdef *d, char *buf, size_t n)
{
	if (d->owner_path)
		snprintf(buf, n, "%s (%s)", d->owner, d->owner_path);
	else
		snprintf(buf, n, "%s", d->owner);
	return buf;
}

int perch_cli_add_plugin(perch_cli *cli, const char *plugin, const char *path,
			 const perch_flag *const *flags, char **err)
{
	if (flags == NULL)
		return 0;
	size_t count = 0;
	for (const perch_flag *const *f = flags; *f; f++, count++) {
		const perch_flag *fl = *f;
		if (fl->struct_size < sizeof(perch_flag)) {
			*err = perch_xasprintf("flag #%zu has struct_size %u, smaller than the "
					       "v1.0 size %zu", count, fl->struct_size,
					       sizeof(perch_flag));
			return -1;
		}
		if (!valid_flag_name(fl->name)) {
			*err = perch_xasprintf("flag #%zu has an invalid name \"%s\" (want "
					       "lower-case letters, digits, '-' and '_')",
					       count, fl->name ? fl->name : "(null)");
			return -1;
		}
		char *key = perch_flag_config_key(plugin, fl->name);
		if (key == NULL) {
			*err = perch_xasprintf("flag --%s must be named backend-%s-<key>",
					       fl->name, plugin);
			return -1;
		}
		free(key);
		if (fl->kind < PERCH_FLAG_STRING || fl->kind > PERCH_FLAG_STRING_LIST) {
			*err = perch_xasprintf("flag --%s has unknown kind %u", fl->name, fl->kind);
			return -1;
		}
		if (fl->default_value) {
			perch_flagdef tmp = {.kind = fl->kind};
			char *why = perch_flag_parse(&tmp, fl->default_value);
			free(tmp.str);
			free_list(&tmp);
			if (why) {
				*err = perch_xasprintf("flag --%s has a bad default \"%s\": %s",
						       fl->name, fl->default_value, why);
				free(why);
				return -1;
			}
		}
		for (const perch_flag *const *g = flags; g != f; g++)
			if (strcmp((*g)->name, fl->name) == 0) {
				*err = perch_xasprintf("flag --%s is declared twice", fl->name);
				return -1;
			}
		const perch_flagdef *other = perch_cli_find(cli, fl->name);
		if (other) {
			char a[512];
			*err = perch_xasprintf("flag --%s is declared by both %s and %s (%s)",
					       fl->name, owner_desc(other, a, sizeof a), plugin,
					       path ? path : "?");
			return -1;
		}
	}
	for (const perch_flag *const *f = flags; *f; f++) {
		char *key = perch_flag_config_key(plugin, (*f)->name);
		char *full = perch_xasprintf("backends.%s.%s", plugin, key);
		free(key);
		push(cli, *f, plugin, path, full);
	}
	return 0;
}

void perch_cli_remove_owner(perch_cli *cli, const char *owner)
{
	size_t j = 0;
	for (size_t i = 0; i < cli->n; i++) {
		if (strcmp(cli->defs[i].owner, owner) == 0)
			free_def(&cli->defs[i]);
		else
			cli->defs[j++] = cli->defs[i];
	}
	cli->n = j;
}

int perch_cli_set_arg(perch_cli *cli, const char *name, const char *value, char **err)
{
	perch_flagdef *d = perch_cli_find(cli, name);
	if (d == NULL) {
		*err = perch_xasprintf("unknown option --%s", name);
		return -1;
	}
	free(d->arg);
	d->arg = perch_xstrdup(value);
	return 0;
}

/* The textual value of a libconfig scalar, checked against the flag's kind.
 * Lists come back in *list instead. */
static char *conf_value(const perch_conf *conf, const perch_flagdef *d, config_setting_t *s,
			char **text, char ***list, size_t *n_list)
{
	int t = config_setting_type(s);
	const char *want = NULL;
	*text = NULL;
	switch (d->kind) {
	case PERCH_FLAG_STRING:
	case PERCH_FLAG_DURATION:
		if (t == CONFIG_TYPE_STRING)
			*text = perch_xstrdup(config_setting_get_string(s));
		else
			want = d->kind == PERCH_FLAG_STRING ? "a string"
							    : "a duration string such as \"30s\"";
		break;
	case PERCH_FLAG_BOOL:
		if (t == CONFIG_TYPE_BOOL)
			*text = perch_xstrdup(config_setting_get_bool(s) ? "true" : "false");
		else
			want = "a boolean";
		break;
	case PERCH_FLAG_INT:
		if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
			*text = perch_xasprintf("%lld", config_setting_get_int64(s));
		else
			want = "an integer";
		break;
	case PERCH_FLAG_STRING_LIST:
		if (t == CONFIG_TYPE_STRING) {
			*text = perch_xstrdup(config_setting_get_string(s));
		} else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
			int len = config_setting_length(s);
			*list = perch_xcalloc((size_t)len + 1, sizeof **list);
			*n_list = 0;
			for (int i = 0; i < len; i++) {
				config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
				if (config_setting_type(e) != CONFIG_TYPE_STRING) {
					want = "a list of strings";
					break;
				}
				(*list)[(*n_list)++] = perch_xstrdup(config_setting_get_string(e));
			}
			if (want == NULL)
				*text = perch_xstrdup("");
		} else {
			want = "a list of strings";
		}
		break;
	}
	if (want) {
		char *w = perch_conf_where(conf, s);
		char *e = perch_xasprintf("%s: %s: expected %s, got %s", w, d->config_key, want,
					  perch_conf_type_name(s));
		free(w);
		return e;
	}
	return NULL;
}

/* text in double quotes for a one-line message: a value from the
 * environment or a config string may hold a newline (found by
 * tests/fuzz/fuzz_conf.c), which would split the error in two.  Quotes,
 * backslashes and control bytes are escaped; everything else is kept.
 * malloc'd. */
static char *quoted(const char *text)
{
	static const char hex[] = "0123456789abcdef";
	perch_buf b = {0};
	perch_buf_putc(&b, '"');
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '"' || *p == '\\') {
			perch_buf_putc(&b, '\\');
			perch_buf_putc(&b, (char)*p);
		} else if (*p == '\n') {
			perch_buf_puts(&b, "\\n");
		} else if (*p == '\t') {
			perch_buf_puts(&b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			char esc[5] = {'\\', 'x', hex[*p >> 4], hex[*p & 15], '\0'};
			perch_buf_puts(&b, esc);
		} else {
			perch_buf_putc(&b, (char)*p);
		}
	}
	perch_buf_putc(&b, '"');
	return perch_buf_steal(&b);
}

int perch_cli_resolve(perch_cli *cli, const perch_conf *conf, char **err)
{
	for (size_t i = 0; i < cli->n; i++) {
		perch_flagdef *d = &cli->defs[i];
		const char *text = NULL;
		char *owned = NULL;
		char **list = NULL;
		size_t n_list = 0;
		free(d->where);
		d->where = NULL;
		d->source = PERCH_SRC_NONE;
		if (d->arg) {
			text = d->arg;
			d->source = PERCH_SRC_CLI;
			d->where = perch_xasprintf("--%s", d->name);
		}
		for (size_t e = 0; !text && e < d->n_env; e++) {
			const char *v = getenv(d->env[e]);
			if (v) {
				text = v;
				d->source = PERCH_SRC_ENV;
				d->where = perch_xasprintf("environment variable %s", d->env[e]);
			}
		}
		if (!text && conf && conf->path && d->config_key) {
			config_setting_t *s = config_lookup((config_t *)&conf->cfg, d->config_key);
			if (s) {
				char *e = conf_value(conf, d, s, &owned, &list, &n_list);
				if (e) {
					for (size_t k = 0; k < n_list; k++)
						free(list[k]);
					free(list);
					*err = e;
					return -1;
				}
				text = owned;
				d->source = PERCH_SRC_CONFIG;
				d->where = perch_conf_where(conf, s);
			}
		}
		if (!text && d->default_value) {
			text = d->default_value;
			d->source = PERCH_SRC_DEFAULT;
			d->where = perch_xstrdup("default");
		}
		if (!text)
			continue;
		char *why = perch_flag_parse(d, text);
		if (why) {
			char *q = quoted(text);
			*err = perch_xasprintf("invalid value %s for --%s (from %s): %s", q,
					       d->name, d->where, why);
			free(q);
			free(why);
			free(owned);
			return -1;
		}
		if (list) {
			free_list(d);
			d->list = list;
			d->n_list = n_list;
		}
		free(owned);
	}
	return 0;
}

int perch_cli_check_conf(const perch_cli *cli, const perch_conf *conf, char **err)
{
	if (conf == NULL || conf->backends == NULL)
		return 0;
	int n = config_setting_length(conf->backends);
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(conf->backends, (unsigned)i);
		const char *plugin = config_setting_name(g);
		bool known = false;
		for (size_t k = 0; k < cli->n && !known; k++)
			known = strcmp(cli->defs[k].owner, plugin) == 0;
		char *w = perch_conf_where(conf, g);
		if (!config_setting_is_group(g)) {
			*err = perch_xasprintf("%s: backends.%s: expected a group, got %s", w, plugin,
					       perch_conf_type_name(g));
			free(w);
			return -1;
		}
		int m = config_setting_length(g);
		for (int j = 0; j < m; j++) {
			config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
			char *key = perch_xasprintf("backends.%s.%s", plugin, config_setting_name(s));
			bool found = false;
			const perch_flagdef *def = NULL;
			for (size_t k = 0; k < cli->n && !found; k++) {
				found = cli->defs[k].config_key &&
					strcmp(cli->defs[k].config_key, key) == 0;
				if (found)
					def = &cli->defs[k];
			}
			if (found) {
				char *text = NULL, **list = NULL;
				size_t n_list = 0;
				char *e = conf_value(conf, def, s, &text, &list, &n_list);
				free(text);
				for (size_t k = 0; k < n_list; k++)
					free(list[k]);
				free(list);
				if (e) {
					*err = e;
					free(key);
					free(w);
					return -1;
				}
			}
			if (!found) {
				char *ws = perch_conf_where(conf, s);
				char *flag = perch_xstrdup(config_setting_name(s));
				for (char *p = flag; *p; p++)
					if (*p == '_')
						*p = '-';
				if (!known)
					*err = perch_xasprintf("%s: %s: no installed backend \"%s\" "
							       "declares flags", ws, key, plugin);
				else
					*err = perch_xasprintf("%s: unknown key \"%s\": backend %s has "
							       "no flag --backend-%s-%s",
							       ws, key, plugin, plugin, flag);
				free(flag);
				free(ws);
				free(key);
				free(w);
				return -1;
			}
			free(key);
		}
		free(w);
	}
	return 0;
}
