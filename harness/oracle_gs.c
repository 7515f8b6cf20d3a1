/* SPDX-License-Identifier: MIT */
/*
 * gs: no kernel-mode instruction uses a GS-relative memory operand while the GS base is not the kernel's, and every return to ring 3 leaves the user's GS base loaded.
 *
 * The kernel reaches its per-CPU data through %gs: with a user GS base
 * such an access reads or writes memory the user chose (CVE-2014-9322: a
 * bad IRET handled without swapgs).  The kernel's GS base is the layout's
 * percpu address.  At the IRET/SYSRET that returns to ring 3 the user's GS
 * base must be back: for the interrupted context of a step, the one
 * captured at its stop (oracle__user_gs); for any other return of the same
 * task, the same; else at least not the kernel's.  A step seen in ring 3
 * (hosts that step ring 3) is checked for the kernel's GS base too.
 */
#include "oracle.h"

/* The user GS base a return of the current task must restore, if known. */
static bool expected_user_gs(struct oracle_ctx *x, uint64_t target, uint64_t *gs)
{
	uint64_t cur = oracle__percpu(x, KINJECT_PCPU_CURRENT);

	for (unsigned k = x->nsteps; k-- > 0;) {
		const struct engine_state *st = &x->stop[k];
		if (st->regs.rip == target && st->current == cur) {
			*gs = oracle__user_gs(x, k);
			return true;
		}
	}
	for (unsigned k = x->nsteps; k-- > 0;)
		if (x->stop[k].current == cur && (x->stop[k].cpl == 3 ||
		    x->stop[k].sregs.gs.base != x->layout->percpu)) {
			*gs = oracle__user_gs(x, k);
			return true;
		}
	return false;
}

static void gs_at_step(struct oracle_ctx *x, const struct insn *in)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	const struct kvm_sregs *sr = vcpu__sregs(x->vm);
	uint64_t kgs = x->layout->percpu, target = 0, want;
	int cpl = vcpu__cpl(x->vm);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (cpl == 3) {
		if (sr->gs.base != kgs)
			return;
		snprintf(act, sizeof(act), "GS base 0x%llx (the kernel's percpu) in ring 3",
			 (unsigned long long)sr->gs.base);
		oracle__report_step(x, &oracle_gs, r->rip, "a user GS base in ring 3", act);
		return;
	}
	if (!in)
		return;
	if ((in->flags & INSN_GS_MEM) && sr->gs.base != kgs) {
		snprintf(exp, sizeof(exp), "GS base 0x%llx (kernel percpu) for a %%gs: access at CPL 0",
			 (unsigned long long)kgs);
		snprintf(act, sizeof(act), "GS base 0x%llx (user; MSR_KERNEL_GS_BASE holds the other)",
			 (unsigned long long)sr->gs.base);
		oracle__report_step(x, &oracle_gs, r->rip, exp, act);
	}
	if (!oracle__returns_to_user(x, in, &target))
		return;
	if (expected_user_gs(x, target, &want)) {
		if (sr->gs.base == want)
			return;
		snprintf(exp, sizeof(exp), "GS base 0x%llx (the user's, as at the stop) when "
			 "returning to ring 3 at 0x%llx", (unsigned long long)want,
			 (unsigned long long)target);
	} else {
		if (sr->gs.base != kgs)
			return;
		snprintf(exp, sizeof(exp), "a user GS base when returning to ring 3 at 0x%llx",
			 (unsigned long long)target);
	}
	snprintf(act, sizeof(act), "GS base 0x%llx%s", (unsigned long long)sr->gs.base,
		 sr->gs.base == kgs ? " (the kernel's percpu: swapgs missing)" : "");
	oracle__report_step(x, &oracle_gs, r->rip, exp, act);
}

static void gs_at_end(struct oracle_ctx *x)
{
	if (!x->nstep)
		oracle__note(x, &oracle_gs, "does not apply: nothing was single-stepped");
}

const struct oracle oracle_gs = {
	.name = "gs",
	.summary = "No CPL 0 instruction uses a %gs: operand with a non-kernel GS base; every "
		   "return to ring 3 restores the user's GS base.",
	.trace_only = true,
	.at_step = gs_at_step,
	.at_end = gs_at_end,
};
