/* SPDX-License-Identifier: MIT */
/*
 * Tasks: kernel threads and ring-3 tasks.  One static array of task slots;
 * each slot owns a kernel stack, a user stack window and a user data area,
 * all set up once at boot (so page tables never change after READY).
 */
#ifndef GUEST_TASK_H
#define GUEST_TASK_H

#include <stdint.h>
#include <guest/variant.h>
#include <guest/uapi.h>

#define MAX_TASKS        16
#define KSTACK_PAGES     4
#define KSTACK_SIZE      (KSTACK_PAGES * 4096UL)

enum task_state { TASK_FREE, TASK_RUNNABLE, TASK_RUNNING, TASK_BLOCKED, TASK_DEAD };

/* Priorities: higher runs first; round robin within one. */
#define PRIO_IDLE   0     /* the idle task only, never queued */
#define PRIO_LOW    1
#define PRIO_NORMAL 2
#define PRIO_HIGH   3
#define PRIO_MAX    7

struct siginfo_k {
	uint64_t signo, vector, error_code, addr;
};

struct task {
	uint64_t ksp;               /* TASK_KSP: the variant's switch_to uses it */
	uint64_t stack_top;         /* TASK_STACK_TOP */
	int slot, pid;
	const char *name;
	enum task_state state;
	int prio;
	int quantum;                /* ticks left before need_resched */
	int user;                   /* a ring-3 task */
	int scenario_owned;         /* counted in the scenario's live tasks */
	struct task *next;          /* run queue / wait queue link */
	/* User context kept across switches (not in the frame). */
	uint64_t user_fs_base, user_gs_base;
	/* Statistics and the invariants scenarios check. */
	uint64_t switches_in, preemptions, ticks;
	int no_switch;              /* nonzero: a switch away from it is a bug */
	const char *no_switch_why;
	int exit_status;
	/* Signals. */
	uint64_t sig_handler[NSIG], sig_restorer[NSIG];
	uint32_t sig_pending;
	struct siginfo_k sig_info[NSIG];
	/* User memory of this slot (user VAs, and the kernel alias of data). */
	uint64_t ustack_top, udata_va;
	uint8_t *udata;             /* kernel view of the FS+GS data pages */
};

/* task.c */
void tasks_init(void);                       /* stacks, user mappings */
struct task *task_current(void);
/* Scenario tasks: the scenario ends when all of them have exited. */
struct task *kthread_create(const char *name, int prio, void (*fn)(void *), void *arg);
/* Tasks outside any scenario (the runner). */
struct task *kthread_create_system(const char *name, int prio, void (*fn)(void *), void *arg);
/* Ring-3 tasks in two steps, so the scenario can fill the task's data area
 * (t->udata) and initial registers knowing its addresses: utask_alloc, then
 * utask_start with the registers (rsp = t->ustack_top, rflags = IF, and the
 * variant's 64-bit user selectors when left zero). */
struct task *utask_alloc(const char *name, int prio);
void utask_start(struct task *t, const struct kinject_frame *regs);
void __attribute__((noreturn)) task_exit(int status);
/* Frees the slots of the scenario's dead tasks (runner, between scenarios). */
void tasks_reap(void);
uint64_t user_text_va(const void *kernel_sym);  /* .user.text symbol -> user VA */
extern struct task tasks[MAX_TASKS];
extern struct task idle_task_storage;

/* signal.c */
void signal_send(struct task *t, int signo, uint64_t vector, uint64_t error_code, uint64_t addr);
void signal_deliver(struct kinject_frame *f);
long sys_sigaction(uint64_t signo, uint64_t handler, uint64_t restorer);
long sys_sigreturn(struct kinject_frame *f);
void ldt_ss16_install(void);
int selector_is_user_code(uint64_t sel);
int selector_is_user_data(uint64_t sel);

/* uaccess.S: 0 or -EFAULT; refuse anything outside the user half. */
int copy_to_user(uint64_t udst, const void *src, uint64_t n);
int copy_from_user(void *dst, uint64_t usrc, uint64_t n);
long strncpy_from_user(char *dst, uint64_t usrc, uint64_t n);
int uaccess_fixup(struct kinject_frame *f);  /* 1 if f->rip was a uaccess insn */

#endif /* GUEST_TASK_H */
