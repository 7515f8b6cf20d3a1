/* SPDX-License-Identifier: MIT */
/*
 * ss16: 32-bit code in compatibility mode on a 16-bit stack segment (LDT
 * entry 0, B=0, base USER_SS16_BASE).  With B=0 the CPU uses only SP, and
 * IRET back to such a stack restores only SP[15:0]: unless the kernel
 * returns through an espfix stack, ESP[31:16] would show bits of the kernel
 * stack (bug #3).  We keep ESP[31:16] = USER_SS16_ESP_HIGH and check it
 * after every return from the kernel: system calls (int $0x80), timer
 * interrupts taken right after IRET, int3 signals whose 64-bit handler
 * returns through sigreturn, and whatever the harness injects into the spin.
 *
 * Other signals (what the harness injects: #GP, #PF at an unmapped
 * address...) are counted in ss16_sigcount and returned from unchanged.
 *
 * R15 is invisible to compatibility-mode code, so it only changes when
 * the kernel loads it: each SIGTRAP handler sets the frame's R15 to
 * SIG_R15_MARK and the next one finds it there again, which it is only if
 * the return through the espfix stack reloaded R15 from the frame (C code
 * would have kept the old live value).
 *
 * `ss16_loop` (global, kernel-image address in .user.text; user VA =
 * USER_TEXT_VA + (ss16_loop - __user_text_start)) is the head of the short
 * spin: there ESP = ESP_TOP, EBX/EDX/ESI/EDI hold their patterns, ECX
 * counts the spin, IF=1.  The harness breaks there to inject events.
 *
 * Entry: CS = the variant's 32-bit user CS, SS = USER_SS16_SEL,
 * ESP = USER_SS16_ESP_HIGH:0xfff0, EBP = iterations.
 */
#include "user.h"

#define ESP_TOP ((USER_SS16_ESP_HIGH << 16) | 0xfff0)
#define PAT_EBX 0x5b5b0001
#define PAT_EDX 0x5d5d0002
#define PAT_ESI 0x5e5e0003
#define PAT_EDI 0x5f5f0004
#define SIG_MARK 0x51c0ffee
#define SIG_R15_MARK 0x5115c0ffee15ULL

/* EAX is scratch, ECX the spin counter, EBP the iteration counter. */
.macro CHECK_ESP_HIGH
	mov %esp, %eax
	shr $16, %eax
	cmp $USER_SS16_ESP_HIGH, %eax
	jne .Lbad_esp_high
.endm

.macro CHECK_PATTERNS
	cmp $ESP_TOP, %esp
	jne .Lbad_esp
	cmp $PAT_EBX, %ebx
	jne .Lbad_ebx
	cmp $PAT_EDX, %edx
	jne .Lbad_edx
	cmp $PAT_ESI, %esi
	jne .Lbad_esi
	cmp $PAT_EDI, %edi
	jne .Lbad_edi
.endm

/* EDI = PC-relative address of \label (call/pop: no RIP-relative here). */
.macro LEA32 label, reg
	call 9002f
9002:	pop \reg
	add $(\label - 9002b), \reg
.endm

	.section .user.data, "aw"
	.balign 8
	.globl ss16_sigcount
ss16_sigcount:	.quad 0     /* signals other than SIGTRAP */
ss16_r15_armed:	.quad 0     /* a SIGTRAP handler has set the frame's R15 */

	.section .user.text, "ax"
	.code32
	.globl user_ss16_entry
user_ss16_entry:
	CHECK_ESP_HIGH
	.irp sig, SIGTRAP, SIGSEGV, SIGBUS
	mov $\sig, %edi
	LEA32 ss16_sig_handler, %esi
	LEA32 user_restorer80, %edx
	mov $SYS_SIGACTION, %eax
	int $0x80
	test %eax, %eax
	jnz .Lbad_sigaction
	.endr
	mov $PAT_EBX, %ebx
	mov $PAT_EDX, %edx
	mov $PAT_ESI, %esi
	mov $PAT_EDI, %edi

.Lloop:
	CHECK_ESP_HIGH
	CHECK_PATTERNS

	/* A system call. */
	mov $SYS_GETPID, %eax
	int $0x80
	CHECK_ESP_HIGH
	CHECK_PATTERNS

	/* Every 4th iteration, the last one included (so a one-iteration
	 * run has it too): a timer tick, taken right after the IRET. */
	lea -1(%ebp), %eax
	test $3, %eax
	jnz 1f
	push %edi
	mov $KINJECT_VEC_TIMER, %edi
	mov $SYS_RAISE_IRQ, %eax
	int $0x80
	CHECK_ESP_HIGH
	pop %edi
	CHECK_PATTERNS

	/* Every 8th iteration, the last one included: int3; the handler
	 * marks EAX in the saved frame, and sigreturn must bring back the
	 * 16-bit stack intact. */
1:	lea -1(%ebp), %eax
	test $7, %eax
	jnz 2f
	xor %eax, %eax
	int3
	cmp $SIG_MARK, %eax
	jne .Lbad_sigmark
	CHECK_ESP_HIGH
	CHECK_PATTERNS

	/* A short spin for injected events to land in compat mode. */
2:	mov $16, %ecx
	.globl ss16_loop
ss16_loop:
3:	CHECK_ESP_HIGH
	dec %ecx
	jnz 3b

	dec %ebp
	jnz .Lloop
	xor %edi, %edi
	mov $SYS_EXIT, %eax
	int $0x80
	ud2

.macro REPORT32 msg
	LEA32 9003f, %edi
	mov $SYS_CHECK, %eax
	int $0x80
	ud2
9003:	.asciz "\msg"
.endm

.Lbad_esp_high:
	mov %eax, %edx
	mov $USER_SS16_ESP_HIGH, %esi
	REPORT32 "ESP[31:16] after a return to the 16-bit stack"
.Lbad_esp:
	mov %esp, %edx
	mov $ESP_TOP, %esi
	REPORT32 "esp changed"
.Lbad_ebx:
	mov %ebx, %edx
	mov $PAT_EBX, %esi
	REPORT32 "ebx changed"
.Lbad_edx:
	mov $PAT_EDX, %esi
	REPORT32 "edx changed"
.Lbad_esi:
	mov %esi, %edx
	mov $PAT_ESI, %esi
	REPORT32 "esi changed"
.Lbad_edi:
	mov %edi, %edx
	mov $PAT_EDI, %esi
	REPORT32 "edi changed"
.Lbad_sigmark:
	mov %eax, %edx
	mov $SIG_MARK, %esi
	REPORT32 "eax after the int3 signal handler"
.Lbad_sigaction:
	mov %eax, %edx
	xor %esi, %esi
	REPORT32 "sigaction failed"

/* 64-bit handler on the flat user stack (the kernel put the frame at the
 * linear address of SS:SP). */
	.code64
ss16_sig_handler:
	cmp $SIGTRAP, %rdi
	je 1f
	cmp $SIGSEGV, %rdi
	je 2f
	cmp $SIGBUS, %rdi
	jne .Lh_bad_signo
2:	incq ss16_sigcount(%rip)
	ret
1:	mov KINJECT_FRAME_RSP(%rdx), %rax
	cmp $ESP_TOP, %rax
	jne .Lh_bad_rsp
	movabs $SIG_R15_MARK, %rax
	cmpq $0, ss16_r15_armed(%rip)
	je 3f
	cmp %rax, KINJECT_FRAME_R15(%rdx)
	jne .Lh_bad_r15
3:	mov %rax, KINJECT_FRAME_R15(%rdx)
	movq $1, ss16_r15_armed(%rip)
	movq $SIG_MARK, KINJECT_FRAME_RAX(%rdx)
	ret
.Lh_bad_signo:
	mov %rdi, %rdx
	mov $SIGTRAP, %esi
	lea .Lh_msg_signo(%rip), %rdi
	jmp user_check_fail_nostep
.Lh_bad_rsp:
	mov %rax, %rdx
	mov $ESP_TOP, %esi
	lea .Lh_msg_rsp(%rip), %rdi
	jmp user_check_fail_nostep
.Lh_bad_r15:
	mov %rax, %rsi
	mov KINJECT_FRAME_R15(%rdx), %rdx
	lea .Lh_msg_r15(%rip), %rdi
	jmp user_check_fail_nostep
.Lh_msg_r15:
	.asciz "ss16 handler: r15 after the last sigreturn to compat code"
.Lh_msg_signo:
	.asciz "ss16 handler: signal number"
.Lh_msg_rsp:
	.asciz "ss16 handler: saved rsp"
