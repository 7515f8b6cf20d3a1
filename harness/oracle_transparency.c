/* SPDX-License-Identifier: MIT */
/*
 * transparency: an asynchronous event (IRQ, NMI) that neither reschedules nor
 * signals is invisible: the interrupted context resumes at the same RIP with
 * every GPR, RFLAGS but RF, the segment selectors, FS/GS base, KERNEL_GS_BASE
 * and CR3 unchanged.  So is an exception in kernel mode that the kernel
 * handles and returns from to the same RIP (a #DB, a spurious #PF, a
 * tolerated #GP): a kernel's own fix-ups resume elsewhere.  (From ring 3 an
 * exception may come back through a signal handler's sigreturn, which may
 * rewrite registers by design, and a fault on the IRET back to ring 3 is
 * turned into the user's: neither is judged.)
 *
 * "Rescheduled" is seen from outside: variant_switch_to was entered with the
 * interrupted task as prev before the context resumed (the engine's switch
 * breakpoint), or percpu.current differs at the resume.  "Signalled": the
 * task's percpu sigpending is set at the resume.  A context that never
 * resumes before the verdict is not judged here (the fatal oracle judges how
 * the run ended).  With a 16-bit SS only SP[15:0] is compared: IRET does
 * not restore the rest, and the espfix oracle judges it.
 */
#include <string.h>
#include "oracle.h"

#define MSR_KERNEL_GS_BASE 0xc0000102u

static void check(struct oracle_ctx *x, unsigned k, const char *name, uint64_t want,
		  uint64_t got, uint64_t mask)
{
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (((want ^ got) & mask) == 0)
		return;
	snprintf(exp, sizeof(exp), "%s = 0x%llx on resume (as interrupted at step %u)", name,
		 (unsigned long long)(want & mask), k + 1);
	snprintf(act, sizeof(act), "%s = 0x%llx", name, (unsigned long long)(got & mask));
	oracle__report(x, &oracle_transparency, x->stop[k].regs.rip, exp, act);
}

static void seg(struct oracle_ctx *x, unsigned k, const char *name, const struct kvm_segment *a,
		const struct kvm_segment *b)
{
	check(x, k, name, a->selector, b->selector, 0xffff);
}

static void transparency_at_resume(struct oracle_ctx *x, unsigned k)
{
	const struct engine_state *st = &x->stop[k];
	const struct kvm_regs *a = &st->regs, *b = vcpu__regs(x->vm);
	const struct kvm_sregs *sa = &st->sregs, *sb = vcpu__sregs(x->vm);
	uint32_t idx = MSR_KERNEL_GS_BASE;
	uint64_t kgs;
	const uint64_t all = ~0ULL;

	if (!oracle__async(&x->event[k]) && st->cpl != 0) {
		oracle__note(x, &oracle_transparency, "does not apply to step %u: an exception from "
			     "ring 3 may return through a signal handler", k + 1);
		return;
	}
	/* A fault on the IRET/SYSRET back to ring 3 becomes the user's fault;
	 * a later return passing the same instruction is another context. */
	if (!oracle__async(&x->event[k]) && st->insn &&
	    (st->insn->flags & (INSN_IRET | INSN_SYSRET))) {
		oracle__note(x, &oracle_transparency, "does not apply to step %u: an exception on "
			     "a return to ring 3 is the user's", k + 1);
		return;
	}
	if (x->switched[k] || oracle__percpu(x, KINJECT_PCPU_CURRENT) != st->current) {
		oracle__note(x, &oracle_transparency, "does not apply to step %u: its task was "
			     "rescheduled before it resumed", k + 1);
		return;
	}
	if (oracle__percpu(x, KINJECT_PCPU_SIGPENDING)) {
		oracle__note(x, &oracle_transparency, "does not apply to step %u: a signal is "
			     "pending for its task", k + 1);
		return;
	}

	check(x, k, "rax", a->rax, b->rax, all);
	check(x, k, "rbx", a->rbx, b->rbx, all);
	check(x, k, "rcx", a->rcx, b->rcx, all);
	check(x, k, "rdx", a->rdx, b->rdx, all);
	check(x, k, "rsi", a->rsi, b->rsi, all);
	check(x, k, "rdi", a->rdi, b->rdi, all);
	check(x, k, "rbp", a->rbp, b->rbp, all);
	check(x, k, "rsp", a->rsp, b->rsp, st->ss16 ? 0xffff : all);
	check(x, k, "r8", a->r8, b->r8, all);
	check(x, k, "r9", a->r9, b->r9, all);
	check(x, k, "r10", a->r10, b->r10, all);
	check(x, k, "r11", a->r11, b->r11, all);
	check(x, k, "r12", a->r12, b->r12, all);
	check(x, k, "r13", a->r13, b->r13, all);
	check(x, k, "r14", a->r14, b->r14, all);
	check(x, k, "r15", a->r15, b->r15, all);
	check(x, k, "rflags", a->rflags, b->rflags, ~RFLAGS_RF_BIT);
	seg(x, k, "cs", &sa->cs, &sb->cs);
	seg(x, k, "ss", &sa->ss, &sb->ss);
	seg(x, k, "ds", &sa->ds, &sb->ds);
	seg(x, k, "es", &sa->es, &sb->es);
	seg(x, k, "fs", &sa->fs, &sb->fs);
	seg(x, k, "gs", &sa->gs, &sb->gs);
	check(x, k, "fs.base", sa->fs.base, sb->fs.base, all);
	check(x, k, "gs.base", sa->gs.base, sb->gs.base, all);
	check(x, k, "cr3", sa->cr3, sb->cr3, all);
	if (vcpu__get_msrs(x->vm, &idx, &kgs, 1) == 0)
		check(x, k, "KERNEL_GS_BASE", st->kernel_gs_base, kgs, all);
	else
		oracle__note(x, &oracle_transparency, "KERNEL_GS_BASE unreadable: %s", vmm__error());
}

static void transparency_at_end(struct oracle_ctx *x)
{
	for (unsigned k = 0; k < x->nsteps; k++)
		if (oracle__async(&x->event[k]) && !x->resumed[k])
			oracle__note(x, &oracle_transparency, "does not apply to step %u: its context "
				     "never resumed before the verdict%s", k + 1,
				     x->switched[k] ? " (its task was switched away from)" : "");
}

const struct oracle oracle_transparency = {
	.name = "transparency",
	.summary = "An IRQ or NMI that neither reschedules nor signals, or a kernel-mode "
		   "exception the kernel returns from, leaves the interrupted context exactly as "
		   "it was: RIP, GPRs, RFLAGS but RF, segments, FS/GS base, KERNEL_GS_BASE, CR3.",
	.at_resume = transparency_at_resume,
	.at_end = transparency_at_end,
};
