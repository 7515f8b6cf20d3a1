/* SPDX-License-Identifier: MIT */
/*
 * fatal: the run ends with the guest's own PASS verdict: no double fault,
 * triple fault, guest oops (KINJECT_HC_OOPS), halt without a verdict, hang
 * (exit budget), failed VM entry or scenario failure.
 *
 * The engine only runs cases on scenarios that pass without injection (the
 * session baseline), so a failing end is the injection's doing.  The end is
 * read from the VMM's exits, never from guest memory: an oops or verdict
 * hypercall is an exit the guest cannot take back.
 */
#include <string.h>
#include "oracle.h"

static void fatal_at_end(struct oracle_ctx *x)
{
	const struct verdict *v = &x->r->guest;
	char act[ENGINE_TEXT_MAX];

	if (v->kind == VERDICT_PASS)
		return;
	if (v->kind == VERDICT_SKIP) {
		oracle__note(x, &oracle_fatal, "the guest skipped its scenario: %s", v->detail);
		return;
	}
	snprintf(act, sizeof(act), "%s: %.150s", v->what, v->detail);
	oracle__report(x, &oracle_fatal, x->end_rip, "the guest's verdict PASS", act);
}

const struct oracle oracle_fatal = {
	.name = "fatal",
	.summary = "The guest survives and passes its scenario: no double or triple fault, oops, "
		   "halt without verdict, or hang.",
	.at_end = fatal_at_end,
};
