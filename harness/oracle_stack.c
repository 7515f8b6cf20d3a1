/* SPDX-License-Identifier: MIT */
/*
 * stack: at every single-stepped instruction RSP is inside a stack the layout block names (task, IRQ, IST, entry trampoline, espfix; a user address in ring 3), or on the user stack where the window map says the entry code is still on it.
 *
 * The layout's ranges are [start, end); a stack's top belongs to it (RSP
 * equals the top right after a switch), as in entrymap__observe_layout.
 * The one place kernel code legitimately runs on the user's stack is the
 * SYSCALL entry before its stack switch (and the SYSRET exit after its
 * last pop): the map says "user" (or "unknown": RSP used as scratch)
 * there, so that is accepted exactly where the map says it.  Anything
 * else -- a kernel RSP outside every known stack, a user RSP in kernel
 * code -- is a finding (historical: handlers on the entry/espfix stack,
 * #DB on the user RSP, CVE-2018-8897).
 */
#include "oracle.h"

static char *kinds(unsigned v, char *buf, size_t len)
{
	return window__stack_name(v, buf, len);
}

static void stack_at_step(struct oracle_ctx *x, const struct insn *in)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	struct win_state seen, want;
	int cpl = vcpu__cpl(x->vm);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX], b1[64];

	entrymap__observe_layout(x->layout, r, vcpu__sregs(x->vm), &seen);
	if (cpl == 3) {
		if (seen.stack & (WIN_STACK_USER | WIN_STACK_ESPFIX))
			return;
		snprintf(act, sizeof(act), "RSP 0x%llx in ring 3 (%s)", (unsigned long long)r->rsp,
			 seen.stack ? kinds(seen.stack, b1, sizeof(b1)) : "no known stack");
		oracle__report_step(x, &oracle_stack, r->rip,
				    "a user stack (or espfix) in ring 3", act);
		return;
	}
	if (seen.stack && !(seen.stack & WIN_STACK_USER))
		return;
	/* The user stack at CPL 0: only where the map says so. */
	if (seen.stack && x->map && entrymap__in_text(x->map, r->rip) &&
	    entrymap__state(x->map, r->rip, &want) == 0 &&
	    (want.stack & (WIN_STACK_USER | WIN_UNKNOWN)))
		return;
	snprintf(act, sizeof(act), "RSP 0x%llx: %s", (unsigned long long)r->rsp,
		 seen.stack ? "a user address, where the map has no user-stack window" :
		 "inside no stack of the layout");
	snprintf(exp, sizeof(exp), "RSP on a task, IRQ, IST, entry or espfix stack at CPL 0");
	oracle__report_step(x, &oracle_stack, r->rip, exp, act);
	(void)in;
}

static void stack_at_end(struct oracle_ctx *x)
{
	if (!x->nstep)
		oracle__note(x, &oracle_stack, "does not apply: nothing was single-stepped");
}

const struct oracle oracle_stack = {
	.name = "stack",
	.summary = "At every stepped instruction RSP is on a stack the layout names (a user "
		   "stack only in ring 3 or where the map has the SYSCALL user-stack window).",
	.trace_only = true,
	.at_step = stack_at_step,
	.at_end = stack_at_end,
};
