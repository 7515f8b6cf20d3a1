/* SPDX-License-Identifier: MIT */
/*
 * linux64: the interrupt, exception and system-call entry/exit path of the
 * kinject testbed kernel, in the style of a current Linux x86-64 kernel:
 * idtentry-style stubs, error_entry / paranoid_entry, common_interrupt_return,
 * page-table isolation with PCID and a trampoline (entry) stack, a per-CPU
 * IRQ stack with an in-use mark, IST stacks for #DB/NMI/#DF/#MC, ESPFIX64,
 * the nested-NMI "executing flag + copied frames + repeat" scheme, and the
 * SYSCALL/SYSRET fast path with the checks that force IRET.
 *
 * Written from the Intel SDM and public design descriptions.  Every window
 * (user GS, user CR3, trampoline stack, IRQ stack, IST stack, espfix stack,
 * NMI IRET window, STI shadow) is commented where it opens and closes, and
 * notable points carry global labels; docs/variants.md lists them all.
 *
 * Conventions: a struct kinject_frame (abi.h) is built on the stack for
 * every entry.  Stubs push error code (hardware's, or 0) and vector;
 * common code pushes orig_rax (-1, or RAX for system calls) and the GPRs.
 * C handlers run with RSP 16-byte aligned (CALL_ALIGNED), kernel GS and
 * kernel CR3, DF and AC clear.
 *
 * Single CPU: GS:0 == &kinject_percpu in the kernel; the SYSCALL scratch
 * slot (TSS.RSP2) and the NMI bookkeeping live in the cpu entry area.
 */
#include <kinject/abi.h>
#include <guest/x86.h>
#include "linux64.h"

#define F_R15     KINJECT_FRAME_R15
#define F_R14     KINJECT_FRAME_R14
#define F_R13     KINJECT_FRAME_R13
#define F_R12     KINJECT_FRAME_R12
#define F_R11     KINJECT_FRAME_R11
#define F_R10     KINJECT_FRAME_R10
#define F_R9      KINJECT_FRAME_R9
#define F_R8      KINJECT_FRAME_R8
#define F_RBP     KINJECT_FRAME_RBP
#define F_RDI     KINJECT_FRAME_RDI
#define F_RSI     KINJECT_FRAME_RSI
#define F_RDX     KINJECT_FRAME_RDX
#define F_RCX     KINJECT_FRAME_RCX
#define F_RBX     KINJECT_FRAME_RBX
#define F_RAX     KINJECT_FRAME_RAX
#define F_ORIG    KINJECT_FRAME_ORIG_RAX
#define F_VECTOR  KINJECT_FRAME_VECTOR
#define F_ERR     KINJECT_FRAME_ERROR_CODE
#define F_RIP     KINJECT_FRAME_RIP
#define F_CS      KINJECT_FRAME_CS
#define F_RFLAGS  KINJECT_FRAME_RFLAGS
#define F_RSP     KINJECT_FRAME_RSP
#define F_SS      KINJECT_FRAME_SS
#define F_SIZE    KINJECT_FRAME_SIZE

#define PCPU(off) %gs:(off)
/* CR3 NOFLUSH bit (1 << 63) when PCID is on, else 0: in the cpu entry area,
 * readable while the user page tables are loaded. */
#define PTI_NOFLUSH (cpu_entry_area + CEA_PTI_NOFLUSH)

/* ------------------------------------------------------------------------
 * Macros
 * ------------------------------------------------------------------------ */

/* Push the GPRs below orig_rax: the frame's rax (0x70) first, r15 (0x00) last. */
.macro PUSH_REGS
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
.endm

.macro POP_REGS
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
.endm

/* Load every GPR but RDI from the frame at (%rdi). */
.macro LOAD_REGS_BUT_RDI
	movq	F_R15(%rdi), %r15
	movq	F_R14(%rdi), %r14
	movq	F_R13(%rdi), %r13
	movq	F_R12(%rdi), %r12
	movq	F_R11(%rdi), %r11
	movq	F_R10(%rdi), %r10
	movq	F_R9(%rdi), %r9
	movq	F_R8(%rdi), %r8
	movq	F_RBP(%rdi), %rbp
	movq	F_RSI(%rdi), %rsi
	movq	F_RDX(%rdi), %rdx
	movq	F_RCX(%rdi), %rcx
	movq	F_RBX(%rdi), %rbx
	movq	F_RAX(%rdi), %rax
.endm

/* Call a C function with RSP 16-byte aligned; RBP (callee-saved, already in
 * the frame) keeps the unaligned RSP. */
.macro CALL_ALIGNED fn
	movq	%rsp, %rbp
	andq	$-16, %rsp
	call	\fn
	movq	%rbp, %rsp
.endm

/* Kernel page tables: clear the user-PGD and user-PCID bits of the current
 * CR3 (no memory access: usable while the user tables are loaded) and keep
 * the kernel PCID's TLB entries (NOFLUSH). */
.macro SWITCH_TO_KERNEL_CR3 reg
	movq	%cr3, \reg
	andq	$(~PTI_SWITCH_MASK), \reg
	orq	PTI_NOFLUSH(%rip), \reg		/* bit 63 with PCID, else 0 */
	movq	\reg, %cr3
.endm

/* User page tables: set the user-PGD and user-PCID bits; flush the user
 * PCID if a user mapping changed since the last exit (percpu flag, read
 * while the kernel tables are still loaded). */
.macro SWITCH_TO_USER_CR3 reg
	movq	%cr3, \reg
	orq	$PTI_SWITCH_MASK, \reg
	btrq	$0, PCPU(PCPU_USER_FLUSH)
	jc	.Lflush_user_pcid\@
	orq	PTI_NOFLUSH(%rip), \reg
.Lflush_user_pcid\@:
	movq	\reg, %cr3
.endm

/* Exit-to-user work loop: with IRQs off, test need_resched and sigpending;
 * while either is set call exit_to_user_work(frame) and test again with
 * IRQs off (it may enable them).  RSP = frame.  Clobbers RAX, RDI, RBP
 * (restored from the frame later). */
.macro EXIT_TO_USER_LOOP prefix
	.globl \prefix\()_exit_work_check, \prefix\()_exit_work_call, \prefix\()_exit_work_done
\prefix\()_exit_work_check:
	cli				/* the test below must be with IRQs off */
	movq	PCPU(KINJECT_PCPU_NEED_RESCHED), %rax
	orq	PCPU(KINJECT_PCPU_SIGPENDING), %rax
	jz	\prefix\()_exit_work_done
\prefix\()_exit_work_call:
	movq	%rsp, %rdi
	CALL_ALIGNED exit_to_user_work
	jmp	\prefix\()_exit_work_check
\prefix\()_exit_work_done:
.endm

.macro GLOBAL name
	.globl \name
\name:
.endm

.macro FUNC name
	.globl \name
	.type \name, @function
\name:
.endm

	.section .entry.text, "ax"

/* ------------------------------------------------------------------------
 * Exception stubs, vectors 0-31.  Each: CLAC (AC is not cleared by event
 * delivery), error code (0 if the CPU pushes none), vector, then the common
 * code.  Hardware cleared TF, NT and RF (and IF: interrupt gates).
 * ------------------------------------------------------------------------ */
.macro IDTENTRY vec, name, has_err=0, common=exc_common
	.p2align 4
FUNC \name
	ASM_CLAC
	.if \has_err == 0
	pushq	$0
	.endif
	pushq	$\vec
	jmp	\common
	.size \name, . - \name
.endm

/* #DB and #MC: from user mode they are ordinary entries that move to the
 * task stack (CS RPL 3 means the CPU was at CPL 3: user GS and user CR3 for
 * certain); from kernel mode they are paranoid, on their IST stack. */
.macro IDTENTRY_IST vec, name
	.p2align 4
FUNC \name
	/* IST stack: opens (the CPU switched to it) */
	ASM_CLAC
	pushq	$0
	pushq	$\vec
	testb	$3, (F_CS - F_VECTOR)(%rsp)
	jnz	exc_common			/* from user: task stack */
	jmp	paranoid_common			/* from kernel: paranoid */
	.size \name, . - \name
.endm

	.p2align 12
IDTENTRY	X86_TRAP_DE,	asm_exc_divide_error
IDTENTRY_IST	X86_TRAP_DB,	asm_exc_debug
IDTENTRY	X86_TRAP_BP,	asm_exc_int3
IDTENTRY	X86_TRAP_OF,	asm_exc_overflow
IDTENTRY	X86_TRAP_BR,	asm_exc_bounds
IDTENTRY	X86_TRAP_UD,	asm_exc_invalid_op
IDTENTRY	X86_TRAP_NM,	asm_exc_device_not_available
/* #DF: always paranoid, on its IST stack (error code is always 0). */
IDTENTRY	X86_TRAP_DF,	asm_exc_double_fault, 1, paranoid_common
IDTENTRY	X86_TRAP_OLD_MF, asm_exc_coproc_segment_overrun
IDTENTRY	X86_TRAP_TS,	asm_exc_invalid_tss, 1
IDTENTRY	X86_TRAP_NP,	asm_exc_segment_not_present, 1
IDTENTRY	X86_TRAP_SS,	asm_exc_stack_segment, 1
IDTENTRY	X86_TRAP_GP,	asm_exc_general_protection, 1
IDTENTRY	X86_TRAP_PF,	asm_exc_page_fault, 1
IDTENTRY	X86_TRAP_SPURIOUS, asm_exc_spurious
IDTENTRY	X86_TRAP_MF,	asm_exc_coprocessor_error
IDTENTRY	X86_TRAP_AC,	asm_exc_alignment_check, 1
IDTENTRY_IST	X86_TRAP_MC,	asm_exc_machine_check
IDTENTRY	X86_TRAP_XF,	asm_exc_simd_coprocessor_error
IDTENTRY	X86_TRAP_VE,	asm_exc_virtualization_exception
IDTENTRY	X86_TRAP_CP,	asm_exc_control_protection, 1
IDTENTRY	22,		asm_exc_reserved_22
IDTENTRY	23,		asm_exc_reserved_23
IDTENTRY	24,		asm_exc_reserved_24
IDTENTRY	25,		asm_exc_reserved_25
IDTENTRY	26,		asm_exc_reserved_26
IDTENTRY	27,		asm_exc_reserved_27
IDTENTRY	X86_TRAP_HV,	asm_exc_hypervisor_injection
IDTENTRY	X86_TRAP_VC,	asm_exc_vmm_communication, 1
IDTENTRY	X86_TRAP_SX,	asm_exc_security, 1
IDTENTRY	31,		asm_exc_reserved_31

/* ------------------------------------------------------------------------
 * error_entry: called by the non-paranoid entries once the whole frame is
 * on the stack the CPU chose (the trampoline stack for entries from user
 * mode, the IST stack for #DB/#MC/NMI from user mode, the interrupted stack
 * for entries from kernel mode).  The frame is at 8(%rsp).
 * Returns in RAX the frame to continue with: from user mode (or a faulting
 * IRET) a copy at the top of the task stack, after swapgs and the switch to
 * the kernel page tables; from kernel mode the frame itself.
 * Clobbers RAX, RCX, RSI, RDI (already saved in the frame).
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC error_entry
	testb	$3, (8 + F_CS)(%rsp)
	jz	.Lerror_entry_from_kernel
	/* user GS: closes */
	swapgs
	lfence				/* no speculation past the conditional swapgs */
GLOBAL error_entry_after_swapgs
	/* user CR3: closes */
	SWITCH_TO_KERNEL_CR3 %rax
GLOBAL error_entry_after_cr3
	leaq	8(%rsp), %rsi
	/* fall through */
GLOBAL sync_regs
	/* Copy the frame at (%rsi) to the top of the current task's stack. */
	movq	PCPU(KINJECT_PCPU_TOP_OF_STACK), %rax
	subq	$F_SIZE, %rax
	movq	%rax, %rdi
	movl	$(F_SIZE / 8), %ecx
	rep movsq
	ret

.Lerror_entry_from_kernel:
	/* Kernel mode, kernel GS and CR3, except at one instruction: the IRET
	 * to user mode runs after swapgs and the switch to the user tables,
	 * so a #GP/#SS/#NP it raises lands here with user GS and user CR3. */
	cmpq	$irq_return_iret, (8 + F_RIP)(%rsp)
	je	.Lerror_bad_iret
	lfence
	leaq	8(%rsp), %rax
	ret

.Lerror_bad_iret:
	/* user GS: closes */
	swapgs
	lfence
	/* user CR3: closes */
	SWITCH_TO_KERNEL_CR3 %rax
GLOBAL fixup_bad_iret
	/* Rewrite the fault as a user-mode fault at the context the IRET was
	 * returning to: GPRs, vector and error code from the fault frame,
	 * rip..ss from the IRET frame the IRET was reading (the fault frame's
	 * RSP points at it), in a new frame at the top of the task stack.
	 * From here on the normal user-entry path and signal delivery apply. */
	incq	PCPU(PCPU_BAD_IRET)
	movq	PCPU(KINJECT_PCPU_TOP_OF_STACK), %rax
	subq	$F_SIZE, %rax
	movq	%rax, %rdi
	leaq	8(%rsp), %rsi
	movl	$(F_RIP / 8), %ecx
	rep movsq
	movq	(8 + F_RSP)(%rsp), %rsi
	movl	$5, %ecx
	rep movsq
	ret
	.size error_entry, . - error_entry

/* ------------------------------------------------------------------------
 * Common exception path (vectors 0-31 but NMI; #DB/#MC from user mode).
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC exc_common
	pushq	$ORIG_RAX_NONE
	PUSH_REGS
	cld
	call	error_entry
	/* trampoline stack / IST stack (entries from user): closes */
	movq	%rax, %rsp
GLOBAL exc_common_on_stack
	movq	%rsp, %rdi
	xorl	%esi, %esi
	cmpq	$X86_TRAP_PF, F_VECTOR(%rsp)
	jne	1f
	movq	%cr2, %rsi			/* aux = CR2 */
1:	cmpq	$X86_TRAP_DB, F_VECTOR(%rsp)
	jne	2f
	movq	%dr6, %rsi			/* aux = DR6 */
	movl	$X86_DR6_FIXED, %eax
	movq	%rax, %dr6
2:	CALL_ALIGNED do_exception
	jmp	common_interrupt_return
	.size exc_common, . - exc_common

/* ------------------------------------------------------------------------
 * Device interrupts, vectors 32-255 (0x80 is the system-call gate).
 * 16-byte stubs at irq_entries_start + 16 * (vector - 32).
 * ------------------------------------------------------------------------ */
	.p2align 4
GLOBAL irq_entries_start
	vector = 32
	.rept 224
	.p2align 4
	ASM_CLAC
	pushq	$0
	pushq	$vector
	jmp	asm_common_interrupt
	vector = vector + 1
	.endr
GLOBAL irq_entries_end

	.p2align 4
FUNC asm_common_interrupt
	pushq	$ORIG_RAX_NONE
	PUSH_REGS
	cld
	call	error_entry
	/* trampoline stack (entries from user): closes */
	movq	%rax, %rsp
	movq	%rsp, %rdi
	/* Switch to the IRQ stack unless this interrupt nests on it already. */
	cmpq	$0, PCPU(KINJECT_PCPU_IRQ_STACK_INUSE)
	jne	.Lirq_stack_already_in_use
	movq	$1, PCPU(KINJECT_PCPU_IRQ_STACK_INUSE)	/* mark set before the switch */
	movq	%rsp, %rbx
	/* IRQ stack in use: opens */
	movq	PCPU(KINJECT_PCPU_IRQ_STACK_TOP), %rsp
GLOBAL asm_common_interrupt_on_irq_stack
	pushq	%rbx				/* the interrupted stack, for unwinders */
	subq	$8, %rsp
	call	do_irq
	movq	%rbx, %rsp
	/* IRQ stack in use: closes */
GLOBAL asm_common_interrupt_off_irq_stack
	movq	$0, PCPU(KINJECT_PCPU_IRQ_STACK_INUSE)	/* mark cleared after the switch back */
	jmp	common_interrupt_return

.Lirq_stack_already_in_use:
	/* Nested on the IRQ stack (IRQs were enabled in do_irq): stay on it. */
GLOBAL asm_common_interrupt_nested
	CALL_ALIGNED do_irq
	jmp	common_interrupt_return
	.size asm_common_interrupt, . - asm_common_interrupt

/* ------------------------------------------------------------------------
 * int $0x80: DPL 3 interrupt gate, a system call through the IRET path.
 * orig_rax = RAX (the system-call number).
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC entry_INT80_64
	ASM_CLAC
	pushq	$0
	pushq	$KINJECT_VEC_SYSCALL80
	pushq	%rax				/* orig_rax */
	PUSH_REGS
	cld
	call	error_entry
	/* trampoline stack: closes */
	movq	%rax, %rsp
GLOBAL entry_INT80_64_on_task_stack
	movq	%rsp, %rdi
	CALL_ALIGNED do_syscall
	jmp	common_interrupt_return
	.size entry_INT80_64, . - entry_INT80_64

/* ------------------------------------------------------------------------
 * common_interrupt_return: every non-paranoid entry returns here with
 * RSP = its frame on the task (or interrupted kernel) stack.
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC common_interrupt_return
	cli
	testb	$3, F_CS(%rsp)
	jz	retint_kernel
GLOBAL ret_to_user
	EXIT_TO_USER_LOOP retint_user
	/* fall through */

/* Return to user mode through IRET.  Kernel GS, kernel CR3, IRQs off. */
GLOBAL swapgs_restore_regs_and_return_to_usermode
	testb	$SEL_TI_LDT, F_SS(%rsp)
	jnz	return_via_espfix		/* SS from the LDT: may be 16-bit */
	cmpw	$USER_DS16, F_SS(%rsp)
	je	return_via_espfix		/* the GDT's 16-bit user SS */
	movq	%rsp, %rdi
	/* trampoline stack: opens (it is what the user tables map) */
	movq	PCPU(KINJECT_PCPU_ENTRY_STACK_TOP), %rsp
GLOBAL swapgs_restore_on_trampoline
	pushq	F_SS(%rdi)
	pushq	F_RSP(%rdi)
	pushq	F_RFLAGS(%rdi)
	pushq	F_CS(%rdi)
	pushq	F_RIP(%rdi)
	pushq	F_RDI(%rdi)
	LOAD_REGS_BUT_RDI
	/* user CR3: opens */
	SWITCH_TO_USER_CR3 %rdi
GLOBAL swapgs_restore_after_cr3
	popq	%rdi
	/* user GS: opens */
	swapgs
	/* fall through */

/* The IRET back to user mode (also reached from the espfix path).  It can
 * fault (#GP, #SS, #NP on a bad CS or SS): in kernel mode, after swapgs,
 * with the user tables loaded.  error_entry recognises this RIP and rewrites
 * the fault into a user-mode fault (fixup_bad_iret); on the espfix stack
 * the fault escalates to #DF, which linux64_double_fault_fixup() turns into
 * a #GP from user mode. */
GLOBAL irq_return_iret
	iretq
	/* user GS, user CR3, trampoline/espfix stack: close (at CPL 3) */

/* ESPFIX64: return to an LDT stack segment.  The IRET frame and user RDI go
 * to the per-CPU espfix page through its writable kernel alias; the IRET
 * runs on the read-only alias whose address bits 31:16 equal the user's RSP
 * bits 31:16, so an IRET to a 16-bit SS (which restores only SP) leaves the
 * user's own bits 31:16 in ESP, never kernel bits. */
GLOBAL return_via_espfix
	movq	PCPU(PCPU_ESPFIX_WADDR), %rdi
	movq	F_RDI(%rsp), %rax
	movq	%rax, 0x00(%rdi)
	movq	F_RIP(%rsp), %rax
	movq	%rax, 0x08(%rdi)
	movq	F_CS(%rsp), %rax
	movq	%rax, 0x10(%rdi)
	movq	F_RFLAGS(%rsp), %rax
	movq	%rax, 0x18(%rdi)
	movq	F_RSP(%rsp), %rax
	movq	%rax, 0x20(%rdi)
	movq	F_SS(%rsp), %rax
	movq	%rax, 0x28(%rdi)
	movq	F_RSP(%rsp), %rax
	andl	$0xffff0000, %eax		/* user RSP bits 31:16, zero-extended */
	orq	PCPU(PCPU_ESPFIX_STACK), %rax	/* the alias with those bits */
	movq	%rsp, %rdi
	/* espfix stack: opens (read-only alias, mapped in both page tables) */
	movq	%rax, %rsp
GLOBAL espfix_on_stack
	LOAD_REGS_BUT_RDI
	/* user CR3: opens */
	SWITCH_TO_USER_CR3 %rdi
GLOBAL espfix_after_cr3
	popq	%rdi
	/* user GS: opens */
	swapgs
GLOBAL espfix_before_iret
	jmp	irq_return_iret

/* Return to kernel mode: preempt only if the interrupted context had IF set,
 * the preempt count is 0 and need_resched is set. */
GLOBAL retint_kernel
	testl	$X86_RFLAGS_IF, F_RFLAGS(%rsp)	/* saved IF */
	jz	restore_regs_and_return_to_kernel
	cmpq	$0, PCPU(KINJECT_PCPU_PREEMPT_COUNT)
	jne	restore_regs_and_return_to_kernel
	cmpq	$0, PCPU(KINJECT_PCPU_NEED_RESCHED)
	je	restore_regs_and_return_to_kernel
GLOBAL retint_kernel_preempt
	CALL_ALIGNED preempt_schedule_irq
	/* fall through: returns with IRQs off */
GLOBAL restore_regs_and_return_to_kernel
	POP_REGS
	addq	$(F_RIP - F_ORIG), %rsp		/* orig_rax, vector, error code */
GLOBAL kernel_return_iret
	iretq
	.size common_interrupt_return, . - common_interrupt_return

/* ------------------------------------------------------------------------
 * SYSCALL (64-bit): MSR_LSTAR.  SFMASK cleared IF, TF, DF, AC, NT, RF...
 * The CPU is at CPL 0 with the user's RSP, GS and CR3: no stack exists
 * until the switch below, so nothing may fault or nest here but the
 * IST-based NMI/#DB/#MC, which are paranoid.
 * ------------------------------------------------------------------------ */
.macro SYSCALL_ENTRY name, user_cs
	.p2align 4
FUNC \name
	/* user GS: closes */
	swapgs
GLOBAL \name\()_after_swapgs
	/* user RSP: stashed in TSS.RSP2 (cpu entry area: mapped in the user tables) */
	movq	%rsp, (cpu_entry_area + CEA_TSS + TSS_RSP2)(%rip)
	/* user CR3: closes */
	SWITCH_TO_KERNEL_CR3 %rsp
GLOBAL \name\()_after_cr3
	/* user stack: closes */
	movq	PCPU(KINJECT_PCPU_TOP_OF_STACK), %rsp
GLOBAL \name\()_on_task_stack
	pushq	$USER_DS			/* ss */
	pushq	(cpu_entry_area + CEA_TSS + TSS_RSP2)(%rip)	/* rsp */
	pushq	%r11				/* rflags */
	pushq	$\user_cs			/* cs */
	pushq	%rcx				/* rip */
GLOBAL \name\()_after_hwframe
	pushq	$0				/* error code */
	pushq	$KINJECT_FRAME_VECTOR_SYSCALL
	pushq	%rax				/* orig_rax */
	PUSH_REGS
	movq	%rsp, %rdi
	CALL_ALIGNED do_syscall
	jmp	syscall_exit
	.size \name, . - \name
.endm

SYSCALL_ENTRY entry_SYSCALL_64, USER_CS
/* Compatibility-mode SYSCALL (MSR_CSTAR; AMD only, Intel raises #UD):
 * same path, returns through IRET since CS != USER_CS. */
SYSCALL_ENTRY entry_SYSCALL_compat, USER32_CS

	.p2align 4
FUNC syscall_exit
	EXIT_TO_USER_LOOP syscall
	/* SYSRET only when it restores exactly the frame; otherwise IRET. */
	movq	F_RCX(%rsp), %rcx
	cmpq	%rcx, F_RIP(%rsp)		/* RCX == RIP */
	jne	swapgs_restore_regs_and_return_to_usermode
	shrq	$47, %rcx			/* RIP canonical in the user half */
	jnz	swapgs_restore_regs_and_return_to_usermode
	cmpq	$USER_CS, F_CS(%rsp)
	jne	swapgs_restore_regs_and_return_to_usermode
	movq	F_R11(%rsp), %r11
	cmpq	%r11, F_RFLAGS(%rsp)		/* R11 == RFLAGS */
	jne	swapgs_restore_regs_and_return_to_usermode
	testq	$(X86_RFLAGS_RF | X86_RFLAGS_TF), %r11	/* SYSRET cannot restore RF; TF would trap at once */
	jnz	swapgs_restore_regs_and_return_to_usermode
	cmpq	$USER_DS, F_SS(%rsp)
	jne	swapgs_restore_regs_and_return_to_usermode
GLOBAL syscall_return_via_sysret
	movq	%rsp, %rdi
	/* trampoline stack: opens */
	movq	PCPU(KINJECT_PCPU_ENTRY_STACK_TOP), %rsp
	pushq	F_RSP(%rdi)
	pushq	F_RDI(%rdi)
	LOAD_REGS_BUT_RDI			/* RCX == RIP, R11 == RFLAGS */
	/* user CR3: opens */
	SWITCH_TO_USER_CR3 %rdi
GLOBAL syscall_return_after_cr3
	popq	%rdi
	/* user stack: opens (CPL 0 on the user's RSP); trampoline stack: closes */
	popq	%rsp
GLOBAL syscall_return_on_user_stack
	/* user GS: opens */
	swapgs
GLOBAL entry_SYSRET_64
	sysretq
	.size syscall_exit, . - syscall_exit

/* ------------------------------------------------------------------------
 * Paranoid entry (#DB and #MC from kernel mode, #DF always): the CPU may be
 * anywhere, including the windows where user GS or user CR3 is live in
 * kernel mode.  The decision is made from what the CPU has now, never from
 * the saved CS:
 *   CR3: if it is the user tables, switch to the kernel's;
 *   GS:  read the GS base MSR and install this CPU's (wrmsr; the MSR
 *        works with or without FSGSBASE);
 * and paranoid_exit restores exactly what was found.
 * Returns R12 = GS base found, R13 = CR3 found.  Clobbers RAX, RCX, RDX.
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC paranoid_entry
	movq	%cr3, %r13
	testl	$(1 << PTI_USER_PGTABLE_BIT), %r13d
	jz	1f
	/* user CR3: closes (paranoid) */
	movq	%r13, %rax
	andq	$(~PTI_SWITCH_MASK), %rax
	orq	PTI_NOFLUSH(%rip), %rax
	movq	%rax, %cr3
1:
GLOBAL paranoid_entry_after_cr3
	movl	$MSR_GS_BASE, %ecx
	rdmsr					/* the GS base the CPU has now */
	shlq	$32, %rdx
	orq	%rax, %rdx
	movq	%rdx, %r12
	/* user GS (if it was live): closes (paranoid) */
	movq	$kinject_percpu, %rax
	movq	%rax, %rdx
	shrq	$32, %rdx
	wrmsr					/* this CPU's kernel GS base */
	lfence
GLOBAL paranoid_entry_after_gs
	ret
	.size paranoid_entry, . - paranoid_entry

/* Restore GS base and CR3 exactly as paranoid_entry found them. */
.macro PARANOID_EXIT
	movl	$MSR_GS_BASE, %ecx
	movl	%r12d, %eax
	movq	%r12, %rdx
	shrq	$32, %rdx
	wrmsr					/* GS base as found */
	testl	$(1 << PTI_USER_PGTABLE_BIT), %r13d
	jz	.Lparanoid_cr3_kept\@
	movq	%r13, %cr3			/* CR3 as found (flushes the user PCID) */
.Lparanoid_cr3_kept\@:
.endm

	.p2align 4
FUNC paranoid_common
	/* IST stack (#DB/#MC from kernel, #DF): frame built here */
	pushq	$ORIG_RAX_NONE
	PUSH_REGS
	cld
	call	paranoid_entry
GLOBAL paranoid_common_kernel_state
	movq	%rsp, %rdi
	xorl	%esi, %esi
	cmpq	$X86_TRAP_DB, F_VECTOR(%rsp)
	jne	1f
	movq	%dr6, %rsi			/* aux = DR6 */
	movl	$X86_DR6_FIXED, %eax
	movq	%rax, %dr6
	jmp	3f
1:	cmpq	$X86_TRAP_DF, F_VECTOR(%rsp)
	jne	3f
	/* A fault on the espfix IRET escalates to #DF: turn it into #GP. */
	CALL_ALIGNED linux64_double_fault_fixup
	testl	%eax, %eax
	jnz	paranoid_exit
	movq	%rsp, %rdi
	xorl	%esi, %esi
3:	CALL_ALIGNED do_exception
GLOBAL paranoid_exit
	PARANOID_EXIT
GLOBAL paranoid_exit_restored
	POP_REGS
	addq	$(F_RIP - F_ORIG), %rsp
GLOBAL paranoid_iret
	iretq
	/* IST stack: closes */
	.size paranoid_common, . - paranoid_common

/* ------------------------------------------------------------------------
 * NMI (IST).  RSP = NMI IST top (T) - 0x28 with the hardware frame; NMIs
 * are blocked until the next IRET.  GS and CR3 unknown.
 *
 * From user mode (CS RPL 3): user GS and user CR3 for certain; the NMI is
 * handled on the task stack and returns through the normal exit (espfix
 * included), without exit work.  Nested NMIs cannot hurt it: it does not
 * use the IST stack after the copy.
 *
 * From kernel mode: nested NMIs (after an IRET inside the handler unblocked
 * NMIs, or forced) overwrite the hardware frame at the IST top, so the
 * first NMI keeps the interrupted context in the "outermost" copy and
 * returns through the "iret" copy; a nested NMI only rewrites the "iret"
 * copy to return to repeat_nmi and returns at once, so the outer NMI runs
 * the handler once more and then returns to its exact SS:RSP:RFLAGS:CS:RIP.
 * Layout below T: see linux64.h (NMI_*).
 * A nested NMI is recognised when the interrupted context is kernel and:
 *   RIP in [repeat_nmi, end_repeat_nmi): the outer is about to run the
 *     handler anyway -> just return;
 *   "NMI executing" is set -> latch a repeat;
 *   RIP == nmi_iret (the outer cleared "executing", IRET pending) -> latch.
 * No test looks at the interrupted RSP, so a user RSP pointing into the
 * NMI stack cannot fool it.  Unrecoverable by design (as on any kernel):
 * a nested NMI before first_nmi_copied, i.e. while the CPU blocks NMIs.
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC asm_exc_nmi
GLOBAL nmi
	/* IST stack: opens.  NMI blocked (hardware). */
	testb	$3, (F_CS - F_RIP)(%rsp)
	jnz	nmi_from_user
	pushq	%rdx				/* T-0x30: scratch */
	movq	8(%rsp), %rdx			/* interrupted RIP */
	cmpq	$repeat_nmi, %rdx
	jb	1f
	cmpq	$end_repeat_nmi, %rdx
	jb	nested_nmi_out			/* outer is about to repeat */
1:	cmpq	$0, -8(%rsp)			/* T-0x38: "NMI executing" */
	jne	nested_nmi
	cmpq	$nmi_iret, %rdx			/* outer's final IRET pending */
	je	nested_nmi
	jmp	first_nmi

GLOBAL nested_nmi
	/* Rewrite the outer NMI's "iret" frame (T-0x60) to repeat_nmi, on the
	 * stack as the outer had it there (RSP = T-0x88). */
	movq	$repeat_nmi, -0x30(%rsp)		/* rip    T-0x60 */
	movq	$KERNEL_CS, -0x28(%rsp)			/* cs     T-0x58 */
	movq	$X86_RFLAGS_FIXED, -0x20(%rsp)		/* rflags T-0x50: IF=0 DF=0 */
	leaq	-(NMI_OUTER_FRAME - NMI_SCRATCH)(%rsp), %rdx
	movq	%rdx, -0x18(%rsp)			/* rsp    T-0x48 = T-0x88 */
	movq	$KERNEL_DS, -0x10(%rsp)			/* ss     T-0x40 */
GLOBAL nested_nmi_out
	popq	%rdx
	iretq					/* to the outer NMI: kernel, cannot fault */

GLOBAL first_nmi
	movq	(%rsp), %rdx			/* restore RDX */
	pushq	$0				/* T-0x38: "NMI executing" (set below) */
	subq	$(NMI_IRET_FRAME - NMI_EXECUTING), %rsp	/* T-0x60: "iret" frame */
	/* Copy the hardware frame to the "outermost" frame (T-0x88). */
	.rept 5
	pushq	(NMI_IRET_FRAME - 8)(%rsp)
	.endr
GLOBAL first_nmi_copied
	/* From here a nested NMI is handled. */
GLOBAL repeat_nmi
	/* RSP = T-0x88.  A nested NMI's IRET lands here to run the handler again. */
	movq	$1, (NMI_OUTER_FRAME - NMI_EXECUTING)(%rsp)	/* "NMI executing" */
	/* "outermost" -> "iret" (push/pop: no free register) */
	pushq	0x00(%rsp)
	popq	0x28(%rsp)
	pushq	0x08(%rsp)
	popq	0x30(%rsp)
	pushq	0x10(%rsp)
	popq	0x38(%rsp)
	pushq	0x18(%rsp)
	popq	0x40(%rsp)
	pushq	0x20(%rsp)
	popq	0x48(%rsp)
GLOBAL end_repeat_nmi
	/* From here a nested NMI makes this NMI repeat. */
	pushq	$0				/* error code */
	pushq	$X86_TRAP_NMI			/* vector */
	pushq	$ORIG_RAX_NONE
	PUSH_REGS
	cld
	ASM_CLAC
	call	paranoid_entry
GLOBAL nmi_kernel_state
	movq	%cr2, %r14			/* do_nmi may fault: keep CR2 */
	incq	PCPU(PCPU_NMI_COUNT)
	movq	%rsp, %rdi
	CALL_ALIGNED do_nmi
	movq	%r14, %cr2
	PARANOID_EXIT
GLOBAL nmi_restore
	POP_REGS
	addq	$(F_RIP - F_ORIG + NMI_OUTER_FRAME - NMI_IRET_FRAME), %rsp	/* to the "iret" frame */
	/* NMI IRET window: opens ("executing" clear, IRET pending) */
	movq	$0, (NMI_IRET_FRAME - NMI_EXECUTING)(%rsp)
GLOBAL nmi_iret
	iretq
	/* NMI IRET window, IST stack: close */

GLOBAL nmi_from_user
	/* user GS: closes */
	swapgs
	lfence
	pushq	%rdx				/* T-0x30 scratch */
	/* user CR3: closes */
	SWITCH_TO_KERNEL_CR3 %rdx
	movq	%rsp, %rdx
	/* IST stack: closes; on the task stack */
	movq	PCPU(KINJECT_PCPU_TOP_OF_STACK), %rsp
GLOBAL nmi_from_user_on_task_stack
	pushq	0x28(%rdx)			/* ss */
	pushq	0x20(%rdx)			/* rsp */
	pushq	0x18(%rdx)			/* rflags */
	pushq	0x10(%rdx)			/* cs */
	pushq	0x08(%rdx)			/* rip */
	pushq	$0
	pushq	$X86_TRAP_NMI
	pushq	$ORIG_RAX_NONE
	movq	(%rdx), %rdx			/* user RDX */
	PUSH_REGS
	cld
	ASM_CLAC
	incq	PCPU(PCPU_NMI_COUNT)
	movq	%rsp, %rdi
	CALL_ALIGNED do_nmi
	cli
	jmp	swapgs_restore_regs_and_return_to_usermode
	.size asm_exc_nmi, . - asm_exc_nmi

/* ------------------------------------------------------------------------
 * New tasks (variant_prepare_kthread / variant_prepare_user): the first
 * variant_switch_to to them "returns" here.
 * ------------------------------------------------------------------------ */
	.p2align 4
FUNC ret_from_fork_user
	/* RSP = the user frame at the top of the task stack */
	jmp	common_interrupt_return
	.size ret_from_fork_user, . - ret_from_fork_user

	.section .text
	.p2align 4
FUNC ret_from_fork_kthread
	/* R12 = fn, R13 = arg */
	andq	$-16, %rsp
	movq	%r13, %rdi
	/* STI shadow: opens (no IRQ before the next instruction completes) */
	sti
	call	*%r12
	call	task_exit
	ud2
	.size ret_from_fork_kthread, . - ret_from_fork_kthread

/* void variant_switch_to(struct task *prev, struct task *next) */
	.p2align 4
FUNC variant_switch_to
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, TASK_KSP(%rdi)
GLOBAL switch_to_stack_switched
	movq	TASK_KSP(%rsi), %rsp
	movq	TASK_STACK_TOP(%rsi), %rax
	movq	%rax, PCPU(KINJECT_PCPU_TOP_OF_STACK)
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size variant_switch_to, . - variant_switch_to

/* Exception stub addresses for the IDT, vectors 0-31. */
	.section .rodata
	.balign 8
	.globl linux64_exc_stubs
linux64_exc_stubs:
	.quad asm_exc_divide_error, asm_exc_debug, asm_exc_nmi, asm_exc_int3
	.quad asm_exc_overflow, asm_exc_bounds, asm_exc_invalid_op, asm_exc_device_not_available
	.quad asm_exc_double_fault, asm_exc_coproc_segment_overrun, asm_exc_invalid_tss, asm_exc_segment_not_present
	.quad asm_exc_stack_segment, asm_exc_general_protection, asm_exc_page_fault, asm_exc_spurious
	.quad asm_exc_coprocessor_error, asm_exc_alignment_check, asm_exc_machine_check, asm_exc_simd_coprocessor_error
	.quad asm_exc_virtualization_exception, asm_exc_control_protection, asm_exc_reserved_22, asm_exc_reserved_23
	.quad asm_exc_reserved_24, asm_exc_reserved_25, asm_exc_reserved_26, asm_exc_reserved_27
	.quad asm_exc_hypervisor_injection, asm_exc_vmm_communication, asm_exc_security, asm_exc_reserved_31

	.section .note.GNU-stack, "", @progbits
