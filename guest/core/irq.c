// SPDX-License-Identifier: MIT
/*
 * External interrupts and NMIs: accounting (preempt_count's hardirq,
 * softirq and NMI fields), dispatch by vector, and softirqs run at the end
 * of the outermost interrupt.  The harness injects arbitrary vectors, so a
 * vector nobody registered is counted and ignored, never an oops.
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/task.h>
#include <guest/uapi.h>
#include <guest/x86.h>

#define HARDIRQ_OFFSET (1U << KINJECT_HARDIRQ_SHIFT)
#define SOFTIRQ_OFFSET (1U << KINJECT_SOFTIRQ_SHIFT)
#define NMI_OFFSET     (1U << KINJECT_NMI_SHIFT)
#define SOFTIRQ_RESTART_MAX 4

struct irq_stats irq_stats;
uint64_t timer_ticks;
struct waitq wakeup_event;
static irq_handler_t handlers[256];
static uint32_t softirq_pending;
static void (*softirq_fns[SOFTIRQ_NR])(void);
static char gs_oops[128];

void check_kernel_gs(const char *who, const struct kinject_frame *f)
{
	uint64_t gs = rdmsr(MSR_GS_BASE);

	if (unlikely(gs != (uint64_t)&kinject_percpu)) {
		snprintf(gs_oops, sizeof(gs_oops), "%s entered with GS base %lx, not the kernel's %p",
			 who, gs, (void *)&kinject_percpu);
		oops(KINJECT_OOPS_BAD_STATE, gs_oops, f);
	}
}

void irq_register(unsigned vector, irq_handler_t h)
{
	handlers[vector & 0xff] = h;
}

void open_softirq(unsigned nr, void (*fn)(void))
{
	softirq_fns[nr] = fn;
}

void raise_softirq(unsigned nr)
{
	softirq_pending |= 1U << nr;
}

void irq_enter(void)
{
	if ((preempt_count() & KINJECT_HARDIRQ_MASK) == KINJECT_HARDIRQ_MASK)
		oops(KINJECT_OOPS_BAD_STATE, "hardirq nesting overflow", 0);
	if (preempt_count() & KINJECT_HARDIRQ_MASK)
		irq_stats.nested++;
	preempt_count_add(HARDIRQ_OFFSET);
}

/* Softirqs run with IRQs on, as in Linux: an interrupt arriving here nests
 * on whatever stack we are on (the IRQ stack, usually), which is exactly
 * the case the variant's IRQ-stack in-use logic must get right (bug #17).
 * The softirq count keeps the nested interrupt from running softirqs and
 * from preempting. */
static void do_softirq(void)
{
	preempt_count_add(SOFTIRQ_OFFSET);
	for (int round = 0; round < SOFTIRQ_RESTART_MAX && softirq_pending; round++) {
		uint32_t pending = softirq_pending;
		softirq_pending = 0;
		sti();
		for (unsigned nr = 0; nr < SOFTIRQ_NR; nr++)
			if ((pending & (1U << nr)) && softirq_fns[nr]) {
				irq_stats.softirqs++;
				softirq_fns[nr]();
			}
		cli();
	}
	preempt_count_sub(SOFTIRQ_OFFSET);
}

void irq_exit(void)
{
	preempt_count_sub(HARDIRQ_OFFSET);
	if (!in_interrupt() && softirq_pending)
		do_softirq();
}

void do_irq(struct kinject_frame *f)
{
	unsigned vector = (unsigned)f->vector & 0xff;

	check_kernel_gs("do_irq", f);
	if (irqs_enabled())
		oops(KINJECT_OOPS_BAD_STATE, "do_irq entered with IRQs on", f);
	irq_enter();
	irq_stats.irqs++;
	irq_stats.per_vector[vector]++;
	if (vector == KINJECT_VEC_SPURIOUS)
		irq_stats.spurious++;
	else if (handlers[vector])
		handlers[vector](vector);
	else
		irq_stats.unexpected++;
	irq_exit();
	if (irqs_enabled())
		oops(KINJECT_OOPS_BAD_STATE, "do_irq returns with IRQs on", f);
}

void do_nmi(struct kinject_frame *f)
{
	check_kernel_gs("do_nmi", f);
	/* The variant's nesting logic must never run do_nmi inside itself. */
	if (preempt_count() & KINJECT_NMI_MASK)
		oops(KINJECT_OOPS_BAD_STATE, "do_nmi entered inside do_nmi", f);
	preempt_count_add(NMI_OFFSET + HARDIRQ_OFFSET);
	irq_stats.nmis++;
	preempt_count_sub(NMI_OFFSET + HARDIRQ_OFFSET);
}

/* ---- The testbed's vectors ------------------------------------------------ */

static void timer_irq(unsigned v)
{
	timer_ticks++;
	raise_softirq(SOFTIRQ_TIMER);
}

/* Deferred tick work: charge the tick to whoever was running. */
static void timer_softirq(void)
{
	struct task *t = task_current();

	if (!t || t == &idle_task_storage)
		return;
	t->ticks++;
	if (--t->quantum <= 0)
		set_need_resched();
}

static void wakeup_irq(unsigned v)
{
	irq_stats.wakeups++;
	wake_up(&wakeup_event);
}

static void resched_irq(unsigned v)
{
	irq_stats.resched_ipis++;
	set_need_resched();
}

/* An asynchronous signal: it can arrive while exit_to_user_work() runs with
 * IRQs on, after its test of sigpending -- the window the variant's
 * re-test with IRQs off closes (bug #16). */
static void signal_irq(unsigned v)
{
	struct task *t = task_current();

	irq_stats.signal_irqs++;
	if (t && t->sig_handler[SIGTRAP])
		signal_send(t, SIGTRAP, v, 0, 0);
}

void irq_init(void)
{
	irq_register(KINJECT_VEC_TIMER, timer_irq);
	irq_register(KINJECT_VEC_WAKEUP, wakeup_irq);
	irq_register(KINJECT_VEC_RESCHED, resched_irq);
	irq_register(KINJECT_VEC_SIGNAL, signal_irq);
	open_softirq(SOFTIRQ_TIMER, timer_softirq);
}
