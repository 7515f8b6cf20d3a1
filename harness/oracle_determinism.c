/* SPDX-License-Identifier: MIT */
/*
 * determinism: running the same case twice from the same snapshot ends in
 * the same final state (vm__digest of registers, MSRs and all of RAM) and
 * the same guest verdict.
 *
 * It doubles the cost of a case, so it runs only when asked (`kinject run
 * --twice`, always for the cases/ regression runs): the engine then runs
 * the case a second time with only this oracle watching.  A difference means
 * a case would not replay, or the guest depends on something the snapshot
 * does not hold.
 */
#include <string.h>
#include "oracle.h"

static void determinism_at_end(struct oracle_ctx *x)
{
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (!x->have_prev)
		return;
	if (x->prev_guest.kind != x->r->guest.kind || strcmp(x->prev_guest.what, x->r->guest.what)) {
		snprintf(exp, sizeof(exp), "guest ends as in run 1: %s", x->prev_guest.what);
		snprintf(act, sizeof(act), "run 2: %s: %.120s", x->r->guest.what, x->r->guest.detail);
		oracle__report(x, &oracle_determinism, x->end_rip, exp, act);
		return;
	}
	if (x->prev_digest != x->digest) {
		snprintf(exp, sizeof(exp), "final-state digest 0x%016llx (run 1)",
			 (unsigned long long)x->prev_digest);
		snprintf(act, sizeof(act), "final-state digest 0x%016llx (run 2)",
			 (unsigned long long)x->digest);
		oracle__report(x, &oracle_determinism, x->end_rip, exp, act);
	}
}

const struct oracle oracle_determinism = {
	.name = "determinism",
	.summary = "Running the case twice gives the same final-state digest and guest verdict.",
	.at_end = determinism_at_end,
};
