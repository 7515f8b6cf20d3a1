/* SPDX-License-Identifier: MIT */
/*
 * cr3: ring 3 only ever runs on the user page tables, an interrupted
 * context gets its own CR3 back, and while the user tables are loaded in
 * kernel mode every memory access -- the instruction fetch, each explicit
 * operand and the implicit stack accesses -- is to a page they map.
 *
 * Fast mode judges every stop: a ring-3 stop on another CR3 (a return to
 * user that skipped its switch back: every later ring-3 state has it), and
 * the resume of each step's interrupted context, whatever the event was
 * (no handler may hand a context back on another address space: a paranoid
 * exit that forgets to restore the CR3 it found).  Trace mode also judges
 * every instruction.
 *
 * With page-table isolation the user tables map only the entry text and
 * the cpu entry area; kernel code that touches anything else before its
 * CR3 switch (or after the one back) faults in the real world, or worse
 * leaks what the user tables do map (KPTI bugs: kaiser's SYSENTER stack,
 * the espfix stack with user CR3).  CR3 is compared without PCID (11:0)
 * and NOFLUSH (63).  Linear addresses: base + index * scale + disp, plus
 * the FS/GS base for an override (oracle__mem_linear); push/pop/call/ret/
 * pushf/popf/leave/iret at RSP (oracle__stack_access).  LEA and NOP-class
 * operands access nothing and are skipped.  First and last byte of each
 * access are checked (quadword operands assumed, IRET: 40 bytes).
 */
#include <capstone/capstone.h>
#include "oracle.h"

static bool user_cr3(const struct oracle_ctx *x, uint64_t cr3)
{
	return x->layout->user_cr3 &&
	       oracle__cr3_base(cr3) == oracle__cr3_base(x->layout->user_cr3);
}

/* One access of len bytes at a: reported if the user tables miss it. */
static bool check(struct oracle_ctx *x, uint64_t rip, const char *what, uint64_t a, unsigned len)
{
	uint64_t gpa, last = a + (len ? len - 1 : 0);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (!vm__gva_to_gpa(x->vm, x->layout->user_cr3, a, &gpa) &&
	    ((last >> 12) == (a >> 12) || !vm__gva_to_gpa(x->vm, x->layout->user_cr3, last, &gpa)))
		return true;
	snprintf(exp, sizeof(exp), "while the user CR3 is loaded at CPL 0, only pages the user "
		 "page tables map are touched");
	snprintf(act, sizeof(act), "%s 0x%llx is not mapped by the user page tables (CR3 0x%llx)",
		 what, (unsigned long long)a, (unsigned long long)x->layout->user_cr3);
	oracle__report_step(x, &oracle_cr3, rip, exp, act);
	return false;
}

/* A state at CPL 3 must be on the user tables. */
static void ring3_on_user_cr3(struct oracle_ctx *x, uint64_t rip, uint64_t cr3, const char *when)
{
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (user_cr3(x, cr3))
		return;
	snprintf(exp, sizeof(exp), "the user CR3 0x%llx in ring 3",
		 (unsigned long long)x->layout->user_cr3);
	snprintf(act, sizeof(act), "CR3 0x%llx in ring 3 (%s%s)", (unsigned long long)cr3,
		 oracle__cr3_base(cr3) == oracle__cr3_base(x->layout->kernel_cr3) ?
		 "the kernel's, " : "", when);
	oracle__report_step(x, &oracle_cr3, rip, exp, act);
}

static void cr3_at_stop(struct oracle_ctx *x, unsigned k)
{
	const struct engine_state *st = &x->stop[k];

	if (x->layout->user_cr3 && st->cpl == 3)
		ring3_on_user_cr3(x, st->regs.rip, st->sregs.cr3, "at the stop, before the injection");
}

static void cr3_at_hit(struct oracle_ctx *x)
{
	if (x->layout->user_cr3 && vcpu__cpl(x->vm) == 3)
		ring3_on_user_cr3(x, vcpu__regs(x->vm)->rip, vcpu__sregs(x->vm)->cr3,
				  "at a breakpoint stop");
}

static void cr3_at_resume(struct oracle_ctx *x, unsigned k)
{
	const struct engine_state *st = &x->stop[k];
	uint64_t now = vcpu__sregs(x->vm)->cr3;
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (oracle__cr3_base(now) == oracle__cr3_base(st->sregs.cr3))
		return;
	snprintf(exp, sizeof(exp), "CR3 0x%llx on resume (as interrupted at step %u)",
		 (unsigned long long)st->sregs.cr3, k + 1);
	snprintf(act, sizeof(act), "CR3 0x%llx (%s)", (unsigned long long)now,
		 oracle__cr3_base(now) == oracle__cr3_base(x->layout->kernel_cr3) ? "the kernel's" :
		 user_cr3(x, now) ? "the user's" : "neither the user's nor the kernel's");
	oracle__report_step(x, &oracle_cr3, st->regs.rip, exp, act);
}

static void cr3_at_step(struct oracle_ctx *x, const struct insn *in)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	const struct kvm_sregs *sr = vcpu__sregs(x->vm);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];
	uint64_t a, target;
	unsigned len;

	if (!x->layout->user_cr3)
		return;                          /* no page-table isolation */
	if (vcpu__cpl(x->vm) == 3) {
		ring3_on_user_cr3(x, r->rip, sr->cr3, "single-stepped");
		return;
	}
	if (oracle__returns_to_user(x, in, &target) && !user_cr3(x, sr->cr3)) {
		snprintf(exp, sizeof(exp), "the user CR3 0x%llx when returning to ring 3 at 0x%llx",
			 (unsigned long long)x->layout->user_cr3, (unsigned long long)target);
		snprintf(act, sizeof(act), "CR3 0x%llx (%s)", (unsigned long long)sr->cr3,
			 oracle__cr3_base(sr->cr3) == oracle__cr3_base(x->layout->kernel_cr3) ?
			 "the kernel's: the switch back was skipped" : "neither the user's nor the kernel's");
		oracle__report_step(x, &oracle_cr3, r->rip, exp, act);
	}
	if (!user_cr3(x, sr->cr3))
		return;
	if (!check(x, r->rip, "instruction fetch at", r->rip, in ? in->size : 1) || !in)
		return;
	if (in->id != X86_INS_LEA && in->id != X86_INS_NOP)
		for (unsigned i = 0; i < in->nmem; i++)
			if ((in->mem[i].read || in->mem[i].write) && oracle__mem_linear(x, in, i, &a) &&
			    !check(x, r->rip, in->mem[i].write ? "memory write at" : "memory read at",
				   a, 8))
				return;
	if (oracle__stack_access(in, r, &a, &len))
		check(x, r->rip, "stack access at", a, len);
}

static void cr3_at_end(struct oracle_ctx *x)
{
	if (!x->layout->user_cr3)
		oracle__note(x, &oracle_cr3, "does not apply: the guest has no page-table isolation");
	else if (!x->nstep)
		oracle__note(x, &oracle_cr3, "judged at the stops only: nothing was single-stepped");
}

const struct oracle oracle_cr3 = {
	.name = "cr3",
	.summary = "Ring 3 runs on the user CR3, an interrupted context resumes on its own CR3, "
		   "and with the user CR3 at CPL 0 every access (fetch, operands, stack) is to a "
		   "page the user tables map.",
	.at_stop = cr3_at_stop,
	.at_resume = cr3_at_resume,
	.at_hit = cr3_at_hit,
	.at_step = cr3_at_step,
	.at_end = cr3_at_end,
};
