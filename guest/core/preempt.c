// SPDX-License-Identifier: MIT
/*
 * Preemption control.  One CPU, so the count is a plain per-CPU word;
 * interrupt handlers always leave it as they found it, so a
 * read-modify-write interrupted half-way still comes out right.
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/x86.h>

void preempt_count_add(uint64_t v)
{
	kinject_percpu.preempt_count += v;
	barrier();
}

void preempt_count_sub(uint64_t v)
{
	barrier();
	kinject_percpu.preempt_count -= v;
}

void preempt_disable(void)
{
	if ((preempt_count() & KINJECT_PREEMPT_MASK) == KINJECT_PREEMPT_MASK)
		oops(KINJECT_OOPS_BAD_STATE, "preempt_disable() nested too deep", 0);
	preempt_count_add(1);
}

void preempt_enable_no_resched(void)
{
	if ((preempt_count() & KINJECT_PREEMPT_MASK) == 0)
		oops(KINJECT_OOPS_PREEMPT_UNDERFLOW, "preempt_enable() with preempt depth 0", 0);
	preempt_count_sub(1);
}

void preempt_enable(void)
{
	preempt_enable_no_resched();
	/* The deferred preemption: a need_resched that came in while
	 * preemption was off is honoured as soon as it is back on. */
	if (preempt_count() == 0 && need_resched() && irqs_enabled())
		schedule();
}

/* Called by the variant on return to kernel with IRQs off, only when the
 * interrupted context had IF=1, the count is 0 and need_resched is set. */
void preempt_schedule_irq(void)
{
	static char buf[128];

	if (irqs_enabled())
		oops(KINJECT_OOPS_BAD_STATE, "preempt_schedule_irq() with IRQs on", 0);
	if (preempt_count() != 0) {
		snprintf(buf, sizeof(buf), "preempt_schedule_irq() with preempt count %lx",
			 preempt_count());
		oops(KINJECT_OOPS_SCHED_ATOMIC, buf, 0);
	}
	while (need_resched())
		__schedule(1);
}
