// SPDX-License-Identifier: MIT
/*
 * Scenario registry and runner.  The first selected scenario is set up by
 * kmain before READY (so the harness's snapshot holds a ready-to-run
 * scenario); the runner kthread waits for its tasks to exit, reports it,
 * and sets up the next.  Setup runs with preemption off so that every
 * scenario starts the same way whether it runs first or after others.
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/scenario.h>
#include <guest/x86.h>

static const struct scenario *const registry[] = {
	&scn_user_spin, &scn_syscalls, &scn_ss16, &scn_signals, &scn_kthreads, &scn_preempt,
};

static const struct scenario *selected[ARRAY_SIZE(registry)];
static unsigned nselected;
static int live_tasks;
static struct waitq done_wq;
static int failed;
static char fail_msg[256];
static char verdict_msg[256];

void scenario_fail(const char *fmt, ...)
{
	va_list ap;
	uint64_t fl = local_irq_save();

	/* The first failure explains the most; later ones are usually
	 * consequences of it. */
	if (!failed) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
	}
	failed++;
	local_irq_restore(fl);
}

int scenario_failed(void)
{
	return failed;
}

uint64_t scenario_iters(uint64_t dflt)
{
	uint64_t v = cmdline_u64("iters", dflt);
	return v ? v : 1;
}

void scenario_task_started(void)
{
	live_tasks++;
}

void scenario_task_exited(void)
{
	/* IRQs are off (task_exit). */
	if (--live_tasks == 0)
		wake_up(&done_wq);
}

static void begin(const struct scenario *s)
{
	failed = 0;
	fail_msg[0] = 0;
	hc_scenario_begin(s->name);
	preempt_disable();
	s->setup();
	preempt_enable();
}

extern uint64_t user_has_syscall;   /* .user.data, arch/x86_64/user/syscalls.S */

int host_syscall_ok(void)
{
	return cmdline_u64("syscall", 1) != 0;
}

/* `int80=0`: the host delivers INT n from ring 3 as #UD (kinject probes it). */
int host_int80_ok(void)
{
	return cmdline_u64("int80", 1) != 0;
}

int host_ldt_ss_ok(void)
{
	return cmdline_u64("ldt", 1) != 0;
}

uint64_t ss16_stack_base(void)
{
	return host_ldt_ss_ok() ? USER_SS16_BASE : USER_SS16_GDT_BASE;
}

void scenarios_prepare(void)
{
	const char *name = cmdline_get("scenario");

	if (!name || !*name)
		name = "all";
	for (unsigned i = 0; i < ARRAY_SIZE(registry); i++)
		if (!strcmp(name, "all") || !strcmp(name, registry[i]->name))
			selected[nselected++] = registry[i];
	if (!nselected) {
		static char msg[200];
		int n = snprintf(msg, sizeof(msg), "unknown scenario '%s' (known: all", name);
		for (unsigned i = 0; i < ARRAY_SIZE(registry) && n < (int)sizeof(msg); i++)
			n += snprintf(msg + n, sizeof(msg) - n, ", %s", registry[i]->name);
		if (n < (int)sizeof(msg))
			snprintf(msg + n, sizeof(msg) - n, ")");
		kprintf("%s\n", msg);
		hc_verdict(KINJECT_VERDICT_FAIL, msg);
	}
	/* Before READY: ring-3 programs read it from their .user.data. */
	user_has_syscall = host_syscall_ok();
	if (host_ldt_ss_ok())
		ldt_ss16_install();
	kthread_create_system("runner", PRIO_LOW, scenario_runner, 0);
	begin(selected[0]);
}

void scenario_runner(void *arg)
{
	unsigned nfailed = 0;
	static char first_fail[256];

	(void)arg;
	for (unsigned i = 0; i < nselected; i++) {
		const struct scenario *s = selected[i];
		char msg[200];
		int v;

		if (i > 0)
			begin(s);
		cli();
		while (live_tasks > 0)
			wait_on_locked(&done_wq);
		sti();
		tasks_reap();

		msg[0] = 0;
		v = s->finish ? s->finish(msg, sizeof(msg)) : KINJECT_VERDICT_PASS;
		if (failed) {
			v = KINJECT_VERDICT_FAIL;
			strlcpy(msg, fail_msg, sizeof(msg));
		}
		if (v == KINJECT_VERDICT_FAIL && !nfailed++)
			snprintf(first_fail, sizeof(first_fail), "%s: %s", s->name, msg);
		kprintf("scenario %s: %s: %s\n", s->name,
			v == KINJECT_VERDICT_PASS ? "PASS" : v == KINJECT_VERDICT_SKIP ? "SKIP" : "FAIL",
			msg);
		hc_scenario_end(s->name, v);
		if (nselected == 1)
			snprintf(verdict_msg, sizeof(verdict_msg), "%s: %s", s->name, msg);
	}
	if (nselected > 1) {
		if (nfailed)
			snprintf(verdict_msg, sizeof(verdict_msg), "%u of %u scenarios failed; first %s",
				 nfailed, nselected, first_fail);
		else
			snprintf(verdict_msg, sizeof(verdict_msg), "all %u scenarios passed",
				 nselected);
	}
	kprintf("verdict: %s: %s\n", nfailed ? "FAIL" : "PASS", verdict_msg);
	hc_verdict(nfailed ? KINJECT_VERDICT_FAIL : KINJECT_VERDICT_PASS, verdict_msg);
}
