/* SPDX-License-Identifier: MIT */
/*
 * preempt: returning from an event that interrupted kernel mode switches
 * tasks exactly when allowed: never while the saved IF is 0 or the preempt
 * count is nonzero, and never back into the interrupted kernel context with
 * need_resched still set although it was preemptible (a missed preemption).
 *
 * Observed from outside on the innermost event when it interrupted CPL 0:
 * the switch is variant_switch_to entered with the interrupted task as prev
 * (engine's switch breakpoint); IF, preempt count and need_resched are read
 * from the saved frame and kinject_percpu at the variant's return-to-kernel
 * decision point (docs/variants.md: linux64 `retint_kernel`), and if the
 * variant names its preempting branch (`retint_kernel_preempt`), entering
 * that branch when forbidden is a finding even before any switch; again at
 * the resume.  The resume check needs no label: the first instruction after
 * the final IRET runs with the interrupted RFLAGS, and the percpu words
 * then say whether a switch was still owed.
 */
#include "oracle.h"

static bool applies(struct oracle_ctx *x)
{
	return x->nsteps && x->stop[oracle__last(x)].cpl == 0;
}

static bool allowed(const struct oracle_ctx *x)
{
	return (x->saved_rflags & RFLAGS_IF_BIT) && x->preempt_count == 0;
}

/* The preempting branch taken when the decision's inputs forbid it: caught
 * before any switch (the guest may stop itself before one). */
static void preempt_at_decision(struct oracle_ctx *x)
{
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (!applies(x) || !x->preempt_path_seen || allowed(x))
		return;
	snprintf(exp, sizeof(exp), "no preemption on return to kernel: saved IF=%d, preempt count 0x%llx",
		 !!(x->saved_rflags & RFLAGS_IF_BIT), (unsigned long long)x->preempt_count);
	snprintf(act, sizeof(act), "the preempting branch was taken (RIP 0x%llx)",
		 (unsigned long long)vcpu__regs(x->vm)->rip);
	oracle__report(x, &oracle_preempt, x->decision_rip, exp, act);
}

static void preempt_at_switch(struct oracle_ctx *x, uint64_t prev, uint64_t next)
{
	unsigned k;
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (!applies(x))
		return;
	k = oracle__last(x);
	if (prev != x->stop[k].current || x->resumed[k] || x->switched[k])
		return;
	snprintf(act, sizeof(act), "switch from task 0x%llx to 0x%llx",
		 (unsigned long long)prev, (unsigned long long)next);
	if (!x->decision_seen) {
		/* Before the return decision: inside the event's own handling.
		 * Asynchronous events never sleep there. */
		if (!oracle__async(&x->event[k]) || !x->decision_armed) {
			oracle__note(x, &oracle_preempt, "switch before any return decision (%s)", act);
			return;
		}
		oracle__report(x, &oracle_preempt, x->stop[k].regs.rip,
			       "no switch away from the interrupted task while handling the event "
			       "(before the return-to-kernel decision)", act);
		return;
	}
	if (allowed(x) || x->preempt_path_seen)
		return;   /* allowed, or reported when the branch was taken */
	snprintf(exp, sizeof(exp), "no switch on return to kernel: saved IF=%d, preempt count 0x%llx",
		 !!(x->saved_rflags & RFLAGS_IF_BIT), (unsigned long long)x->preempt_count);
	oracle__report(x, &oracle_preempt, x->decision_rip, exp, act);
}

static void preempt_at_resume(struct oracle_ctx *x, unsigned k)
{
	const struct engine_state *st = &x->stop[k];
	uint64_t nr = oracle__percpu(x, KINJECT_PCPU_NEED_RESCHED);
	uint64_t pc = oracle__percpu(x, KINJECT_PCPU_PREEMPT_COUNT);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (!applies(x) || k != oracle__last(x) || x->switched[k])
		return;
	/* Back in the interrupted context with RFLAGS as it was: IF=1 and a
	 * zero count mean it was preemptible; need_resched still set means
	 * the return skipped a switch it owed. */
	if (!(st->regs.rflags & RFLAGS_IF_BIT) || pc != 0 || !nr)
		return;
	if (x->decision_seen && !x->need_resched)
		return;   /* need_resched came after the decision: not this return's */
	snprintf(exp, sizeof(exp), "a switch before resuming: need_resched set, IF=1, preempt count 0%s",
		 x->decision_seen ? " at the decision" : "");
	snprintf(act, sizeof(act), "resumed the interrupted task 0x%llx with need_resched=0x%llx",
		 (unsigned long long)st->current, (unsigned long long)nr);
	oracle__report(x, &oracle_preempt, x->decision_seen ? x->decision_rip : st->regs.rip,
		       exp, act);
}

static void preempt_at_end(struct oracle_ctx *x)
{
	if (!applies(x)) {
		oracle__note(x, &oracle_preempt, "does not apply: the innermost event interrupted ring 3");
		return;
	}
	if (!x->decision_armed)
		oracle__note(x, &oracle_preempt, "no decision label for this variant: judged at the "
			     "resume only");
	else if (!x->decision_seen)
		oracle__note(x, &oracle_preempt, "the return-to-kernel decision for the event's frame "
			     "was never reached");
}

const struct oracle oracle_preempt = {
	.name = "preempt",
	.summary = "Returning to kernel mode switches tasks exactly when allowed: never with saved "
		   "IF=0 or a nonzero preempt count, never skipping an owed preemption.",
	.at_decision = preempt_at_decision,
	.at_switch = preempt_at_switch,
	.at_resume = preempt_at_resume,
	.at_end = preempt_at_end,
};
