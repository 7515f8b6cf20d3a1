/* SPDX-License-Identifier: MIT */
/*
 * syscalls: SYSCALL and int $0x80 in a loop, each with every GPR loaded
 * with a pattern first.  SYSCALL may clobber only RCX (= return RIP) and
 * R11; int $0x80 only RAX.  Results are checked (getpid, a six-argument
 * echo, -ENOSYS), and the loop also yields and raises timer ticks so
 * system calls return through rescheduling and get interrupted on return.
 * The iteration counter lives in memory so all 15 registers carry patterns.
 * Step 8 takes an int3 signal whose restorer does SYS_SIGRETURN through
 * SYSCALL: the kernel must come back through IRET with every register
 * (RCX and R11 included) as the saved frame had them (bug #2).  This is
 * the only scenario that uses SYSCALL.  With `syscall=0` on the command
 * line (a host KVM that cannot run SYSCALL, see CONTRACT_NOTES) the kernel
 * clears user_has_syscall before READY and every SYSCALL step is skipped:
 * steps 1, 2 and 5's SYSCALL half; step 6 raises its tick by int $0x80 and
 * step 8's restorer uses int $0x80.
 *
 * Entry: RDI = FS area, RSI = GS area.
 */
#include "user.h"

#define NOT_SYSCALL_CLOBBERED rbx, rdx, rsi, rdi, rbp, r8, r9, r10, r12, r13, r14, r15
#define NOT_INT80_CLOBBERED rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15

	.section .user.data, "aw"
	.balign 8
	.globl user_has_syscall
user_has_syscall:	.quad 1     /* the kernel writes it before READY */

/* Step n with every register loaded with its pattern; without SYSCALL
 * (syscall=0) straight to `skip`, its int $0x80 half. */
.macro SYSCALL_STEP n, skip
	movq $\n, %fs:UD_STEP
	cmpq $0, user_has_syscall(%rip)
	je \skip
	LOAD_REGS ALL_REGS
.endm

	.section .user.text, "ax"
	.code64
	.globl user_syscalls_entry
user_syscalls_entry:
	mov %rdi, %rbx
	mov %rsi, %r12
	SET_BASES %rbx, %r12
	mov $SIGTRAP, %edi
	lea sys_sig_handler(%rip), %rsi
	lea user_restorer80(%rip), %rdx
	lea user_restorer(%rip), %rax
	cmpq $0, user_has_syscall(%rip)
	cmovne %rax, %rdx
	SYS80 SYS_SIGACTION
	test %rax, %rax
	jnz .Lbad_sigaction
	mov %fs:UD_ITERS, %rax
	mov %rax, %fs:UD_ARG

.Lloop:
	cmpq $0, user_has_syscall(%rip)
	je .Lno_syscall_12
	/* 1: SYSCALL getpid.  user_syscalls_ret1: ring 3 right after a
	 * SYSRET (harness cases stop there). */
	movq $1, %fs:UD_STEP
	LOAD_REGS ALL_REGS
	mov $SYS_GETPID, %eax
	USER_SYSCALL
	.globl user_syscalls_ret1
user_syscalls_ret1:
	cmp %fs:UD_PID, %rax
	jne .Lbad_pid
	lea user_syscalls_ret1(%rip), %rax
	cmp %rax, %rcx
	jne .Lbad_rcx_sysret
	CHECK_REGS NOT_SYSCALL_CLOBBERED

	/* 2: SYSCALL echo with six arguments. */
	movq $2, %fs:UD_STEP
	LOAD_REGS ALL_REGS
	mov $SYS_ECHO, %eax
	USER_SYSCALL
	call echo_expected
	cmp %rcx, %rax
	jne .Lbad_echo
	CHECK_REGS NOT_SYSCALL_CLOBBERED

	/* 3: int $0x80 getpid. */
.Lno_syscall_12:
	movq $3, %fs:UD_STEP
	LOAD_REGS ALL_REGS
	mov $SYS_GETPID, %eax
	USER_INT 0x80
	cmp %fs:UD_PID, %rax
	jne .Lbad_pid
	CHECK_REGS NOT_INT80_CLOBBERED

	/* 4: int $0x80 echo. */
	movq $4, %fs:UD_STEP
	LOAD_REGS ALL_REGS
	mov $SYS_ECHO, %eax
	USER_INT 0x80
	CHECK_REGS NOT_INT80_CLOBBERED
	call echo_expected
	cmp %rcx, %rax
	jne .Lbad_echo

	/* 5: an unknown number, both ways. */
	movq $5, %fs:UD_STEP
	LOAD_REGS ALL_REGS
	cmpq $0, user_has_syscall(%rip)
	je 3f
	mov $0x7fff, %eax
	USER_SYSCALL
	cmp $-ENOSYS, %rax
	jne .Lbad_enosys
	CHECK_REGS NOT_SYSCALL_CLOBBERED
3:	mov $0x7fff, %eax
	USER_INT 0x80
	cmp $-ENOSYS, %rax
	jne .Lbad_enosys

	/* 6: every other iteration a timer tick, taken right after SYSRET. */
	movq $6, %fs:UD_STEP
	testq $1, %fs:UD_ARG
	jz 1f
	LOAD_REGS ALL_REGS
	mov $KINJECT_VEC_TIMER, %edi
	mov $SYS_RAISE_IRQ, %eax
	cmpq $0, user_has_syscall(%rip)
	je 4f
	USER_SYSCALL
	jmp 5f
4:	USER_INT 0x80
5:	mov %fs:UD_RDI, %rdi
	CHECK_REGS NOT_SYSCALL_CLOBBERED

	/* 7: every fourth iteration yield to the other task (int $0x80, so
	 * the return is through IRET after a context switch). */
1:	movq $7, %fs:UD_STEP
	testq $3, %fs:UD_ARG
	jnz 2f
	LOAD_REGS ALL_REGS
	mov $SYS_YIELD, %eax
	USER_INT 0x80
	test %rax, %rax
	jnz .Lbad_yield
	CHECK_REGS NOT_INT80_CLOBBERED

	/* 8: int3 -> SIGTRAP; sigreturn through SYSCALL restores all. */
2:	movq $8, %fs:UD_STEP
	mov %fs:UD_SIGCOUNT, %rax
	inc %rax
	mov %rax, %fs:UD_COUNTER
	LOAD_REGS ALL_REGS
	int3
	CHECK_REGS ALL_REGS
	mov %fs:UD_COUNTER, %rax
	cmp %fs:UD_SIGCOUNT, %rax
	jne .Lbad_sigcount

	/* 9: the kernel rewrites the saved registers (SYS_REWRITE), then
	 * returns as usual: through SYSRET for SYSCALL (RCX, R11 and RIP
	 * untouched), IRET for int $0x80.  Each must load every register
	 * from the frame, not keep what it has. */
	SYSCALL_STEP 9, 6f
	mov $SYS_REWRITE, %eax
	USER_SYSCALL
	NOT_REGS NOT_SYSCALL_CLOBBERED
	CHECK_REGS NOT_SYSCALL_CLOBBERED
6:	LOAD_REGS ALL_REGS
	mov $SYS_REWRITE, %eax
	USER_INT 0x80
	NOT_REGS NOT_SYSCALL_CLOBBERED
	CHECK_REGS NOT_SYSCALL_CLOBBERED

	/* 10: a SYSCALL single-stepped into (bug #8): TF set by the POPF
	 * right before it, so the CPU traps after the SYSCALL, at CPL 0
	 * before the kernel's stack switch (its #DB must survive that and
	 * keep the user's TF, in R11); the return is through IRET and every
	 * user instruction then traps (SIGTRAP for vector 1: not counted)
	 * until the POPF that clears TF. */
	SYSCALL_STEP 10, 7f
	mov $SYS_GETPID, %eax
	pushf
	orq $0x100, (%rsp)			/* TF */
	popf
	USER_SYSCALL
	pushf
	andq $~0x100, (%rsp)
	popf
	cmp %fs:UD_PID, %rax
	jne .Lbad_pid
	CHECK_REGS NOT_SYSCALL_CLOBBERED
7:
	decq %fs:UD_ARG
	jnz .Lloop
	xor %edi, %edi
	SYS80 SYS_EXIT
	ud2

/* SIGTRAP: count the int3 ones (an asynchronous SIGTRAP, vector 0xfc,
 * may come from the harness at any time); sigreturn puts every register
 * back. */
sys_sig_handler:
	cmpq $3, SIGINFO_VECTOR(%rsi)
	jne 1f
	incq %fs:UD_SIGCOUNT
1:	ret

/* RCX = rdi + 2 rsi + 3 rdx + 5 r10 + 7 r8 + 11 r9 from the patterns;
 * clobbers R11. */
echo_expected:
	mov %fs:UD_RDI, %rcx
	mov %fs:UD_RSI, %r11
	lea (%rcx,%r11,2), %rcx
	imul $3, %fs:UD_RDX, %r11
	add %r11, %rcx
	imul $5, %fs:UD_R10, %r11
	add %r11, %rcx
	imul $7, %fs:UD_R8, %r11
	add %r11, %rcx
	imul $11, %fs:UD_R9, %r11
	add %r11, %rcx
	ret

.Lbad_pid:
	mov %rax, %rdx
	mov %fs:UD_PID, %rsi
	FAIL "getpid result"
.Lbad_rcx_sysret:
	mov %rcx, %rdx
	mov %rax, %rsi
	FAIL "rcx after SYSCALL is not the return address"
.Lbad_echo:
	mov %rax, %rdx
	mov %rcx, %rsi
	FAIL "echo result (argument passing)"
.Lbad_enosys:
	mov %rax, %rdx
	mov $-ENOSYS, %rsi
	FAIL "unknown syscall result"
.Lbad_yield:
	mov %rax, %rdx
	xor %esi, %esi
	FAIL "yield result"
.Lbad_sigaction:
	mov %rax, %rdx
	xor %esi, %esi
	FAIL "sigaction failed"
.Lbad_sigcount:
	mov %fs:UD_SIGCOUNT, %rdx
	mov %rax, %rsi
	FAIL "int3 signals seen by the handler"
	SET_BASES_FAIL_STUB
	BAD_STUBS ALL_REGS
