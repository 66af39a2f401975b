/* workflow_json.c - from bytes to a checked workflow: the checks json-c
 * does not make (encoding, NUL), tokenising with line/column errors, then
 * workflow_decode.c.  See workflow.h. */
#include "config.h"

#include "workflow_priv.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static char *positional(const char *source, const char *data, size_t off, const char *what)
{
	size_t line, column;
	perch_json_position(data, off, &line, &column);
	return perch_xasprintf("%s: line %zu, column %zu: %s", source, line, column, what);
}

/* Refuses bytes that are not UTF-8 and raw NUL bytes.  json-c validates
 * UTF-8 only loosely (it takes overlong forms and encoded surrogates) and
 * stops at a NUL, reporting "unexpected end of data": both are worth a
 * precise message.  Returns the offset of the first bad byte or len. */
static size_t bad_byte(const char *data, size_t len, const char **why)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n;
		if (p[i] == 0) {
			*why = "NUL byte in the document";
			return i;
		}
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		n = perch_utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			*why = "invalid UTF-8";
			return i;
		}
		i += n;
	}
	return len;
}

/* What json-c accepts but JSON is not: \u0000 escapes (json-c would cut
 * an object key short at the NUL and keep it inside values; C strings can
 * carry neither) and, even in strict mode, single-quoted object names.
 * Run on text json-c has accepted, where the state below is exact up to the
 * first such thing.  Returns its offset and sets *why, or returns len. */
static size_t not_json(const char *data, size_t len, const char **why)
{
	bool in_string = false;
	size_t i;
	for (i = 0; i < len; i++) {
		char c = data[i];
		if (in_string) {
			if (c == '"') {
				in_string = false;
			} else if (c == '\\') {
				if (i + 5 < len && memcmp(data + i + 1, "u0000", 5) == 0) {
					*why = "string contains \\u0000 (a NUL character, which "
					       "perch cannot pass on)";
					return i;
				}
				i++; /* the escaped character, which may be a quote */
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == '\'') {
			*why = "single quotes are not JSON; use double quotes";
			return i;
		}
	}
	return len;
}

static bool only_space(const char *data, size_t len)
{
	size_t i;
	for (i = 0; i < len; i++)
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
			return false;
	return true;
}

/* Parses the document into *root (NULL for a document that is just
 * null).  On a syntax error returns false and sets *err. */
static bool tokenise(const char *data, size_t len, const char *source, json_object **root,
		     char **err)
{
	json_tokener *tok = json_tokener_new_ex(PERCH_WORKFLOW_MAX_DEPTH);
	enum json_tokener_error jerr;
	size_t off;

	*root = NULL;
	if (tok == NULL) {
		*err = perch_xasprintf("%s: out of memory", source);
		return false;
	}
	/* Strict: no comments, single quotes or trailing commas (Go's
	 * decoder takes none of them), nothing after the document. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	*root = json_tokener_parse_ex(tok, data, (int)len);
	jerr = json_tokener_get_error(tok);
	off = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* The end of input, so that a trailing number completes and an
		 * unfinished document is reported where it stops. */
		*root = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		off = len;
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		if (jerr == json_tokener_error_depth) {
			char *what = perch_xasprintf("nesting too deep (more than %d levels)",
						     PERCH_WORKFLOW_MAX_DEPTH);
			*err = positional(source, data, off, what);
			free(what);
		} else {
			*err = positional(source, data, off, json_tokener_error_desc(jerr));
		}
		json_object_put(*root);
		*root = NULL;
		return false;
	}
	return true;
}

perch_workflow *perch_workflow_parse(const char *data, size_t len, const char *source,
				     char **err)
{
	perch_workflow *wf;
	json_object *root;
	const char *why = NULL;
	size_t off;

	*err = NULL;
	if (source == NULL)
		source = "<input>";
	if (data == NULL)
		len = 0;
	/* RFC 8259 lets a parser ignore a byte order mark; editors add one. */
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;
		len -= 3;
	}
	/* json-c takes an int length, and the final NUL we may feed it. */
	if (len >= (size_t)INT_MAX) {
		*err = perch_xasprintf("%s: document too large (%zu bytes; the limit is %d)",
				       source, len, INT_MAX - 1);
		return NULL;
	}
	off = bad_byte(data, len, &why);
	if (off < len) {
		*err = positional(source, data, off, why);
		return NULL;
	}
	if (only_space(data, len)) {
		*err = perch_xasprintf("%s: empty document", source);
		return NULL;
	}
	if (!tokenise(data, len, source, &root, err))
		return NULL;
	off = not_json(data, len, &why);
	if (off < len) {
		*err = positional(source, data, off, why);
		json_object_put(root);
		return NULL;
	}

	wf = perch_xcalloc(1, sizeof *wf);
	wf->priv = perch_xcalloc(1, sizeof *wf->priv);
	if (!perch_workflow_decode(wf, root, source, err)) {
		json_object_put(root);
		perch_workflow_free(wf);
		return NULL;
	}
	json_object_put(root);
	return wf;
}

perch_workflow *perch_workflow_load(const char *path, char **err)
{
	size_t len = 0;
	char *data;
	perch_workflow *wf;
	bool is_stdin = strcmp(path, "-") == 0;

	*err = NULL;
	data = perch_read_file(path, &len, err);
	if (data == NULL)
		return NULL;
	wf = perch_workflow_parse(data, len, is_stdin ? "<stdin>" : path, err);
	free(data);
	return wf;
}

void perch_workflow_free(perch_workflow *wf)
{
	if (wf == NULL)
		return;
	if (wf->priv != NULL) {
		perch_index_free(&wf->priv->uuids);
		perch_arena_free(&wf->priv->arena);
		free(wf->priv);
	}
	free(wf);
}

const perch_step *perch_workflow_find_step(const perch_workflow *wf, const char *uuid,
					   size_t *stage_index)
{
	const perch_index_entry *e = perch_index_get(&wf->priv->uuids, uuid);
	if (e == NULL)
		return NULL;
	if (stage_index != NULL)
		*stage_index = e->a;
	return wf->config.stages[e->a]->steps[e->b];
}
