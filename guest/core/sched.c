// SPDX-License-Identifier: MIT
/*
 * The scheduler: fixed priorities, round robin within one, one run queue
 * per priority.  The running task is never on a queue.  A task preempted
 * with quantum left goes back to the head of its queue (it did not use up
 * its turn); one whose quantum ran out, or that yielded, goes to the tail.
 *
 * __schedule() is the only place a switch happens, always with IRQs off and
 * preempt count 0, so the invariants of bug #15 are checked right here:
 * whoever calls it with the count raised, or while the current task has
 * declared a no-switch section (scenarios mark them independently of the
 * count), gets an oops with the reason.
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/x86.h>

int sched_quantum = DEFAULT_QUANTUM;
static struct task *rq_head[PRIO_MAX + 1], *rq_tail[PRIO_MAX + 1];
/* kmain's context: switched away from once, never resumed. */
static struct task boot_task = { .name = "boot", .slot = -1 };
static char oops_buf[160];

static void rq_push_tail(struct task *t)
{
	t->next = 0;
	if (rq_tail[t->prio])
		rq_tail[t->prio]->next = t;
	else
		rq_head[t->prio] = t;
	rq_tail[t->prio] = t;
}

static void rq_push_head(struct task *t)
{
	t->next = rq_head[t->prio];
	rq_head[t->prio] = t;
	if (!rq_tail[t->prio])
		rq_tail[t->prio] = t;
}

static struct task *rq_pop_best(void)
{
	for (int p = PRIO_MAX; p > PRIO_IDLE; p--) {
		struct task *t = rq_head[p];
		if (t) {
			rq_head[p] = t->next;
			if (!rq_head[p])
				rq_tail[p] = 0;
			t->next = 0;
			return t;
		}
	}
	return &idle_task_storage;
}

int sched_higher_prio_runnable(int prio)
{
	for (int p = PRIO_MAX; p > prio; p--)
		if (rq_head[p])
			return 1;
	return 0;
}

int sched_same_prio_runnable(int prio)
{
	return prio > PRIO_IDLE && prio <= PRIO_MAX && rq_head[prio] != 0;
}

void sched_enqueue(struct task *t)
{
	if (t->prio <= PRIO_IDLE || t->prio > PRIO_MAX)
		panic("task %s has bad priority %d", t->name, t->prio);
	t->state = TASK_RUNNABLE;
	rq_push_tail(t);
}

void sched_wake(struct task *t)
{
	struct task *cur = task_current();

	if (t->state == TASK_RUNNABLE || t->state == TASK_RUNNING)
		return;
	sched_enqueue(t);
	/* Preemption trigger: a woken or new task outranks the current one. */
	if (!cur || t->prio > cur->prio)
		set_need_resched();
}

static void switch_user_state(struct task *prev, struct task *next)
{
	/* The user FS base is live in MSR_FS_BASE and the user GS base in
	 * MSR_KERNEL_GS_BASE (swapped out by the entry's swapgs) while in the
	 * kernel; both are per-task state no frame holds. */
	prev->user_fs_base = rdmsr(MSR_FS_BASE);
	prev->user_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
	wrmsr(MSR_FS_BASE, next->user_fs_base);
	wrmsr(MSR_KERNEL_GS_BASE, next->user_gs_base);
}

void __schedule(int preempt)
{
	struct task *prev = task_current(), *next;

	if (irqs_enabled())
		oops(KINJECT_OOPS_BAD_STATE, "__schedule entered with IRQs on", 0);
	if (preempt_count() != 0) {
		snprintf(oops_buf, sizeof(oops_buf), "switch away from %s with preempt count %lx",
			 prev->name, preempt_count());
		oops(KINJECT_OOPS_SCHED_ATOMIC, oops_buf, 0);
	}
	if (prev->no_switch && prev->state != TASK_DEAD) {
		snprintf(oops_buf, sizeof(oops_buf), "%s switch away from %s inside its %s",
			 preempt ? "preemptive" : "voluntary", prev->name, prev->no_switch_why);
		oops(KINJECT_OOPS_SCHED_ATOMIC, oops_buf, 0);
	}
	clear_need_resched();

	if (prev->state == TASK_RUNNING && prev != &idle_task_storage) {
		prev->state = TASK_RUNNABLE;
		if (preempt && prev->quantum > 0) {
			rq_push_head(prev);
		} else {
			if (prev->quantum <= 0)
				prev->quantum = sched_quantum;
			rq_push_tail(prev);
		}
	}
	next = rq_pop_best();
	next->state = TASK_RUNNING;
	if (next == prev)
		return;
	if (preempt)
		prev->preemptions++;
	next->switches_in++;
	switch_user_state(prev, next);
	kinject_percpu.current = (uint64_t)next;
	kinject_percpu.sigpending = next->sig_pending != 0;
	variant_switch_to(prev, next);
	/* Back in prev, switched to by someone's __schedule. */
}

void schedule(void)
{
	if (!irqs_enabled() || preempt_count() != 0) {
		snprintf(oops_buf, sizeof(oops_buf), "schedule() with IRQs %s, preempt count %lx",
			 irqs_enabled() ? "on" : "off", preempt_count());
		oops(KINJECT_OOPS_SCHED_ATOMIC, oops_buf, 0);
	}
	cli();
	__schedule(0);
	sti();
}

void sched_yield(void)
{
	cli();
	task_current()->quantum = 0;   /* to the tail of its priority */
	__schedule(0);
	sti();
}

void wait_on_locked(struct waitq *wq)
{
	struct task *t = task_current();

	t->state = TASK_BLOCKED;
	t->next = wq->head;
	wq->head = t;
	__schedule(0);
}

void wait_on(struct waitq *wq)
{
	cli();
	wait_on_locked(wq);
	sti();
}

int wake_up(struct waitq *wq)
{
	uint64_t fl = local_irq_save();
	struct task *list = 0, *t;
	int n = 0;

	/* The queue is LIFO; reverse it so waiters wake in the order they
	 * blocked, which keeps runs easy to reason about. */
	while ((t = wq->head)) {
		wq->head = t->next;
		t->next = list;
		list = t;
	}
	while ((t = list)) {
		list = t->next;
		t->next = 0;
		sched_wake(t);
		n++;
	}
	local_irq_restore(fl);
	return n;
}

static void idle_fn(void *arg)
{
	(void)arg;
	for (;;) {
		cli();
		if (need_resched()) {
			__schedule(0);
			sti();
			continue;
		}
		/* Nothing to run: only an interrupt can change that.  If none
		 * is pending the VMM sees HLT and ends the run (a hang). */
		sti_hlt();
	}
}

void sched_init(void)
{
	struct task *idle = &idle_task_storage;

	sched_quantum = (int)cmdline_u64("quantum", DEFAULT_QUANTUM);
	if (sched_quantum < 1)
		sched_quantum = 1;
	idle->name = "idle";
	idle->prio = PRIO_IDLE;
	idle->state = TASK_RUNNABLE;
	variant_prepare_kthread(idle, idle->stack_top, idle_fn, 0);
}

void sched_start(void)
{
	extern char boot_stack_top[];
	struct task *next;

	cli();
	boot_task.stack_top = (uint64_t)boot_stack_top;
	clear_need_resched();
	next = rq_pop_best();
	next->state = TASK_RUNNING;
	next->switches_in++;
	kinject_percpu.current = (uint64_t)next;
	kinject_percpu.sigpending = 0;
	variant_switch_to(&boot_task, next);
	panic("the boot context was resumed");
}
