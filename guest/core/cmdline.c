// SPDX-License-Identifier: MIT
/*
 * Command line: space-separated key=value words, kept in a private copy
 * (the boot-info page is the VMM's scaffolding and may be reused).
 */
#include <guest/core.h>

#define MAX_OPTS 16

static char buf[KINJECT_CMDLINE_MAX];
static const char *keys[MAX_OPTS], *vals[MAX_OPTS];
static unsigned nopts;

void cmdline_parse(const char *cmdline)
{
	char *p = buf;

	strlcpy(buf, cmdline, sizeof(buf));
	while (*p && nopts < MAX_OPTS) {
		while (*p == ' ')
			*p++ = 0;
		if (!*p)
			break;
		char *key = p, *val = "";
		while (*p && *p != ' ' && *p != '=')
			p++;
		if (*p == '=') {
			*p++ = 0;
			val = p;
			while (*p && *p != ' ')
				p++;
		}
		if (*p)
			*p++ = 0;
		keys[nopts] = key;
		vals[nopts++] = val;
	}
}

const char *cmdline_get(const char *key)
{
	/* The last occurrence wins, so appended options override. */
	for (unsigned i = nopts; i-- > 0;)
		if (!strcmp(keys[i], key))
			return vals[i];
	return 0;
}

uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	const char *s = cmdline_get(key);
	uint64_t v = 0;
	unsigned base = 10;

	if (!s || !*s)
		return dflt;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return dflt;     /* garbage: ignore the option, keep runs sane */
		v = v * base + d;
	}
	return v;
}
