/* SPDX-License-Identifier: MIT */
/*
 * Scenarios: each creates its tasks in setup(), runs until they all exit,
 * then judges in finish().  Failures are recorded with scenario_fail()
 * (first one wins: its message names what was expected and what was seen).
 */
#ifndef GUEST_SCENARIO_H
#define GUEST_SCENARIO_H

#include <stdint.h>

struct scenario {
	const char *name;
	const char *what;                    /* one line for docs and --help */
	void (*setup)(void);
	/* Returns KINJECT_VERDICT_*; may use scenario_fail().  NULL: pass
	 * unless a failure was recorded. */
	int (*finish)(char *msg, unsigned long len);
};

extern const struct scenario scn_user_spin, scn_syscalls, scn_ss16, scn_signals,
	scn_kthreads, scn_preempt;

void scenario_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int scenario_failed(void);
uint64_t scenario_iters(uint64_t dflt);      /* iters= option, or dflt */
void scenario_task_started(void);            /* a scenario task exists */
void scenario_task_exited(void);             /* ... and is gone */
/* Injection-tolerant kernel code (a TESTBED feature, no real kernel has
 * it): a CPL0 #GP whose RIP lies in [start, end) is counted
 * (irq_stats.tolerated) and returned from, resuming at the same RIP, so the
 * harness can inject #GP into kernel loops.  Anywhere else a kernel #GP
 * still oopses.  At most 4 ranges; adding one twice is harmless. */
void inject_tolerant_add(uint64_t start, uint64_t end);
/* Host quirks the harness passes on the command line (CONTRACT_NOTES):
 * `syscall=0`: ring-3 SYSCALL does not work on the host KVM, no program
 * uses it; `ldt=0`: no IRET to a 16-bit LDT stack segment, ss16 uses the
 * variant's GDT 16-bit SS.  Both default to 1. */
int host_syscall_ok(void);
int host_ldt_ss_ok(void);
int host_int80_ok(void);
uint64_t ss16_stack_base(void);             /* linear base of ss16's SS */
/* Runs the scenarios the command line selected; the runner kthread. */
void scenarios_prepare(void);
void scenario_runner(void *arg);

#endif /* GUEST_SCENARIO_H */

/* scenarios/common.c: a ring-3 task's data area with distinct register
 * patterns (seeded), FS/GS self pointers, pid and iterations; fills *regs
 * with the patterns, RIP = entry, RDI = FS area, RSI = GS area. */
struct task;
struct kinject_frame;
void user_task_prepare(struct task *t, unsigned seed, uint64_t iters, const void *entry,
		       struct kinject_frame *regs);
uint64_t user_data_read(const struct task *t, unsigned off);
int scenario_verbose(void);
