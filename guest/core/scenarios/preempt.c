// SPDX-License-Identifier: MIT
/*
 * preempt: timer and wake-up interrupts drive preemption between kernel
 * threads of three priorities.
 *   H  (PRIO_HIGH+1) waits on the wake-up event, logs, waits again;
 *   M0, M1 (PRIO_HIGH) step and raise timer ticks (round robin by quantum);
 *      M0 raises KINJECT_VEC_WAKEUP every third step, M1 a RESCHED IPI;
 *   L  (PRIO_NORMAL) runs once both M are done; it creates N (PRIO_HIGH+2),
 *      which must run before kthread_create() returns, then wakes H until
 *      H has finished.
 * Checked at every log point (with IRQs off): no higher-priority task is
 * runnable (a lost preemption), the running task has not overrun its
 * quantum while a peer is runnable (lost round robin); after M0's wake-up
 * raise, H must be the last one logged; L runs only after both M.
 */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/sched.h>
#include <guest/x86.h>

#define PRIO_H (PRIO_HIGH + 1)
#define PRIO_N (PRIO_HIGH + 2)
#define TRACE_MAX 512

static char trace[TRACE_MAX];
static unsigned trace_len;
static uint64_t iters, steps, h_runs, h_expected;
static struct task *h, *m[2], *l;
static int m_done[2], n_ran;

static void log_event(char who)
{
	uint64_t fl = local_irq_save();
	struct task *t = task_current();

	if (sched_higher_prio_runnable(t->prio))
		scenario_fail("%s (prio %d) runs while a higher-priority task is runnable (trace %u)",
			      t->name, t->prio, trace_len);
	if (t->quantum <= 0 && sched_same_prio_runnable(t->prio))
		scenario_fail("%s still runs with its quantum used up and a peer runnable (trace %u)",
			      t->name, trace_len);
	if (trace_len < TRACE_MAX - 1)
		trace[trace_len++] = who;
	local_irq_restore(fl);
}

static void h_fn(void *arg)
{
	(void)arg;
	while (h_runs < h_expected) {
		wait_on(&wakeup_event);
		h_runs++;
		log_event('H');
	}
}

static void m_fn(void *arg)
{
	int idx = (int)(uint64_t)arg;

	for (uint64_t i = 0; i < steps; i++) {
		log_event(idx ? 'b' : 'a');
		hc_raise_irq(KINJECT_VEC_TIMER);
		if (idx == 0 && i % 3 == 2) {
			uint64_t before = h_runs;
			hc_raise_irq(KINJECT_VEC_WAKEUP);
			/* H outranks us: it ran before the raise returned. */
			if (h_runs < h_expected && h_runs == before)
				scenario_fail("M0: expected H to run at the wake-up interrupt, it did not (step %lu)",
					      i);
			else if (trace_len && trace[trace_len - 1] != 'H')
				scenario_fail("M0: expected H logged right after the wake-up, seen '%c'",
					      trace[trace_len - 1]);
		}
		if (idx == 1 && i % 4 == 1)
			hc_raise_irq(KINJECT_VEC_RESCHED);
	}
	m_done[idx] = 1;
}

static void n_fn(void *arg)
{
	(void)arg;
	log_event('N');
	n_ran = 1;
}

static void l_fn(void *arg)
{
	(void)arg;
	log_event('L');
	if (!m_done[0] || !m_done[1])
		scenario_fail("L (prio %d) ran before both M (prio %d) were done", PRIO_NORMAL,
			      PRIO_HIGH);
	kthread_create("N", PRIO_N, n_fn, 0);
	if (!n_ran)
		scenario_fail("expected the new higher-priority task N to run before kthread_create returned");
	/* Harness-injected wake-ups may have spent some of M0's: finish H. */
	while (h_runs < h_expected)
		hc_raise_irq(KINJECT_VEC_WAKEUP);
	log_event('l');
}

static void setup(void)
{
	iters = scenario_iters(4);
	steps = iters * 6;
	h_expected = steps / 3;
	h_runs = 0;
	trace_len = 0;
	n_ran = 0;
	m_done[0] = m_done[1] = 0;
	h = kthread_create("H", PRIO_H, h_fn, 0);
	m[0] = kthread_create("M0", PRIO_HIGH, m_fn, (void *)0);
	m[1] = kthread_create("M1", PRIO_HIGH, m_fn, (void *)1);
	l = kthread_create("L", PRIO_NORMAL, l_fn, 0);
}

static int finish(char *msg, unsigned long len)
{
	trace[trace_len] = 0;
	if (scenario_verbose())
		kprintf("  trace: %s\n", trace);
	if (h_runs != h_expected) {
		snprintf(msg, len, "expected H to run %lu times, seen %lu", h_expected, h_runs);
		return KINJECT_VERDICT_FAIL;
	}
	if (!trace_len || trace[trace_len - 1] != 'l') {
		snprintf(msg, len, "expected L to log last, trace ends with '%c'",
			 trace_len ? trace[trace_len - 1] : '-');
		return KINJECT_VERDICT_FAIL;
	}
	if (m[0]->preemptions + m[1]->preemptions == 0) {
		snprintf(msg, len, "expected M0/M1 to be preempted on IRQ return, seen none");
		return KINJECT_VERDICT_FAIL;
	}
	snprintf(msg, len, "%lu steps: priorities, round robin, wake-up and new-task preemption in order",
		 steps * 2);
	return KINJECT_VERDICT_PASS;
}

const struct scenario scn_preempt = {
	.name = "preempt",
	.what = "timer/wake-up/resched/new-task preemption across three priorities",
	.setup = setup,
	.finish = finish,
};
