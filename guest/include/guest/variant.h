/* SPDX-License-Identifier: MIT */
/*
 * The entry-variant contract: what an entry variant (guest/<variant>/) gives
 * the kernel core (guest/core/), and what the core gives the variant.
 *
 * A variant owns everything between the hardware and the C handlers: the GDT,
 * TSS, IDT and its stubs, IST/IRQ/trampoline/espfix stacks, page-table
 * isolation, swapgs, the SYSCALL MSRs, the return paths (to kernel with
 * preemption, to user with the exit-work loop) and the final IRET/SYSRET.
 * The core owns tasks, the scheduler, preempt and irq accounting, signals,
 * system calls and scenarios, and knows nothing of how entry is done.
 * Adding a variant = one new directory implementing the functions below.
 *
 * Calling conventions for every core handler called from variant assembly:
 *   - SysV C ABI, RSP 16-byte aligned at the call, on a kernel stack (task,
 *     IRQ or IST) with a flat SS;
 *   - kernel GS base loaded (GS:0 == &kinject_percpu), kernel CR3 loaded;
 *   - DF clear, AC clear (CLAC done), IF clear unless stated;
 *   - `f` points at the complete struct kinject_frame (guest/include/kinject/abi.h)
 *     of the interrupted context, which the handler may rewrite (signals,
 *     sigreturn, system call results) and the variant then returns to.
 */
#ifndef GUEST_VARIANT_H
#define GUEST_VARIANT_H

#include <stdint.h>
#include <kinject/abi.h>

struct task;

/* ===== Provided by the variant ========================================== */

/* Name reported in the layout block ("linux64"). */
extern const char variant_name[];

/* Called once by kmain on the boot stack, IRQs off, after the core's page
 * allocator works (page_alloc()) and before any task exists.  Installs the
 * variant's GDT, TSS (with IST stacks), IDT (all 256 vectors), the IRQ stack,
 * SYSCALL MSRs, builds the kernel and (with PTI) user page tables, the espfix
 * area, loads the kernel CR3 and sets GS base = &kinject_percpu.  Fills in
 * the percpu fields it owns and the variant's part of kinject_layout (stacks,
 * entry text range, CR3 values). */
void variant_init(void);

/* Map one 4 KiB user page (va < 0x0000800000000000) to physical page pa in
 * every page table a ring-3 task runs or enters the kernel on (kernel and
 * user tables).  flags: VARIANT_MAP_WRITE, VARIANT_MAP_EXEC. */
#define VARIANT_MAP_WRITE 1u
#define VARIANT_MAP_EXEC  2u
void variant_map_user(uint64_t va, uint64_t pa, unsigned flags);

/* Install LDT descriptors (raw 8-byte descriptors, entry i = selector
 * (i << 3) | 4 | RPL).  The LDT lives where user-mode segment loads can
 * read it (with PTI: in memory the user page tables map). n <= 16. */
void variant_set_ldt(const uint64_t *desc, unsigned n);

/* Prepare a new task's kernel stack so that the first switch to it starts it.
 *   kernel thread: runs fn(arg) at CPL0 with IRQs on and preempt count 0;
 *                  if fn returns the core's task_exit() is called.
 *   user task:     returns to ring 3 with the registers in *user (only
 *                  rip, rsp, rflags and GPRs are taken; cs/ss are the
 *                  variant's user selectors unless user->cs/ss are nonzero)
 *                  through the normal return-to-user path (exit work
 *                  included).
 * stack_top is the top of the task's kernel stack; sets t->ksp. */
void variant_prepare_kthread(struct task *t, uint64_t stack_top,
			     void (*fn)(void *), void *arg);
void variant_prepare_user(struct task *t, uint64_t stack_top,
			  const struct kinject_frame *user);

/* Switch kernel stacks: save callee-saved registers on prev's stack and
 * prev->ksp, load next->ksp, update whatever entry needs (percpu
 * top_of_stack, TSS or trampoline stack top), and return on next's stack.
 * Called by schedule() with IRQs off. */
void variant_switch_to(struct task *prev, struct task *next);

/* User selectors the variant's GDT uses (for the core's sigreturn checks). */
extern const uint16_t variant_user_cs, variant_user_ss, variant_user_cs32;
/* A 16-bit DPL3 stack segment in the GDT, returned through ESPFIX like an
 * LDT one, for hosts that cannot IRET to an LDT SS (0: the variant has none). */
extern const uint16_t variant_user_ss16;

/* ===== Provided by the core ============================================ */

/* Every task begins with these two fields; the variant reads/writes them
 * from assembly at these offsets. */
#define TASK_KSP        0x00   /* saved kernel RSP while switched out */
#define TASK_STACK_TOP  0x08   /* top of its kernel stack */

/* Exceptions 0-31 (#DB, #MC and #DF included, after paranoid entry).
 * aux = CR2 for #PF (read before anything else could fault), DR6 for #DB,
 * 0 otherwise.  IF as at entry; the core enables IRQs when the interrupted
 * context had them enabled. */
void do_exception(struct kinject_frame *f, uint64_t aux);
/* External interrupts 32-255 (but KINJECT_VEC_SYSCALL80), on the IRQ stack,
 * IRQs off.  Does irq_enter, the vector's work, irq_exit (softirqs). */
void do_irq(struct kinject_frame *f);
/* NMI, IRQs off, NMIs blocked (or the variant's nesting logic says so). */
void do_nmi(struct kinject_frame *f);
/* System call: number in f->orig_rax (== f->rax at entry), arguments in
 * rdi, rsi, rdx, r10, r8, r9; the result goes to f->rax.  Called with IRQs
 * off, on the task stack; enables IRQs itself. */
void do_syscall(struct kinject_frame *f);
/* Exit-to-user work.  Called with IRQs off when percpu need_resched or
 * sigpending is set; may enable IRQs, schedule and deliver a signal (which
 * rewrites *f); returns with IRQs off.  The variant re-checks both flags
 * with IRQs off after it returns and calls it again while either is set. */
void exit_to_user_work(struct kinject_frame *f);
/* Preemption on return to kernel.  The variant calls it with IRQs off only
 * when the interrupted context had IF=1, preempt count is 0 and need_resched
 * is set; it schedules while need_resched stays set and returns IRQs off. */
void preempt_schedule_irq(void);
/* Reports an oops (KINJECT_OOPS_*) through the hypercall port and halts. */
void __attribute__((noreturn)) oops(uint64_t reason, const char *msg,
				    const struct kinject_frame *f);
/* The core's per-CPU area and layout block (abi.h). */
extern struct kinject_percpu kinject_percpu;
extern struct kinject_layout kinject_layout;
/* Page allocator: one zeroed 4 KiB page (physical address); kernel virtual
 * address of a physical one. */
uint64_t page_alloc(void);
#define phys_to_virt(pa) ((void *)((uint64_t)(pa) + KINJECT_KERNEL_VBASE))
#define virt_to_phys(va) ((uint64_t)(va) - KINJECT_KERNEL_VBASE)

#endif /* GUEST_VARIANT_H */
