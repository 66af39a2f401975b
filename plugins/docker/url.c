/*
 * url.c - URL escaping and engine paths: ids, names and filters go into
 * request paths escaped, whatever characters they hold.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

void perch_docker_urlencode(pp_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			pp_buf_add(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			pp_buf_add(b, e, 3);
		}
	}
}

char *perch_docker_path(const char *head, const char *id, const char *tail)
{
	pp_buf b = {0};
	pp_buf_puts(&b, head);
	perch_docker_urlencode(&b, id);
	pp_buf_puts(&b, tail);
	return pp_buf_steal(&b);
}
