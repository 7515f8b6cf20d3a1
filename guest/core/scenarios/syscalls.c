// SPDX-License-Identifier: MIT
/*
 * syscalls: two ring-3 tasks issue SYSCALL and int $0x80 system calls with
 * every register loaded (arch/x86_64/user/syscalls.S), yielding to each
 * other and taking timer ticks right after SYSRET.  Pass: all results and
 * preserved registers as documented (SYSCALL clobbers RCX/R11 only,
 * int $0x80 only RAX).
 */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/sched.h>

extern char user_syscalls_entry[];

#define NTASKS 2
static struct task *tsk[NTASKS];
static uint64_t iters;

static void setup(void)
{
	static const char *const names[NTASKS] = { "sys0", "sys1" };
	struct kinject_frame regs;

	iters = scenario_iters(64);
	if (!host_syscall_ok())
		kprintf("syscalls: SYSCALL half skipped (syscall=0: the host KVM cannot run a ring-3 SYSCALL); int $0x80 half checked\n");
	for (int i = 0; i < NTASKS; i++) {
		tsk[i] = utask_alloc(names[i], PRIO_NORMAL);
		user_task_prepare(tsk[i], 0x20 + i, iters, user_syscalls_entry, &regs);
		utask_start(tsk[i], &regs);
	}
}

static int finish(char *msg, unsigned long len)
{
	for (int i = 0; i < NTASKS; i++) {
		if (tsk[i]->exit_status != 0) {
			snprintf(msg, len, "%s: expected exit status 0, seen %d", tsk[i]->name,
				 tsk[i]->exit_status);
			return KINJECT_VERDICT_FAIL;
		}
		if (tsk[i]->switches_in < iters / 4) {
			snprintf(msg, len, "%s: expected >= %lu switches in (yields), seen %lu",
				 tsk[i]->name, iters / 4, tsk[i]->switches_in);
			return KINJECT_VERDICT_FAIL;
		}
	}
	snprintf(msg, len, "%d tasks x %lu iterations of %s, results and registers as documented",
		 NTASKS, iters, host_syscall_ok() ? "SYSCALL/int 0x80" : "int 0x80 (SYSCALL skipped)");
	return KINJECT_VERDICT_PASS;
}

const struct scenario scn_syscalls = {
	.name = "syscalls",
	.what = "SYSCALL and int $0x80 with all registers checked, yields, ticks after SYSRET",
	.setup = setup,
	.finish = finish,
};
