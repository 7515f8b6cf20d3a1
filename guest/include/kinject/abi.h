/* SPDX-License-Identifier: MIT */
/*
 * kinject guest ABI: the one contract between the testbed guest kernel and the
 * VMM/harness.  Everything the harness knows about the guest that is not the
 * architecture itself is written here: the boot protocol, the I/O ports and
 * hypercalls, the saved register frame, the per-CPU area, the exported layout
 * block, and the symbols the harness may look up.
 *
 * This header is included by C on both sides and by GNU as (.S) in the guest,
 * so constants are plain #defines and C types sit behind __ASSEMBLER__.
 *
 * Version: bump KINJECT_ABI_VERSION on any incompatible change.
 */
#ifndef KINJECT_ABI_H
#define KINJECT_ABI_H

#define KINJECT_ABI_VERSION 2

/* ------------------------------------------------------------------------
 * Boot protocol (VMM -> guest)
 *
 * The guest is an ELF64 x86-64 executable.  Each PT_LOAD segment is copied
 * to guest-physical p_paddr (p_vaddr may differ: the kernel links high).
 * The VMM enters the guest directly in 64-bit long mode at e_entry with:
 *   CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = SCE|LME|LMA|NXE
 *   CS  = KINJECT_BOOT_CS (64-bit code, DPL0), DS=ES=SS = KINJECT_BOOT_DS,
 *   FS = GS = 0 with base 0, RFLAGS = 0x2 (IF clear), no IDT (limit 0),
 *   RDI = guest-physical address of struct kinject_boot_info (also mapped),
 *   RSI = KINJECT_BOOT_MAGIC, RSP = KINJECT_BOOT_STACK_TOP.
 * The VMM's page tables map all guest RAM twice with 2 MiB pages:
 *   identity (VA = PA) and VA = KINJECT_KERNEL_VBASE + PA.
 * They live at KINJECT_BOOT_PGTABLE .. +0x4000 (PML4, PDPT low, PDPT high, PD)
 * and support RAM up to 1 GiB.  The guest installs its own GDT, IDT, TSS and
 * page tables as early as it likes; the VMM's are boot-only scaffolding.
 * CPUID is the host's KVM_GET_SUPPORTED_CPUID (FSGSBASE, PCID, SMEP, SMAP...).
 * ------------------------------------------------------------------------ */
#define KINJECT_KERNEL_VBASE    0xffffffff80000000
#define KINJECT_BOOT_INFO       0x1000      /* guest-physical */
#define KINJECT_BOOT_GDT        0x2000
#define KINJECT_BOOT_PGTABLE    0x3000      /* 4 pages */
#define KINJECT_BOOT_STACK_TOP  0x80000
#define KINJECT_BOOT_CS         0x08
#define KINJECT_BOOT_DS         0x10
#define KINJECT_BOOT_MAGIC      0x544f4f424a4e494bULL /* "KINJBOOT" */
#define KINJECT_CMDLINE_MAX     256

/* Ring-3 code: the guest maps its .user.text section (the kernel-image
 * symbols from __user_text_start to __user_text_end) at this user virtual
 * address, so a ring-3 label's user address is
 * KINJECT_USER_TEXT_VA + (label - __user_text_start).  Case files name
 * such an address as `user:LABEL+OFF`. */
#define KINJECT_USER_TEXT_VA    0x400000

/* KINJECT_SYSEMU_SITES: the guest lists the link addresses of the SYSCALL
 * and INT n instructions of its 64-bit ring-3 code as 64-bit words from
 * symbol __sysemu_sites_start to __sysemu_sites_end (both in a loaded
 * section).  On hosts that mis-deliver them from ring 3 the VMM runs them
 * there itself (vmm/sysemu.c); the guest then uses SYSCALL as on any
 * machine.  A guest without the symbols gets `syscall=0` there. */

/* ------------------------------------------------------------------------
 * I/O ports (guest -> VMM)
 *   console: `outb %al, $KINJECT_PORT_CONSOLE`, one byte of text.
 *   hypercall: `outl %eax, $KINJECT_PORT_HCALL`, EAX = KINJECT_HC_*,
 *              arguments in RDI, RSI, RDX, RCX (guest virtual addresses
 *              are translated by the VMM through the current CR3).
 *              Every register is preserved; results, if any, come back in RAX.
 * ------------------------------------------------------------------------ */
#define KINJECT_PORT_CONSOLE    0xe9
#define KINJECT_PORT_HCALL      0xeb

/* Does nothing: benchmarks measure the raw KVM exit round trip with it. */
#define KINJECT_HC_NOP          0
/* Boot and the scenario are ready; the harness snapshots here.
 *   RDI = VA of struct kinject_layout. */
#define KINJECT_HC_READY        1
/* Final verdict.  RDI = KINJECT_VERDICT_*, RSI = VA of a NUL-terminated
 * message (or 0).  The guest halts after it. */
#define KINJECT_HC_VERDICT      2
/* An invariant the guest can see itself broke.  RDI = KINJECT_OOPS_*,
 * RSI = VA of a message, RDX = VA of the struct kinject_frame involved (or 0).
 * The guest halts after it; the harness turns it into a "fatal" finding. */
#define KINJECT_HC_OOPS         3
/* Raise an external interrupt, as a device or another CPU would: the VMM
 * queues vector RDI as a *pending* interrupt, delivered when the guest can
 * architecturally take it.  Scenarios use it as their deterministic timer. */
#define KINJECT_HC_RAISE_IRQ    4
/* Test probe: a handler reports what it received.  RDI = vector,
 * RSI = error code, RDX = CR2, RCX = DR6.  Used by test guests. */
#define KINJECT_HC_PROBE        5
/* One scenario starts / ends.  RDI = VA of its name; for END, RSI = verdict. */
#define KINJECT_HC_SCENARIO_BEGIN 6
#define KINJECT_HC_SCENARIO_END   7
/* Raise an NMI, pending (delivered when NMIs are not blocked). */
#define KINJECT_HC_RAISE_NMI    8

#define KINJECT_VERDICT_PASS    0
#define KINJECT_VERDICT_FAIL    1
#define KINJECT_VERDICT_SKIP    3

#define KINJECT_OOPS_KERNEL_FAULT       1  /* exception at CPL0 with no fixup */
#define KINJECT_OOPS_SCHED_ATOMIC       2  /* schedule() with preempt count != 0 or IRQs off */
#define KINJECT_OOPS_PREEMPT_UNDERFLOW  3  /* preempt_enable() below zero */
#define KINJECT_OOPS_UNEXPECTED_VECTOR  4  /* a vector nothing expected */
#define KINJECT_OOPS_DOUBLE_FAULT       5  /* #DF handler ran */
#define KINJECT_OOPS_BAD_STATE          6  /* any other self-check (message says) */
#define KINJECT_OOPS_USER_CHECK         7  /* a ring-3 scenario saw a register change */

/* ------------------------------------------------------------------------
 * Vectors with a fixed meaning in the testbed kernel.
 * ------------------------------------------------------------------------ */
#define KINJECT_VEC_TIMER       0x20  /* quantum accounting; may set need-resched */
#define KINJECT_VEC_WAKEUP      0x21  /* wakes the thread waiting on the wake-up event */
#define KINJECT_VEC_SIGNAL      0xfc  /* an asynchronous signal source (a timer signal, a
					* debugger's stop): SIGTRAP to the running user task
					* if it has a handler, else counted and ignored */
#define KINJECT_VEC_RESCHED     0xfd  /* as another CPU's reschedule IPI: sets need-resched */
#define KINJECT_VEC_SPURIOUS    0xff  /* counted and ignored */
#define KINJECT_VEC_SYSCALL80   0x80  /* int $0x80 system call (DPL3 gate) */

/* ------------------------------------------------------------------------
 * Saved register frame: one layout for every entry (exception, interrupt,
 * NMI, SYSCALL, int $0x80).  The lower part is pushed by software, the
 * upper part (error_code .. ss) matches what the CPU pushes for an
 * exception with an error code; entries without one push a zero.
 * `vector` holds the vector number, or for a SYSCALL the value
 * KINJECT_FRAME_VECTOR_SYSCALL; `orig_rax` keeps RAX at entry (the system
 * call number) because RAX itself is rewritten with the result.
 * ------------------------------------------------------------------------ */
#define KINJECT_FRAME_R15        0x00
#define KINJECT_FRAME_R14        0x08
#define KINJECT_FRAME_R13        0x10
#define KINJECT_FRAME_R12        0x18
#define KINJECT_FRAME_R11        0x20
#define KINJECT_FRAME_R10        0x28
#define KINJECT_FRAME_R9         0x30
#define KINJECT_FRAME_R8         0x38
#define KINJECT_FRAME_RBP        0x40
#define KINJECT_FRAME_RDI        0x48
#define KINJECT_FRAME_RSI        0x50
#define KINJECT_FRAME_RDX        0x58
#define KINJECT_FRAME_RCX        0x60
#define KINJECT_FRAME_RBX        0x68
#define KINJECT_FRAME_RAX        0x70
#define KINJECT_FRAME_ORIG_RAX   0x78
#define KINJECT_FRAME_VECTOR     0x80
#define KINJECT_FRAME_ERROR_CODE 0x88
#define KINJECT_FRAME_RIP        0x90
#define KINJECT_FRAME_CS         0x98
#define KINJECT_FRAME_RFLAGS     0xa0
#define KINJECT_FRAME_RSP        0xa8
#define KINJECT_FRAME_SS         0xb0
#define KINJECT_FRAME_SIZE       0xb8
#define KINJECT_FRAME_VECTOR_SYSCALL 0x100

/* ------------------------------------------------------------------------
 * Per-CPU area.  The kernel GS base points at it while in the kernel
 * (GS:0 holds its own address).  The harness finds it at symbol
 * `kinject_percpu` and reads it from guest memory.
 * preempt_count layout: bits 0-7 preemption-disable depth, 8-15 softirq,
 * 16-19 hardirq, 20-23 NMI nesting.
 * ------------------------------------------------------------------------ */
#define KINJECT_PREEMPT_MASK    0x000000ffU
#define KINJECT_SOFTIRQ_SHIFT   8
#define KINJECT_SOFTIRQ_MASK    0x0000ff00U
#define KINJECT_HARDIRQ_SHIFT   16
#define KINJECT_HARDIRQ_MASK    0x000f0000U
#define KINJECT_NMI_SHIFT       20
#define KINJECT_NMI_MASK        0x00f00000U

#define KINJECT_PCPU_SELF            0x00  /* this struct's own address */
#define KINJECT_PCPU_CURRENT         0x08  /* struct task * running now */
#define KINJECT_PCPU_TOP_OF_STACK    0x10  /* top of current task's kernel stack */
#define KINJECT_PCPU_USER_RSP        0x18  /* SYSCALL entry scratch: user RSP */
#define KINJECT_PCPU_KERNEL_CR3      0x20  /* CR3 value of the kernel page tables */
#define KINJECT_PCPU_USER_CR3        0x28  /* CR3 value of the user page tables (0: no PTI) */
#define KINJECT_PCPU_PREEMPT_COUNT   0x30
#define KINJECT_PCPU_NEED_RESCHED    0x38  /* nonzero: reschedule at the next chance */
#define KINJECT_PCPU_IRQ_STACK_TOP   0x40
#define KINJECT_PCPU_IRQ_STACK_INUSE 0x48  /* nonzero while the IRQ stack is in use */
#define KINJECT_PCPU_ENTRY_STACK_TOP 0x50  /* trampoline (entry) stack top, = TSS.RSP0 */
#define KINJECT_PCPU_SIGPENDING      0x58  /* current task has a signal to deliver */
#define KINJECT_PCPU_VARIANT         0x80  /* 16 quadwords the entry variant owns */
#define KINJECT_PCPU_SIZE            0x100

/* ------------------------------------------------------------------------
 * Exported layout: a block at symbol `kinject_layout`, also passed with
 * KINJECT_HC_READY, that tells the harness where things are.  Ranges are
 * [start, end) kernel virtual addresses.  Stacks are what the stack oracle
 * accepts; the entry text is what `kinject map` and the sweep enumerate.
 * ------------------------------------------------------------------------ */
#define KINJECT_LAYOUT_MAGIC    0x54554f59414c4b4bULL /* "KKLAYOUT" */
#define KINJECT_STACK_TASK      1
#define KINJECT_STACK_IRQ       2
#define KINJECT_STACK_IST       3
#define KINJECT_STACK_ENTRY     4   /* trampoline stack */
#define KINJECT_STACK_ESPFIX    5
#define KINJECT_STACK_USER      6
#define KINJECT_LAYOUT_MAX_STACKS 16
#define KINJECT_LAYOUT_MAX_STATS  4

#ifndef __ASSEMBLER__
#include <stdint.h>

struct kinject_boot_info {
	uint64_t magic;                     /* KINJECT_BOOT_MAGIC */
	uint32_t abi_version;               /* KINJECT_ABI_VERSION */
	uint32_t reserved;
	uint64_t mem_size;                  /* bytes of guest RAM from PA 0 */
	char cmdline[KINJECT_CMDLINE_MAX];  /* "scenario=NAME key=value ..." */
};

struct kinject_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t orig_rax;
	uint64_t vector;
	uint64_t error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct kinject_percpu {
	uint64_t self;
	uint64_t current;
	uint64_t top_of_stack;
	uint64_t user_rsp;
	uint64_t kernel_cr3;
	uint64_t user_cr3;
	uint64_t preempt_count;
	uint64_t need_resched;
	uint64_t irq_stack_top;
	uint64_t irq_stack_inuse;
	uint64_t entry_stack_top;
	uint64_t sigpending;
	uint64_t reserved[4];
	uint64_t variant[16];
};

struct kinject_range {
	uint64_t kind;                      /* KINJECT_STACK_* for stacks */
	uint64_t start, end;
	/* [live_start, live_end): state kept in this stack across its uses
	 * (the nested-NMI "executing" flag), 0 if none.  The rest of a per-CPU
	 * stack (IRQ, IST, entry, espfix) is scratch whenever no context runs
	 * on it: written before it is read by whoever uses it next. */
	uint64_t live_start, live_end;
};

struct kinject_layout {
	uint64_t magic;                     /* KINJECT_LAYOUT_MAGIC */
	uint64_t abi_version;
	char variant[16];                   /* "linux64", ... */
	char scenario[32];
	uint64_t percpu;                    /* VA of struct kinject_percpu */
	uint64_t kernel_cr3, user_cr3;      /* CR3 values (with PCID bits) */
	uint64_t entry_text_start, entry_text_end; /* the entry/exit code */
	uint64_t nstacks;
	struct kinject_range stacks[KINJECT_LAYOUT_MAX_STACKS];
	/* Each task's kernel stack is this big and ends at its top_of_stack
	 * (the KINJECT_STACK_TASK range holds them all side by side). */
	uint64_t task_stack_size;
	/* Statistics: counters the kernel only adds to and never reads, so
	 * what an event did to them cannot change the rest of a run.  kinject
	 * checks the claim with capstone before it relies on it (converge.c). */
	uint64_t nstats;
	struct kinject_range stats[KINJECT_LAYOUT_MAX_STATS];
};

_Static_assert(sizeof(struct kinject_frame) == KINJECT_FRAME_SIZE, "frame layout");
_Static_assert(__builtin_offsetof(struct kinject_frame, vector) == KINJECT_FRAME_VECTOR, "frame layout");
_Static_assert(__builtin_offsetof(struct kinject_frame, rip) == KINJECT_FRAME_RIP, "frame layout");
_Static_assert(sizeof(struct kinject_percpu) == KINJECT_PCPU_SIZE, "percpu layout");
_Static_assert(__builtin_offsetof(struct kinject_percpu, sigpending) == KINJECT_PCPU_SIGPENDING, "percpu layout");
_Static_assert(__builtin_offsetof(struct kinject_percpu, variant) == KINJECT_PCPU_VARIANT, "percpu layout");
#endif /* __ASSEMBLER__ */

/* ------------------------------------------------------------------------
 * Symbols the harness may look up (every variant defines them):
 *   kinject_percpu        the per-CPU area (struct kinject_percpu)
 *   kinject_layout        the layout block (struct kinject_layout)
 *   __entry_text_start/__entry_text_end   the entry/exit code
 *   do_exception, do_irq, do_nmi, do_syscall   the C handlers (first
 *                         argument: struct kinject_frame *)
 *   schedule, preempt_schedule_irq, exit_to_user_work   the core
 * plus each variant's own entry/exit labels, documented in docs/variants.md.
 * ------------------------------------------------------------------------ */

#endif /* KINJECT_ABI_H */
