/* SPDX-License-Identifier: MIT */
/* Verdicts, fatal command-line errors, and where the default guest lives. */
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kinject.h"

static const char *const verdict_names[] = {
	[VERDICT_PASS] = "PASS", [VERDICT_FAIL] = "FAIL",
	[VERDICT_ERROR] = "ERROR", [VERDICT_SKIP] = "SKIP",
};

const char *verdict__name(enum verdict_kind k)
{
	return verdict_names[k];
}

int verdict__exit_code(enum verdict_kind k)
{
	switch (k) {
	case VERDICT_PASS: return KINJECT_EXIT_PASS;
	case VERDICT_FAIL: return KINJECT_EXIT_FAIL;
	case VERDICT_SKIP: return KINJECT_EXIT_SKIP;
	default:           return KINJECT_EXIT_ERROR;
	}
}

void verdict__set(struct verdict *v, enum verdict_kind k, const char *what,
		  const char *fmt, ...)
{
	va_list ap;

	v->kind = k;
	snprintf(v->what, sizeof(v->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

void kinject__die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("kinject: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(KINJECT_EXIT_ERROR);
}

const char *kinject__default_guest(const char *variant, char *buf, size_t len)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		snprintf(exe, sizeof(exe), ".");
	else
		exe[n] = '\0';
	snprintf(buf, len, "%s/guest/kinject-%s.elf", dirname(exe), variant);
	return buf;
}
