/* SPDX-License-Identifier: MIT */
/*
 * The oracle registry (not an oracle itself): the list the engine calls,
 * name lookup for `expect fail NAME`, and the helpers every oracle uses to
 * report a finding with its location described the same way.
 */
#include <stdarg.h>
#include <string.h>
#include <capstone/capstone.h>
#include "oracle.h"

/* Order matters only for the order of findings: the judges of the first
 * handler instruction, then of the return, then of the end. */
static const struct oracle *const registry[] = {
	&oracle_frame,
	&oracle_flags,
	&oracle_preempt,
	&oracle_transparency,
	&oracle_espfix,
	&oracle_fatal,
	&oracle_determinism,
	/* Trace mode only: judged at every single-stepped instruction. */
	&oracle_map,
	&oracle_gs,
	&oracle_stack,
	&oracle_cr3,
	&oracle_exitwork,
	&oracle_restore,
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

uint64_t oracle__task_frame(const struct oracle_ctx *x, struct kinject_frame *f)
{
	uint64_t va = oracle__percpu(x, KINJECT_PCPU_TOP_OF_STACK) - sizeof(*f);

	return vm__read_gva(x->vm, x->layout->kernel_cr3, va, f, sizeof(*f)) ? 0 : va;
}

void oracle__report_step(struct oracle_ctx *x, const struct oracle *o, uint64_t addr,
			 const char *expected, const char *actual)
{
	const struct case_result *r = x->r;
	unsigned mine = 0;

	for (size_t i = 0; i < r->nfindings; i++) {
		if (strcmp(r->findings[i].oracle, o->name))
			continue;
		if (r->findings[i].addr == addr || ++mine >= ORACLE_STEP_REPORTS)
			return;
	}
	oracle__report(x, o, addr, expected, actual);
}

bool oracle__reg(const struct kvm_regs *r, const struct insn *in, unsigned reg, uint64_t *val)
{
	unsigned r64 = analysis__reg64(reg);
	uint64_t v;

	switch (r64) {
	case X86_REG_RAX: v = r->rax; break;
	case X86_REG_RBX: v = r->rbx; break;
	case X86_REG_RCX: v = r->rcx; break;
	case X86_REG_RDX: v = r->rdx; break;
	case X86_REG_RSI: v = r->rsi; break;
	case X86_REG_RDI: v = r->rdi; break;
	case X86_REG_RBP: v = r->rbp; break;
	case X86_REG_RSP: v = r->rsp; break;
	case X86_REG_R8:  v = r->r8; break;
	case X86_REG_R9:  v = r->r9; break;
	case X86_REG_R10: v = r->r10; break;
	case X86_REG_R11: v = r->r11; break;
	case X86_REG_R12: v = r->r12; break;
	case X86_REG_R13: v = r->r13; break;
	case X86_REG_R14: v = r->r14; break;
	case X86_REG_R15: v = r->r15; break;
	case X86_REG_RIP: v = in->addr + in->size; break;
	case X86_REG_EIP: v = (in->addr + in->size) & 0xffffffffULL; break;
	default: return false;
	}
	/* A 32-bit register as an address (addr32 prefix) reads the low half. */
	if (r64 != reg && reg != X86_REG_EIP)
		v &= 0xffffffffULL;
	*val = v;
	return true;
}

bool oracle__mem_linear(struct oracle_ctx *x, const struct insn *in, unsigned i, uint64_t *addr)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	const struct kvm_sregs *sr = vcpu__sregs(x->vm);
	const struct insn_mem *m;
	uint64_t a, v;

	if (i >= in->nmem)
		return false;
	m = &in->mem[i];
	a = (uint64_t)m->disp;
	if (m->base) {
		if (!oracle__reg(r, in, m->base, &v))
			return false;
		a += v;
	}
	if (m->index) {
		if (!oracle__reg(r, in, m->index, &v))
			return false;
		a += v * (m->scale ? m->scale : 1);
	}
	/* Long mode: only FS and GS have a base. */
	if (m->segment == X86_REG_GS)
		a += sr->gs.base;
	else if (m->segment == X86_REG_FS)
		a += sr->fs.base;
	*addr = a;
	return true;
}

bool oracle__stack_access(const struct insn *in, const struct kvm_regs *r, uint64_t *addr,
			  unsigned *len)
{
	if (in->flags & INSN_IRET) {
		*addr = r->rsp;
		*len = 40;
	} else if (in->flags & (INSN_CALL | INSN_PUSHF) || in->id == X86_INS_PUSH) {
		*addr = r->rsp - 8;
		*len = 8;
	} else if (in->flags & (INSN_RET | INSN_POPF) || in->id == X86_INS_POP) {
		*addr = r->rsp;
		*len = 8;
	} else if (in->id == X86_INS_LEAVE) {
		*addr = r->rbp;
		*len = 8;
	} else {
		return false;
	}
	return true;
}

bool oracle__returns_to_user(struct oracle_ctx *x, const struct insn *in, uint64_t *rip)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	uint64_t frame[2];

	if (!in || vcpu__cpl(x->vm) != 0)
		return false;
	if (in->flags & INSN_SYSRET) {
		if (rip)
			*rip = r->rcx;
		return true;
	}
	/* iretq: RIP, CS, RFLAGS, RSP, SS quadwords at RSP (the 32-bit forms
	 * are not used in long-mode entry code). */
	if (!(in->flags & INSN_IRET) || vm__read_gva(x->vm, 0, r->rsp, frame, sizeof(frame)))
		return false;
	if ((frame[1] & 3) != 3)
		return false;
	if (rip)
		*rip = frame[0];
	return true;
}

uint64_t oracle__user_gs(const struct oracle_ctx *x, unsigned k)
{
	const struct engine_state *st = &x->stop[k];

	if (st->cpl == 3 || st->sregs.gs.base != x->layout->percpu)
		return st->sregs.gs.base;
	return st->kernel_gs_base;
}
