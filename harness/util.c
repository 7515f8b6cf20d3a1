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

uint64_t kinject__number(const char *option, const char *arg)
{
	char *end;
	uint64_t v = strtoull(arg, &end, 0);

	if (!*arg || *end || *arg == '-')
		kinject__die("%s: expected a number, got '%s'", option, arg);
	return v;
}

bool kinject__guest_option(int c, const char *arg, struct guest_opts *o, uint64_t *max_exits)
{
	switch (c) {
	case 'v': o->variant = arg; return true;
	case 'g': o->elf = arg; return true;
	case 's':
		if (!*arg)
			kinject__die("--scenario: expected a scenario name, got an empty one");
		o->scenario = arg;
		return true;
	case 'm':
		if (vm__parse_size(arg, &o->mem_size))
			kinject__die("--mem: expected a size like 32M or 1G, got '%s'", arg);
		return true;
	case 'x':
		*max_exits = kinject__number("--max-exits", arg);
		return true;
	default:
		return false;
	}
}

void kinject__need_kvm(void)
{
	if (kvm__check())
		kinject__die("%s", vmm__error());
}
