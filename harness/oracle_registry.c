/* SPDX-License-Identifier: MIT */
/*
 * The oracle registry (not an oracle itself): the list the engine calls,
 * name lookup for `expect fail NAME`, and the helpers every oracle uses to
 * report a finding with its location described the same way.
 */
#include <stdarg.h>
#include <string.h>
#include "oracle.h"

/* Order matters only for the order of findings: the judges of the first
 * handler instruction, then of the return, then of the end. */
static const struct oracle *const registry[] = {
	&oracle_frame,
	&oracle_preempt,
	&oracle_transparency,
	&oracle_espfix,
	&oracle_fatal,
	&oracle_determinism,
};

const struct oracle *const *oracle__all(size_t *n)
{
	if (n)
		*n = sizeof(registry) / sizeof(registry[0]);
	return registry;
}

const struct oracle *oracle__find(const char *name)
{
	for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
		if (!strcmp(registry[i]->name, name))
			return registry[i];
	return NULL;
}

char *oracle__names(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]) && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 registry[i]->name);
	return buf;
}

char *oracle__where(struct oracle_ctx *x, uint64_t addr, char *buf, size_t len)
{
	const struct insn *in = analysis__at(x->entry, addr);
	struct insn one;
	uint8_t bytes[16];

	if (in)
		return analysis__format(x->symtab, in, buf, len);
	/* Outside the entry text: decode the one instruction from memory,
	 * through the live CR3 or else the kernel's. */
	if ((!vm__read_gva(x->vm, 0, addr, bytes, sizeof(bytes)) ||
	     !vm__read_gva(x->vm, x->layout->kernel_cr3, addr, bytes, sizeof(bytes))) &&
	    !analysis__decode_one(bytes, sizeof(bytes), addr, &one))
		return analysis__format(x->symtab, &one, buf, len);
	return sym__describe(x->symtab, addr, buf, len);
}

void oracle__report(struct oracle_ctx *x, const struct oracle *o, uint64_t addr,
		    const char *expected, const char *actual)
{
	struct case_result *r = x->r;
	struct finding *f;

	if (r->nfindings >= ENGINE_MAX_FINDINGS) {
		r->dropped++;
		return;
	}
	f = &r->findings[r->nfindings++];
	memset(f, 0, sizeof(*f));
	snprintf(f->oracle, sizeof(f->oracle), "%s", o->name);
	f->addr = addr;
	if (addr)
		oracle__where(x, addr, f->where, sizeof(f->where));
	else
		snprintf(f->where, sizeof(f->where), "(whole run)");
	snprintf(f->expected, sizeof(f->expected), "%s", expected);
	snprintf(f->actual, sizeof(f->actual), "%s", actual);
}

void oracle__note(struct oracle_ctx *x, const struct oracle *o, const char *fmt, ...)
{
	va_list ap;

	if (!x->debug)
		return;
	fprintf(x->debug, "    [%s] ", o->name);
	va_start(ap, fmt);
	vfprintf(x->debug, fmt, ap);
	va_end(ap);
	fputc('\n', x->debug);
}

uint64_t oracle__percpu(const struct oracle_ctx *x, unsigned off)
{
	return *(const volatile uint64_t *)(x->percpu + off);
}
