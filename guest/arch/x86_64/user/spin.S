/* SPDX-License-Identifier: MIT */
/*
 * user-spin: the harness's main target.  Every GPR but the loop counter
 * (R15) holds a known pattern, FS and GS bases hold known values, and the
 * loop checks all of them, forever comparing against the data area.  An
 * injected interrupt, NMI or exception (delivered as a signal whose handler
 * just returns) must leave no trace.  Every 512 iterations the task raises
 * a timer tick for itself, so two spinning tasks preempt each other and
 * the FS/GS bases must survive context switches too.  Only int $0x80 is
 * used.  The bases are set with SYS_SET_FS/GS_BASE and checked through the
 * self pointers at %fs:0 and %gs:0 (no FSGSBASE instructions in ring 3).
 *
 * `user_spin_loop` (global, kernel-image address in .user.text; the user
 * VA is USER_TEXT_VA + (user_spin_loop - __user_text_start)) is the loop
 * head: there every GPR but R15 (the counter) holds its pattern, RSP is
 * UD_RSP and IF=1.  The harness breaks there to inject events.
 *
 * Entry: RDI = FS area (uapi.h UD_*), RSI = GS area.
 */
#include "user.h"

#define SPIN_REGS rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14

	.section .user.text, "ax"
	.code64
	.globl user_spin_entry
user_spin_entry:
	mov %rdi, %rbx
	mov %rsi, %r12
	SET_BASES %rbx, %r12
	movq $1, %fs:UD_STEP
	.irp sig, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV
	mov $\sig, %edi
	lea user_spin_handler(%rip), %rsi
	lea user_restorer80(%rip), %rdx
	SYS80 SYS_SIGACTION
	test %rax, %rax
	jnz .Lsigaction_failed
	.endr
	movq $2, %fs:UD_STEP
	mov %rsp, %fs:UD_RSP
	mov %fs:UD_ITERS, %r15
	LOAD_REGS SPIN_REGS

	.globl user_spin_loop
user_spin_loop:
.Lloop:
	/* Bases first: the other checks read through FS.  R15 is spilled to
	 * serve as scratch; each base (read back through its self pointer) is
	 * checked against a copy kept in the other area, so one corrupted
	 * base cannot hide itself. */
	push %r15
	mov %fs:UD_SELF, %r15
	cmp %gs:UD_GS_FSBASE, %r15
	jne .Lbad_fsbase
	mov %gs:UD_GS_SELF, %r15
	cmp %fs:UD_GSBASE, %r15
	jne .Lbad_gsbase
	pop %r15
	cmp %fs:UD_RSP, %rsp
	jne .Lbad_rsp
	CHECK_REGS SPIN_REGS
	test $0x1ff, %r15d
	jnz 1f
	/* int $0x80 keeps every register but RAX. */
	push %rax
	push %rdi
	mov $KINJECT_VEC_TIMER, %edi
	mov $SYS_RAISE_IRQ, %eax
	USER_INT 0x80
	pop %rdi
	pop %rax
1:	dec %r15
	jnz .Lloop

	xor %edi, %edi
	SYS80 SYS_EXIT
	ud2

/* Any signal: count it and return; sigreturn restores everything. */
user_spin_handler:
	incq %fs:UD_SIGCOUNT
	ret

.Lsigaction_failed:
	mov %rax, %rdx
	xor %esi, %esi
	FAIL "sigaction failed"
.Lbad_fsbase:
	mov %r15, %rdx
	mov %gs:UD_GS_FSBASE, %rsi
	FAIL "FS base changed"
.Lbad_gsbase:
	mov %r15, %rdx
	mov %fs:UD_GSBASE, %rsi
	FAIL "GS base changed"
.Lbad_rsp:
	mov %rsp, %rdx
	mov %fs:UD_RSP, %rsi
	FAIL "rsp changed"
	SET_BASES_FAIL_STUB
	BAD_STUBS SPIN_REGS
