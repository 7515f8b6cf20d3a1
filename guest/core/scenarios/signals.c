// SPDX-License-Identifier: MIT
/*
 * signals: ring-3 #PF (user and kernel addresses, read and write), #GP
 * (privileged instruction, non-canonical address), #UD (with DF set), #DE
 * and #BP delivered to a handler that checks everything it is given and
 * rewrites the saved frame (arch/x86_64/user/signals.S).  Pass: every
 * signal as expected and every register exact after sigreturn.
 */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/sched.h>

extern char user_signals_entry[];

#define SIGNALS_PER_ITER 8
static struct task *t;
static uint64_t iters;

static void setup(void)
{
	struct kinject_frame regs;

	iters = scenario_iters(2);
	t = utask_alloc("signals", PRIO_NORMAL);
	user_task_prepare(t, 0x30, iters, user_signals_entry, &regs);
	utask_start(t, &regs);
}

static int finish(char *msg, unsigned long len)
{
	uint64_t seen = user_data_read(t, UD_SIGCOUNT);

	if (t->exit_status != 0) {
		snprintf(msg, len, "expected exit status 0, seen %d", t->exit_status);
		return KINJECT_VERDICT_FAIL;
	}
	if (seen != iters * SIGNALS_PER_ITER) {
		snprintf(msg, len, "expected %lu signals handled, seen %lu",
			 iters * SIGNALS_PER_ITER, seen);
		return KINJECT_VERDICT_FAIL;
	}
	snprintf(msg, len, "%lu signals (#PF #GP #UD #DE #BP) delivered and returned from exactly",
		 seen);
	return KINJECT_VERDICT_PASS;
}

const struct scenario scn_signals = {
	.name = "signals",
	.what = "ring-3 faults as signals; handler checks info and frame; sigreturn restores all",
	.setup = setup,
	.finish = finish,
};
