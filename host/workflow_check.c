/* workflow_check.c - the depends_on rules of one stage: every name refers
 * to exactly one other step of the same stage, and the steps form no cycle.
 *
 * Linear in steps plus dependencies (a hash for names, an iterative
 * depth-first search for cycles), so a stage of ten thousand steps chained
 * one to the next neither takes quadratic time nor recurses ten thousand
 * frames deep. */
#include "config.h"

#include "workflow_priv.h"

#include <stdlib.h>
#include <string.h>

/* A name as it appears in a cycle report: bare when that is unambiguous
 * and stays on one line, JSON-quoted otherwise. */
static void put_name(perch_buf *b, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	bool bare = *p != '\0' && strstr(name, " -> ") == NULL;
	for (; bare && *p; p++)
		if (*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
			bare = false;
	if (bare)
		perch_buf_puts(b, name);
	else
		perch_json_put_message_string(b, name);
}

static char *quote(const char *s)
{
	perch_buf b = {0};
	perch_json_put_message_string(&b, s);
	return perch_buf_steal(&b);
}

/* Resolves every depends_on entry to a step index: off[i]..off[i+1] in to[]
 * are the steps that step i depends on. */
static bool resolve(const perch_stage *stage, const perch_index *names, size_t *off,
		    size_t *to, char **rel_path, char **what)
{
	size_t i, j, m = 0;
	for (i = 0; i < stage->n_steps; i++) {
		const perch_step *st = stage->steps[i];
		off[i] = m;
		for (j = 0; j < st->depends_on.len; j++) {
			const char *dep = st->depends_on.items[j];
			const perch_index_entry *e = perch_index_get(names, dep);
			char *q;
			if (e != NULL && e->b == 1 && e->a != i) {
				to[m++] = e->a;
				continue;
			}
			*rel_path = perch_xasprintf(".steps[%zu].depends_on[%zu]", i, j);
			q = quote(dep);
			if (strcmp(dep, st->name) == 0)
				*what = perch_xasprintf("step %s depends on itself", q);
			else if (e == NULL)
				*what = perch_xasprintf("no step named %s in this stage", q);
			else
				*what = perch_xasprintf("%zu steps in this stage are named %s, "
							"so the dependency is ambiguous",
							e->b, q);
			free(q);
			return false;
		}
	}
	off[stage->n_steps] = m;
	return true;
}

/* Depth-first search with an explicit stack.  color: 0 unvisited, 1 on
 * the stack, 2 done.  A dependency on a step that is on the stack closes a
 * cycle: the stack from that step up is the cycle. */
static bool find_cycle(const perch_stage *stage, const size_t *off, const size_t *to,
		       char **what)
{
	size_t n = stage->n_steps, s, top = 0;
	unsigned char *color = perch_xcalloc(n, 1);
	size_t *node = perch_xmalloc(n * sizeof *node);
	size_t *next = perch_xmalloc(n * sizeof *next); /* next edge of node[k] */
	size_t *pos = perch_xmalloc(n * sizeof *pos);   /* stack index of a step */
	bool ok = true;

	for (s = 0; s < n && ok; s++) {
		if (color[s] != 0)
			continue;
		color[s] = 1;
		pos[s] = top;
		node[top] = s;
		next[top++] = off[s];
		while (top > 0 && ok) {
			size_t u = node[top - 1], v;
			if (next[top - 1] == off[u + 1]) {
				color[u] = 2;
				top--;
				continue;
			}
			v = to[next[top - 1]++];
			if (color[v] == 0) {
				color[v] = 1;
				pos[v] = top;
				node[top] = v;
				next[top++] = off[v];
			} else if (color[v] == 1) {
				perch_buf b = {0};
				size_t k;
				perch_buf_puts(&b, "depends_on cycle: ");
				for (k = pos[v]; k < top; k++) {
					put_name(&b, stage->steps[node[k]]->name);
					perch_buf_puts(&b, " -> ");
				}
				put_name(&b, stage->steps[v]->name);
				*what = perch_buf_steal(&b);
				ok = false;
			}
		}
	}
	free(color);
	free(node);
	free(next);
	free(pos);
	return ok;
}

bool perch_workflow_check_stage(const perch_stage *stage, char **rel_path, char **what)
{
	perch_index names = {0};
	size_t i, n_deps = 0, *off, *to;
	bool ok;

	for (i = 0; i < stage->n_steps; i++)
		n_deps += stage->steps[i]->depends_on.len;
	if (n_deps == 0)
		return true;

	for (i = 0; i < stage->n_steps; i++) {
		bool created;
		perch_index_entry *e = perch_index_put(&names, stage->steps[i]->name, &created);
		if (created)
			e->a = i;
		e->b++;
	}
	off = perch_xmalloc((stage->n_steps + 1) * sizeof *off);
	to = perch_xmalloc(n_deps * sizeof *to);
	ok = resolve(stage, &names, off, to, rel_path, what);
	if (ok && !find_cycle(stage, off, to, what)) {
		*rel_path = perch_xstrdup("");
		ok = false;
	}
	free(off);
	free(to);
	perch_index_free(&names);
	return ok;
}
