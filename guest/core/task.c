// SPDX-License-Identifier: MIT
/*
 * Task slots and the user address space.  Everything a task could need is
 * allocated and mapped once in tasks_init(), before READY: the harness
 * snapshots there and restores only dirtied memory, so page tables must not
 * change during a run, and a fixed layout keeps runs identical.
 *
 * One user address space is shared by all ring-3 tasks: the .user.text and
 * .user.data sections of the kernel image, plus per-slot stack and data
 * windows (uapi.h).
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/scenario.h>
#include <guest/x86.h>

extern char __user_text_start[], __user_text_end[];
extern char __user_data_start[], __user_data_end[];
extern char boot_stack_top[];

struct task tasks[MAX_TASKS];
struct task idle_task_storage;
static int next_pid = 1;
static uint64_t kstacks;   /* kernel VA of MAX_TASKS + 1 stacks, idle last */

static void layout_add(uint64_t kind, uint64_t start, uint64_t end)
{
	struct kinject_layout *l = &kinject_layout;

	if (l->nstacks >= KINJECT_LAYOUT_MAX_STACKS)
		panic("layout: no room for stack range %lx-%lx", start, end);
	l->stacks[l->nstacks].kind = kind;
	l->stacks[l->nstacks].start = start;
	l->stacks[l->nstacks].end = end;
	l->nstacks++;
}

static void map_range(uint64_t va, uint64_t pa, uint64_t len, unsigned flags)
{
	for (uint64_t off = 0; off < len; off += 4096)
		variant_map_user(va + off, pa + off, flags);
}

uint64_t user_text_va(const void *kernel_sym)
{
	return USER_TEXT_VA + ((uint64_t)kernel_sym - (uint64_t)__user_text_start);
}

static void map_user_image(void)
{
	uint64_t text_len = (uint64_t)(__user_text_end - __user_text_start);
	uint64_t data_len = (uint64_t)(__user_data_end - __user_data_start);

	/* Text keeps its distance to data, so the user programs can be
	 * position-independent with RIP-relative data references. */
	map_range(USER_TEXT_VA, virt_to_phys(__user_text_start), (text_len + 4095) & ~4095ULL,
		  VARIANT_MAP_EXEC);
	map_range(user_text_va(__user_data_start), virt_to_phys(__user_data_start),
		  (data_len + 4095) & ~4095ULL, VARIANT_MAP_WRITE);
}

void tasks_init(void)
{
	kstacks = (uint64_t)phys_to_virt(pages_alloc((MAX_TASKS + 1) * KSTACK_PAGES));
	layout_add(KINJECT_STACK_TASK, kstacks, kstacks + (MAX_TASKS + 1) * KSTACK_SIZE);
	kinject_layout.task_stack_size = KSTACK_SIZE;
	/* kmain (and READY) run on the arch boot stack until the first switch. */
	layout_add(KINJECT_STACK_TASK, (uint64_t)boot_stack_top - 16384, (uint64_t)boot_stack_top);

	map_user_image();
	for (int i = 0; i < MAX_TASKS; i++) {
		struct task *t = &tasks[i];
		uint64_t stack_pa = pages_alloc(USER_STACK_PAGES);
		uint64_t data_pa = pages_alloc(2);

		t->slot = i;
		t->stack_top = kstacks + (uint64_t)(i + 1) * KSTACK_SIZE;
		t->ustack_top = USER_STACK_BASE + (uint64_t)(i + 1) * USER_STACK_WINDOW;
		t->udata_va = USER_DATA_BASE + (uint64_t)i * USER_DATA_WINDOW;
		t->udata = phys_to_virt(data_pa);
		map_range(t->ustack_top - USER_STACK_PAGES * 4096, stack_pa,
			  USER_STACK_PAGES * 4096, VARIANT_MAP_WRITE);
		map_range(t->udata_va, data_pa, 2 * 4096, VARIANT_MAP_WRITE);
	}
	layout_add(KINJECT_STACK_USER, USER_STACK_BASE,
		   USER_STACK_BASE + MAX_TASKS * USER_STACK_WINDOW);

	/* The ss16 scenario's 16-bit stack segment: its top pages. */
	uint64_t ss16_top = ss16_stack_base() + 0x10000;
	map_range(ss16_top - USER_SS16_PAGES * 4096, pages_alloc(USER_SS16_PAGES),
		  USER_SS16_PAGES * 4096, VARIANT_MAP_WRITE);
	layout_add(KINJECT_STACK_USER, ss16_top - USER_SS16_PAGES * 4096, ss16_top);

	idle_task_storage.slot = -1;
	idle_task_storage.stack_top = kstacks + (MAX_TASKS + 1) * KSTACK_SIZE;
}

struct task *task_current(void)
{
	return (struct task *)kinject_percpu.current;
}

static struct task *task_alloc(const char *name, int prio, int owned)
{
	for (int i = 0; i < MAX_TASKS; i++) {
		struct task *t = &tasks[i];
		if (t->state != TASK_FREE)
			continue;
		/* Keep the slot's fixed resources, reset everything else. */
		uint64_t stack_top = t->stack_top, ustack_top = t->ustack_top;
		uint64_t udata_va = t->udata_va;
		uint8_t *udata = t->udata;
		memset(t, 0, sizeof(*t));
		t->slot = i;
		t->stack_top = stack_top;
		t->ustack_top = ustack_top;
		t->udata_va = udata_va;
		t->udata = udata;
		memset(udata, 0, 2 * 4096);
		t->pid = next_pid++;
		t->name = name;
		t->prio = prio;
		t->quantum = sched_quantum;
		t->state = TASK_BLOCKED;   /* not runnable until started */
		t->scenario_owned = owned;
		if (owned)
			scenario_task_started();
		return t;
	}
	panic("out of task slots creating %s", name);
}

static void task_start(struct task *t)
{
	uint64_t fl = local_irq_save();
	sched_wake(t);
	local_irq_restore(fl);
	/* A higher-priority newcomer preempts its creator right here. */
	if (need_resched() && preempt_count() == 0 && irqs_enabled() &&
	    kinject_percpu.current)
		schedule();
}

static struct task *kthread_new(const char *name, int prio, void (*fn)(void *), void *arg,
				int owned)
{
	struct task *t = task_alloc(name, prio, owned);

	variant_prepare_kthread(t, t->stack_top, fn, arg);
	task_start(t);
	return t;
}

struct task *kthread_create(const char *name, int prio, void (*fn)(void *), void *arg)
{
	return kthread_new(name, prio, fn, arg, 1);
}

struct task *kthread_create_system(const char *name, int prio, void (*fn)(void *), void *arg)
{
	return kthread_new(name, prio, fn, arg, 0);
}

struct task *utask_alloc(const char *name, int prio)
{
	struct task *t = task_alloc(name, prio, 1);

	t->user = 1;
	return t;
}

void utask_start(struct task *t, const struct kinject_frame *regs)
{
	struct kinject_frame f = *regs;

	if (!f.rsp)
		f.rsp = t->ustack_top;
	if (!f.rflags)
		f.rflags = X86_RFLAGS_IF | X86_RFLAGS_FIXED;
	variant_prepare_user(t, t->stack_top, &f);
	task_start(t);
}

void task_exit(int status)
{
	struct task *t = task_current();

	cli();
	if (preempt_count() != 0)
		oops(KINJECT_OOPS_BAD_STATE, "task exits with a nonzero preempt count", 0);
	t->exit_status = status;
	t->state = TASK_DEAD;
	if (t->scenario_owned)
		scenario_task_exited();
	__schedule(0);
	panic("dead task %s was scheduled again", t->name);
}

void tasks_reap(void)
{
	struct task *cur = task_current();

	for (int i = 0; i < MAX_TASKS; i++)
		if (tasks[i].state == TASK_DEAD && &tasks[i] != cur)
			tasks[i].state = TASK_FREE;
}
