/* SPDX-License-Identifier: MIT */
/*
 * map: at every single-stepped kernel-mode instruction of the entry text, the vCPU's GS, CR3, stack and IF fit the static window map (entrymap).
 *
 * The map (harness/entrymap.h, docs/map.md) says, for every instruction of
 * the entry text, which GS base, CR3, stack and IF state it can run in; it
 * is derived from the code alone.  Trace mode observes the real state at
 * every step, in the same terms (entrymap__observe_layout), and the two
 * must agree: a disagreement is either an entry path in a state its code
 * does not account for (a bug of the guest, e.g. a skipped swapgs) or a
 * classifier that is wrong (a bug of the map).  Either way it is reported.
 * Ring 3 is not the map's business; neither is code outside the text.
 */
#include "oracle.h"

static void map_at_step(struct oracle_ctx *x, const struct insn *in)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	struct win_state seen, want;
	char why[160], exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX], buf[96];

	if (!x->map || vcpu__cpl(x->vm) != 0 || !entrymap__in_text(x->map, r->rip))
		return;
	entrymap__observe_layout(x->layout, r, vcpu__sregs(x->vm), &seen);
	if (entrymap__check(x->map, r->rip, &seen, why, sizeof(why)))
		return;
	if (entrymap__state(x->map, r->rip, &want) < 0)
		snprintf(exp, sizeof(exp), "an instruction boundary of the map");
	else
		snprintf(exp, sizeof(exp), "a state the static map allows here: %s",
			 window__state_str(&want, buf, sizeof(buf)));
	snprintf(act, sizeof(act), "%s (%s)", window__state_str(&seen, buf, sizeof(buf)), why);
	oracle__report_step(x, &oracle_map, r->rip, exp, act);
}

static void map_at_end(struct oracle_ctx *x)
{
	if (!x->map)
		oracle__note(x, &oracle_map, "does not apply: no window map for this guest");
}

const struct oracle oracle_map = {
	.name = "map",
	.summary = "At every stepped kernel-mode instruction of the entry text, GS, CR3, stack "
		   "and IF fit the static window map.",
	.trace_only = true,
	.at_step = map_at_step,
	.at_end = map_at_end,
};
