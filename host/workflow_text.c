/* workflow_text.c - JSON text helpers: UTF-8, Go-compatible string
 * escaping, positions for syntax errors.  See workflow_priv.h. */
#include "config.h"

#include "workflow_priv.h"

#include <string.h>

size_t perch_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0; /* a continuation byte, 0xc0/0xc1 or 0xf5.. */
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static const char hex[] = "0123456789abcdef";

static void put_u(perch_buf *b, uint32_t c)
{
	char u[6] = {'\\', 'u', hex[(c >> 12) & 15], hex[(c >> 8) & 15], hex[(c >> 4) & 15],
		     hex[c & 15]};
	perch_buf_append(b, u, sizeof u);
}

/* Go's encodeState.string, HTML-safe: runs of bytes that need no escape
 * are copied in one go. */
static void put_quoted(perch_buf *b, const char *s, size_t n, bool html)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0;

	perch_buf_putc(b, '"');
	while (i < n) {
		unsigned char c = p[i];
		const char *esc = NULL;
		uint32_t cp = 0;
		size_t len = 0;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80 &&
		    !(html && (c == '<' || c == '>' || c == '&'))) {
			i++;
			continue;
		}
		if (c >= 0x80) {
			len = perch_utf8_decode(p + i, n - i, &cp);
			if (len != 0 && cp != 0x2028 && cp != 0x2029) {
				i += len;
				continue;
			}
		}
		perch_buf_append(b, s + start, i - start);
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: break;
		}
		if (esc != NULL) {
			perch_buf_puts(b, esc);
			i++;
		} else if (c < 0x80) {
			put_u(b, c);
			i++;
		} else if (len == 0) {
			/* Not UTF-8: Go writes the replacement character. */
			perch_buf_puts(b, "\\ufffd");
			i++;
		} else {
			/* U+2028/U+2029 end lines in JavaScript. */
			put_u(b, cp);
			i += len;
		}
		start = i;
	}
	perch_buf_append(b, s + start, n - start);
	perch_buf_putc(b, '"');
}

void perch_json_put_string(perch_buf *b, const char *s, size_t n)
{
	put_quoted(b, s, n, true);
}

void perch_json_put_message_string(perch_buf *b, const char *s)
{
	put_quoted(b, s, strlen(s), false);
}

void perch_json_position(const char *data, size_t off, size_t *line, size_t *column)
{
	size_t i, l = 1, c = 1;
	for (i = 0; i < off; i++) {
		unsigned char ch = (unsigned char)data[i];
		if (ch == '\n') {
			l++;
			c = 1;
		} else if ((ch & 0xc0) != 0x80) {
			/* Count characters, not the bytes that continue them. */
			c++;
		}
	}
	*line = l;
	*column = c;
}
