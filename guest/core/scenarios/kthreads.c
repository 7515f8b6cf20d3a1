// SPDX-License-Identifier: MIT
/*
 * kthreads: three kernel threads of one priority, each iteration going
 * through (1) a preempt-disabled section, (2) an IRQs-off section and (3) a
 * preemptible stretch, raising timer ticks in each.  Sections (1) and (2)
 * are marked no-switch on the task, so __schedule() oopses if anything
 * switches inside them, whatever the preempt count says.  Pass: no such
 * switch, the tick that expires the quantum inside (1) is honoured by
 * preempt_enable(), a pending IRQ is not taken while IF=0, and ticks in
 * (3) preempt on the return from the interrupt.
 *
 * Each iteration ends in (4) kthread_spin(): a short assembly loop with
 * nine registers holding patterns it checks every time round, IRQs on and
 * preempt count 0.  Its head `kthread_loop` (global) is where the harness
 * breaks to inject events at ring 0; the whole function is an
 * injection-tolerant range (scenario.h): an injected #GP there is counted
 * and resumed at the same RIP, an injected #PF at a present kernel address
 * is spurious, IRQs and NMIs just return.  The patterns prove that
 * every such return (and any preemption in between) restored them.
 */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/sched.h>
#include <guest/x86.h>

#define NTHREADS 3
#define SPIN_ITERS 32

/* uint64_t kthread_spin(uint64_t n): 0, or 1-based index of the register
 * seen changed (rbx, rbp, r12, r13, r14, r15, rsi, r8, r9). */
uint64_t kthread_spin(uint64_t n);
extern char kthread_spin_end[];
#define KSPIN_PAT(i) (0x6b74687200000000 + 0x01010101 * (i))
#define KSPIN_STR2(x) #x
#define KSPIN_STR(x) KSPIN_STR2(x)
__asm__(
	".text\n\t"
	".globl kthread_spin, kthread_loop, kthread_spin_end\n\t"
	".type kthread_spin, @function\n"
	"kthread_spin:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rdi, %rcx\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(1)) ", %rbx\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(2)) ", %rbp\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(3)) ", %r12\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(4)) ", %r13\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(5)) ", %r14\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(6)) ", %r15\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(7)) ", %rsi\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(8)) ", %r8\n\t"
	"movabs $" KSPIN_STR(KSPIN_PAT(9)) ", %r9\n"
	"kthread_loop:\n\t"
	"mov $1, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(1)) ", %rax\n\tcmp %rax, %rbx\n\tjne 2f\n\t"
	"mov $2, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(2)) ", %rax\n\tcmp %rax, %rbp\n\tjne 2f\n\t"
	"mov $3, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(3)) ", %rax\n\tcmp %rax, %r12\n\tjne 2f\n\t"
	"mov $4, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(4)) ", %rax\n\tcmp %rax, %r13\n\tjne 2f\n\t"
	"mov $5, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(5)) ", %rax\n\tcmp %rax, %r14\n\tjne 2f\n\t"
	"mov $6, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(6)) ", %rax\n\tcmp %rax, %r15\n\tjne 2f\n\t"
	"mov $7, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(7)) ", %rax\n\tcmp %rax, %rsi\n\tjne 2f\n\t"
	"mov $8, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(8)) ", %rax\n\tcmp %rax, %r8\n\tjne 2f\n\t"
	"mov $9, %edx\n\tmovabs $" KSPIN_STR(KSPIN_PAT(9)) ", %rax\n\tcmp %rax, %r9\n\tjne 2f\n\t"
	"dec %rcx\n\t"
	"jnz kthread_loop\n\t"
	"xor %edx, %edx\n"
	"2:\tmov %rdx, %rax\n\t"
	"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
	"ret\n"
	"kthread_spin_end:\n\t"
	".size kthread_spin, . - kthread_spin\n");

struct kt_stats {
	uint64_t deferred;     /* need_resched seen inside a no-preempt section */
	uint64_t enable_switch;/* ... and honoured by preempt_enable() */
	uint64_t irq_preempt;  /* preempted on IRQ return in section 3 */
};
static struct kt_stats stats[NTHREADS];
static struct task *thr[NTHREADS];
static uint64_t iters;

static void section_preempt_off(struct task *t, struct kt_stats *s)
{
	preempt_disable();
	t->no_switch_why = "preempt-disabled section";
	t->no_switch = 1;
	if ((preempt_count() & KINJECT_PREEMPT_MASK) != 1)
		scenario_fail("%s: expected preempt depth 1 after preempt_disable, seen count %lx",
			      t->name, preempt_count());
	/* Tick until the quantum runs out: the interrupt returns to us. */
	for (int i = 0; i <= sched_quantum && !need_resched(); i++)
		hc_raise_irq(KINJECT_VEC_TIMER);
	if (!need_resched())
		scenario_fail("%s: expected need_resched after %d ticks, not set", t->name,
			      sched_quantum + 1);
	else
		s->deferred++;
	t->no_switch = 0;
	uint64_t before = t->switches_in;
	int others = 0;
	cli();
	others = sched_same_prio_runnable(t->prio);
	sti();
	preempt_enable();
	if (t->switches_in != before)
		s->enable_switch++;
	else if (others)
		scenario_fail("%s: expected preempt_enable() to switch (need_resched, others runnable), it did not",
			      t->name);
}

static void section_irqs_off(struct task *t)
{
	cli();
	t->no_switch_why = "IRQs-off section";
	t->no_switch = 1;
	uint64_t ticks = timer_ticks;
	hc_raise_irq(KINJECT_VEC_TIMER);
	/* A few boundaries with the tick pending and IF=0 (each one a chance
	 * for a broken entry to take it); kept short, as a VMM has to
	 * single-step every one of them to deliver the tick exactly. */
	for (volatile int i = 0; i < 2; i++)
		;
	if (timer_ticks != ticks)
		scenario_fail("%s: expected no interrupt with IF=0, seen %lu ticks", t->name,
			      timer_ticks - ticks);
	t->no_switch = 0;
	sti();   /* the pending tick arrives here and may preempt us */
}

static void section_preemptible(struct task *t, struct kt_stats *s)
{
	uint64_t before = t->switches_in;
	int others;

	cli();
	others = sched_same_prio_runnable(t->prio);
	sti();
	for (int i = 0; i <= sched_quantum && t->switches_in == before; i++)
		hc_raise_irq(KINJECT_VEC_TIMER);
	if (t->switches_in != before)
		s->irq_preempt++;
	else if (others)
		scenario_fail("%s: expected preemption within %d ticks (IF=1, count 0, others runnable), none",
			      t->name, sched_quantum + 1);
}

static void kthread_fn(void *arg)
{
	int idx = (int)(uint64_t)arg;
	struct task *t = task_current();

	if (preempt_count() != 0 || !irqs_enabled())
		scenario_fail("%s: expected to start with count 0 and IRQs on, seen count %lx IF %d",
			      t->name, preempt_count(), irqs_enabled());
	for (uint64_t i = 0; i < iters && !scenario_failed(); i++) {
		section_preempt_off(t, &stats[idx]);
		section_irqs_off(t);
		section_preemptible(t, &stats[idx]);
		uint64_t bad = kthread_spin(SPIN_ITERS);
		if (bad)
			scenario_fail("%s: kthread_spin: register #%lu (rbx rbp r12-r15 rsi r8 r9) changed, expected %lx",
				      t->name, bad, KSPIN_PAT(bad));
	}
}

static void setup(void)
{
	static const char *const names[NTHREADS] = { "kt0", "kt1", "kt2" };

	iters = scenario_iters(8);
	memset(stats, 0, sizeof(stats));
	inject_tolerant_add((uint64_t)kthread_spin, (uint64_t)kthread_spin_end);
	for (int i = 0; i < NTHREADS; i++)
		thr[i] = kthread_create(names[i], PRIO_NORMAL, kthread_fn, (void *)(uint64_t)i);
}

static int finish(char *msg, unsigned long len)
{
	for (int i = 0; i < NTHREADS; i++) {
		if (scenario_verbose())
			kprintf("  %s: deferred %lu, switched by preempt_enable %lu, by IRQ return %lu\n",
				thr[i]->name, stats[i].deferred, stats[i].enable_switch,
				stats[i].irq_preempt);
		if (!stats[i].enable_switch || !stats[i].irq_preempt) {
			snprintf(msg, len, "%s: expected switches both by preempt_enable and on IRQ return, seen %lu and %lu",
				 thr[i]->name, stats[i].enable_switch, stats[i].irq_preempt);
			return KINJECT_VERDICT_FAIL;
		}
	}
	snprintf(msg, len, "%d threads x %lu iterations: no switch in no-preempt/IRQs-off sections, deferred preemption honoured",
		 NTHREADS, iters);
	return KINJECT_VERDICT_PASS;
}

const struct scenario scn_kthreads = {
	.name = "kthreads",
	.what = "kernel threads: preempt-off and IRQs-off sections never switched, deferred preemption",
	.setup = setup,
	.finish = finish,
};
