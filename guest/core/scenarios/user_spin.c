// SPDX-License-Identifier: MIT
/*
 * user-spin: two ring-3 tasks spin with every GPR and the FS/GS bases
 * holding known values (arch/x86_64/user/spin.S).  They raise their own
 * timer ticks, so they preempt each other.  Pass: both finish all their
 * iterations without seeing any register change.
 */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/sched.h>

extern char user_spin_entry[];

#define NTASKS 2
static struct task *spin[NTASKS];
static uint64_t iters;

static void setup(void)
{
	static const char *const names[NTASKS] = { "spin0", "spin1" };
	struct kinject_frame regs;

	iters = scenario_iters(4096);
	for (int i = 0; i < NTASKS; i++) {
		spin[i] = utask_alloc(names[i], PRIO_NORMAL);
		user_task_prepare(spin[i], 0x10 + i, iters, user_spin_entry, &regs);
		utask_start(spin[i], &regs);
	}
}

static int finish(char *msg, unsigned long len)
{
	for (int i = 0; i < NTASKS; i++) {
		if (spin[i]->exit_status != 0) {
			snprintf(msg, len, "%s: expected exit status 0, seen %d", spin[i]->name,
				 spin[i]->exit_status);
			return KINJECT_VERDICT_FAIL;
		}
		if (scenario_verbose())
			kprintf("  %s: %lu switches in, %lu preemptions, %lu ticks, %lu signals\n",
				spin[i]->name, spin[i]->switches_in, spin[i]->preemptions,
				spin[i]->ticks, user_data_read(spin[i], UD_SIGCOUNT));
	}
	snprintf(msg, len, "%d tasks x %lu iterations, registers and FS/GS bases intact",
		 NTASKS, iters);
	return KINJECT_VERDICT_PASS;
}

const struct scenario scn_user_spin = {
	.name = "user-spin",
	.what = "ring-3 loop checking every GPR and FS/GS base; two tasks preempting each other",
	.setup = setup,
	.finish = finish,
};
