/* SPDX-License-Identifier: MIT */
/*
 * Scheduler, preemption and interrupt accounting (abi.h preempt_count
 * layout: bits 0-7 preempt depth, 8-15 softirq, 16-19 hardirq, 20-23 NMI).
 */
#ifndef GUEST_SCHED_H
#define GUEST_SCHED_H

#include <stdint.h>
#include <guest/task.h>

#define DEFAULT_QUANTUM 2    /* ticks */

/* sched.c */
void sched_init(void);
void sched_enqueue(struct task *t);          /* IRQs off */
void sched_wake(struct task *t);             /* IRQs off; may set need_resched */
void __attribute__((noreturn)) sched_start(void);
void schedule(void);                         /* IRQs on, preempt count 0 */
void __schedule(int preempt);                /* IRQs off */
void sched_yield(void);
int sched_higher_prio_runnable(int prio);    /* IRQs off */
int sched_same_prio_runnable(int prio);      /* IRQs off */
extern int sched_quantum;

/* Wait queues: one list of blocked tasks. */
struct waitq { struct task *head; };
void wait_on(struct waitq *wq);              /* blocks current; IRQs on at entry */
void wait_on_locked(struct waitq *wq);       /* IRQs off at entry, off at exit */
int wake_up(struct waitq *wq);               /* wakes all; returns how many */

/* preempt.c */
static inline uint64_t preempt_count(void) { return kinject_percpu.preempt_count; }
static inline int need_resched(void) { return kinject_percpu.need_resched != 0; }
static inline void set_need_resched(void) { kinject_percpu.need_resched = 1; }
static inline void clear_need_resched(void) { kinject_percpu.need_resched = 0; }
static inline int in_interrupt(void)
{
	return (preempt_count() & (KINJECT_SOFTIRQ_MASK | KINJECT_HARDIRQ_MASK | KINJECT_NMI_MASK)) != 0;
}
void preempt_disable(void);
void preempt_enable(void);
void preempt_enable_no_resched(void);
void preempt_count_add(uint64_t v);
void preempt_count_sub(uint64_t v);

/* irq.c */
typedef void (*irq_handler_t)(unsigned vector);
void irq_init(void);
void irq_register(unsigned vector, irq_handler_t h);
void irq_enter(void);
void irq_exit(void);
#define SOFTIRQ_TIMER 0
#define SOFTIRQ_NR    1
void raise_softirq(unsigned nr);             /* IRQs off */
void open_softirq(unsigned nr, void (*fn)(void));
struct irq_stats {
	uint64_t irqs, nested, unexpected, spurious, nmis, softirqs;
	uint64_t wakeups, resched_ipis, signal_irqs, exceptions, kernel_db;
	uint64_t spurious_pf;      /* #PF whose page permits the access (traps.c) */
	uint64_t tolerated;        /* kernel #GP in an injection-tolerant range */
	uint64_t int80_as_ud;      /* int $0x80 that arrived as #UD (kvm_pvm) */
	uint64_t int3_as_ud;       /* int3 that arrived as #UD (kvm_pvm, compat mode) */
	uint64_t per_vector[256];
};
/* Statistics only: the kernel only ever adds to them and never reads them
 * (kinject checks this with capstone before it lets a case end at its
 * resume: engine.c, stats_write_only), so what a case did to them cannot
 * change the rest of a run.  State the kernel reads lives elsewhere. */
extern struct irq_stats irq_stats;
/* Timer ticks taken: read by the kthreads scenario, so not a statistic. */
extern uint64_t timer_ticks;
extern struct waitq wakeup_event;            /* KINJECT_VEC_WAKEUP wakes it */
/* Every C handler checks it runs with the kernel GS base (bugs #5, #7, #11). */
void check_kernel_gs(const char *who, const struct kinject_frame *f);

#endif /* GUEST_SCHED_H */
