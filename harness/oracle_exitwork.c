/* SPDX-License-Identifier: MIT */
/*
 * exitwork: no return to ring 3 leaves work pending: when an IRET or SYSRET
 * at CPL 0 returns to ring 3 (trace mode), and when an interrupted ring-3
 * context resumes (fast mode), the per-CPU need_resched and sigpending are
 * clear.
 *
 * The exit path must test both with IRQs off, after the last stretch that
 * ran with IRQs on: a reschedule or a signal that arrives while the exit
 * work runs and is not seen again leaves with the task (historical: lost
 * need-resched, lost signals; bug #16 of x86-entry-bugs.md).  Both are
 * read from the per-CPU block in guest memory at the return itself: with
 * IRQs off nothing can set them between that read and ring 3.
 */
#include "oracle.h"

static void check(struct oracle_ctx *x, uint64_t where, const char *when, bool step)
{
	uint64_t nr = oracle__percpu(x, KINJECT_PCPU_NEED_RESCHED);
	uint64_t sp = oracle__percpu(x, KINJECT_PCPU_SIGPENDING);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	if (!nr && !sp)
		return;
	snprintf(exp, sizeof(exp), "need_resched and sigpending clear %s", when);
	snprintf(act, sizeof(act), "need_resched 0x%llx, sigpending 0x%llx: work left pending",
		 (unsigned long long)nr, (unsigned long long)sp);
	if (step)
		oracle__report_step(x, &oracle_exitwork, where, exp, act);
	else
		oracle__report(x, &oracle_exitwork, where, exp, act);
}

static void exitwork_at_step(struct oracle_ctx *x, const struct insn *in)
{
	if (oracle__returns_to_user(x, in, NULL))
		check(x, in->addr, "at the return to ring 3", true);
}

static void exitwork_at_resume(struct oracle_ctx *x, unsigned k)
{
	if (x->stop[k].cpl == 3)
		check(x, x->stop[k].regs.rip, "when the interrupted ring-3 context resumes", false);
}

const struct oracle oracle_exitwork = {
	.name = "exitwork",
	.summary = "No return to ring 3 with work pending: need_resched and sigpending are clear "
		   "at every IRET/SYSRET to ring 3 and every ring-3 resume.",
	.at_step = exitwork_at_step,
	.at_resume = exitwork_at_resume,
};
