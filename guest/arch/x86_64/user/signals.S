/* SPDX-License-Identifier: MIT */
/*
 * signals: ring-3 faults delivered as signals.  Each step loads every GPR
 * with its pattern and faults; the handler checks signo, siginfo (vector,
 * error code, fault address), the saved frame (RIP, RSP, every GPR),
 * its own stack alignment and DF=0, then rewrites the saved frame (RIP to
 * the step's fixup label; RAX and every callee-saved register ^= 0x5a5a)
 * and returns through sigreturn.  Back at the fixup every register must be
 * exactly the rewritten frame.  The callee-saved ones matter: C code keeps
 * their live values, so a return path that forgets to reload one from the
 * frame is seen only when the frame was rewritten.
 *
 * Only int $0x80 is used (the restorer too: sigreturn through SYSCALL is
 * the syscalls scenario's business).
 *
 * Entry: RDI = FS area, RSI = GS area.
 */
#include "user.h"

#define ANY (-1)
/* The registers the handler rewrites in the saved frame. */
#define REWRITTEN_REGS rax, rbx, rbp, r12, r13, r14, r15

	.set FR_rax, KINJECT_FRAME_RAX
	.set FR_rbx, KINJECT_FRAME_RBX
	.set FR_rcx, KINJECT_FRAME_RCX
	.set FR_rdx, KINJECT_FRAME_RDX
	.set FR_rsi, KINJECT_FRAME_RSI
	.set FR_rdi, KINJECT_FRAME_RDI
	.set FR_rbp, KINJECT_FRAME_RBP
	.set FR_r8,  KINJECT_FRAME_R8
	.set FR_r9,  KINJECT_FRAME_R9
	.set FR_r10, KINJECT_FRAME_R10
	.set FR_r11, KINJECT_FRAME_R11
	.set FR_r12, KINJECT_FRAME_R12
	.set FR_r13, KINJECT_FRAME_R13
	.set FR_r14, KINJECT_FRAME_R14
	.set FR_r15, KINJECT_FRAME_R15

	.section .user.data, "aw"
	.balign 8
sig_exp_signo:	.quad 0
sig_exp_vector:	.quad 0
sig_exp_error:	.quad 0
sig_exp_addr:	.quad 0
sig_exp_rip:	.quad 0
sig_fixup:	.quad 0
sig_zero:	.quad 0

/* One step.  trap: the saved RIP is after the instruction (int3), else at
 * it.  df: run the faulting instruction with DF=1 (the handler must see
 * DF=0, and sigreturn must bring DF=1 back). */
.macro SIGTEST step, signo, vector, error, addr, trap, df, insn:vararg
	movq $\step, %fs:UD_STEP
	movq $\signo, sig_exp_signo(%rip)
	movq $\vector, sig_exp_vector(%rip)
	movq $\error, sig_exp_error(%rip)
	movq $\addr, sig_exp_addr(%rip)
	.if \trap
	lea 8002f(%rip), %rax
	.else
	lea 8001f(%rip), %rax
	.endif
	mov %rax, sig_exp_rip(%rip)
	lea 8002f(%rip), %rax
	mov %rax, sig_fixup(%rip)
	mov %fs:UD_SIGCOUNT, %rax
	inc %rax
	mov %rax, %fs:UD_ARG
	LOAD_REGS ALL_REGS
	.if \df
	std
	/* The one DF step: harness cases stop here (DF=1 in ring 3). */
	.globl user_signals_df_insn
user_signals_df_insn:
	.endif
8001:	\insn
8002:
	.if \df
	pushf
	cld
	testq $0x400, (%rsp)
	lea 8(%rsp), %rsp
	jz .Lbad_df_lost
	.endif
	.irp r, REWRITTEN_REGS
	xor $0x5a5a, %\r
	.endr
	CHECK_REGS ALL_REGS
	cmp %fs:UD_RSP, %rsp
	jne .Lbad_rsp
	mov %fs:UD_ARG, %rax
	cmp %fs:UD_SIGCOUNT, %rax
	jne .Lbad_count
.endm

	.section .user.text, "ax"
	.code64
	.globl user_signals_entry
user_signals_entry:
	mov %rdi, %rbx
	mov %rsi, %r12
	SET_BASES %rbx, %r12
	.irp sig, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV
	mov $\sig, %edi
	lea sig_handler(%rip), %rsi
	lea user_restorer80(%rip), %rdx
	SYS80 SYS_SIGACTION
	test %rax, %rax
	jnz .Lsigaction_failed
	.endr
	mov %rsp, %fs:UD_RSP
	mov %fs:UD_ITERS, %rax
	mov %rax, %fs:UD_COUNTER

.Lloop:
	/* #PF, read and write of an unmapped user page: error U, U|W. */
	SIGTEST 1, SIGSEGV, 14, 4, USER_UNMAPPED_VA, 0, 0, movb USER_UNMAPPED_VA, %al
	SIGTEST 2, SIGSEGV, 14, 6, USER_UNMAPPED_VA, 0, 0, movb %al, USER_UNMAPPED_VA
	/* #PF on a kernel address: present or not depends on the variant's
	 * page-table isolation, so any error code. */
	SIGTEST 3, SIGSEGV, 14, ANY, KINJECT_KERNEL_VBASE, 0, 0, movabs KINJECT_KERNEL_VBASE, %al
	/* #GP: a privileged instruction, and a non-canonical address. */
	SIGTEST 4, SIGSEGV, 13, 0, 0, 0, 0, hlt
	SIGTEST 5, SIGSEGV, 13, 0, 0, 0, 0, movabs 0x8000000000000000, %al
	/* #UD, with DF set across the signal. */
	SIGTEST 6, SIGILL, 6, 0, 0, 0, 1, ud2
	/* #DE: divide by a zero in memory, so RDX:RAX keep their patterns. */
	SIGTEST 7, SIGFPE, 0, 0, 0, 0, 0, divq sig_zero(%rip)
	/* #BP: a trap, the saved RIP is past the int3. */
	SIGTEST 8, SIGTRAP, 3, 0, 0, 1, 0, int3

	decq %fs:UD_COUNTER
	jnz .Lloop
	xor %edi, %edi
	SYS80 SYS_EXIT
	ud2

/* RDI = signo, RSI = &info, RDX = &saved frame. */
sig_handler:
	mov %rsp, %rax
	and $15, %eax
	cmp $8, %eax
	jne .Lh_bad_align
	pushf
	pop %rax
	test $0x400, %eax
	jnz .Lh_bad_df
	cmp sig_exp_signo(%rip), %rdi
	jne .Lh_bad_signo
	cmp SIGINFO_SIGNO(%rsi), %rdi
	jne .Lh_bad_info_signo
	mov SIGINFO_VECTOR(%rsi), %rax
	cmp sig_exp_vector(%rip), %rax
	jne .Lh_bad_vector
	cmp KINJECT_FRAME_VECTOR(%rdx), %rax
	jne .Lh_bad_frame_vector
	cmpq $ANY, sig_exp_error(%rip)
	je 1f
	mov SIGINFO_ERROR(%rsi), %rax
	cmp sig_exp_error(%rip), %rax
	jne .Lh_bad_error
1:	mov SIGINFO_ADDR(%rsi), %rax
	cmp sig_exp_addr(%rip), %rax
	jne .Lh_bad_addr
	mov KINJECT_FRAME_RIP(%rdx), %rax
	cmp sig_exp_rip(%rip), %rax
	jne .Lh_bad_rip
	mov KINJECT_FRAME_RSP(%rdx), %rax
	cmp %fs:UD_RSP, %rax
	jne .Lh_bad_rsp
	.irp r, ALL_REGS
	mov FR_\r(%rdx), %rax
	cmp %fs:UD_\r, %rax
	jne .Lh_bad_saved_\r
	.endr
	.irp r, REWRITTEN_REGS
	xorq $0x5a5a, FR_\r(%rdx)
	.endr
	mov sig_fixup(%rip), %rax
	mov %rax, KINJECT_FRAME_RIP(%rdx)
	incq %fs:UD_SIGCOUNT
	ret

.Lh_bad_align:
	mov %rsp, %rdx
	mov $8, %esi
	FAIL "handler entered with RSP % 16 != 8"
.Lh_bad_df:
	mov %rax, %rdx
	xor %esi, %esi
	FAIL "handler entered with DF set (rflags)"
.Lh_bad_signo:
	mov %rdi, %rdx
	mov sig_exp_signo(%rip), %rsi
	FAIL "signal number"
.Lh_bad_info_signo:
	mov SIGINFO_SIGNO(%rsi), %rdx
	mov %rdi, %rsi
	FAIL "siginfo signo"
.Lh_bad_vector:
	mov %rax, %rdx
	mov sig_exp_vector(%rip), %rsi
	FAIL "siginfo vector"
.Lh_bad_frame_vector:
	mov KINJECT_FRAME_VECTOR(%rdx), %rdx
	mov %rax, %rsi
	FAIL "saved frame vector"
.Lh_bad_error:
	mov %rax, %rdx
	mov sig_exp_error(%rip), %rsi
	FAIL "siginfo error code"
.Lh_bad_addr:
	mov %rax, %rdx
	mov sig_exp_addr(%rip), %rsi
	FAIL "siginfo fault address"
.Lh_bad_rip:
	mov %rax, %rdx
	mov sig_exp_rip(%rip), %rsi
	FAIL "saved rip"
.Lh_bad_rsp:
	mov %rax, %rdx
	mov %fs:UD_RSP, %rsi
	FAIL "saved rsp"
	.irp r, ALL_REGS
.Lh_bad_saved_\r:
	mov %rax, %rdx
	mov %fs:UD_\r, %rsi
	FAIL "saved \r in the signal frame"
	.endr

.Lsigaction_failed:
	mov %rax, %rdx
	xor %esi, %esi
	FAIL "sigaction failed"
.Lbad_df_lost:
	xor %edx, %edx
	mov $0x400, %esi
	FAIL "DF not restored by sigreturn"
.Lbad_rsp:
	mov %rsp, %rdx
	mov %fs:UD_RSP, %rsi
	FAIL "rsp after sigreturn"
.Lbad_count:
	mov %fs:UD_SIGCOUNT, %rdx
	mov %rax, %rsi
	FAIL "signals seen by the handler"
	SET_BASES_FAIL_STUB
	BAD_STUBS ALL_REGS
