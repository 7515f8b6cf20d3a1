/* Loop guest, three programs picked by the first byte of the command line:
 *   'b': bench: KINJECT_HC_NOP forever (the raw exit round trip).
 *   'd': dirty: READY, then write one quadword to each of `dirty_pages`
 *        pages of `dirty_buf` (value = a running counter), KINJECT_HC_NOP,
 *        repeat.
 *   's' (or anything else): step/breakpoint program: `bp_target` runs
 *        LOOP_N times, KINJECT_HC_NOP (RDI=10); then `step_start` ..
 *        `step_end` is a straight sequence of STEP_INSNS instructions that
 *        includes PUSHF (the guest checks TF is not visible and reports
 *        the pushed RFLAGS with KINJECT_HC_NOP, RDI=11, RSI=flags). */
#include <kinject/abi.h>

#define HCALL(nr) mov $nr, %eax; outl %eax, $KINJECT_PORT_HCALL

	.section .text.entry, "ax"
	.globl _start
_start:
	movzbl	24(%rdi), %eax			/* boot_info.cmdline[0] */
	cmp	$'b', %al
	je	bench
	cmp	$'d', %al
	je	dirty
	jmp	steps

	.globl bench
bench:
	xor	%edi, %edi
1:	HCALL(KINJECT_HC_NOP)
	jmp	1b

	.globl dirty
dirty:
	HCALL(KINJECT_HC_READY)
	xor	%r8, %r8
1:	inc	%r8
	mov	dirty_pages(%rip), %rcx
	lea	dirty_buf(%rip), %rdx
2:	test	%rcx, %rcx
	jz	3f
	mov	%r8, (%rdx)
	add	$4096, %rdx
	dec	%rcx
	jmp	2b
3:	mov	$20, %edi
	HCALL(KINJECT_HC_NOP)
	jmp	1b

	.globl steps
steps:
	HCALL(KINJECT_HC_READY)
	mov	$LOOP_N, %ecx
	xor	%eax, %eax
	.globl bp_target
bp_target:
	inc	%rax
	dec	%ecx
	jnz	bp_target
	mov	$10, %edi
	mov	%rax, %rsi
	HCALL(KINJECT_HC_NOP)

	.globl step_start
step_start:
	nop				/* 1 */
	mov	$5, %ebx		/* 2 */
	add	%ebx, %ebx		/* 3 */
	pushf				/* 4 */
	pop	%rsi			/* 5 */
	xchg	%ax, %ax		/* 6 */
	lea	1(%rbx), %rbx		/* 7 */
	test	$0x100, %esi		/* 8 */
	.globl step_end
step_end:
	mov	$11, %edi
	HCALL(KINJECT_HC_NOP)
	jmp	steps

	.section .data
	.balign 8
	.globl dirty_pages
dirty_pages: .quad 16

	.section .bss
	.balign 4096
	.globl dirty_buf
dirty_buf: .space 4096 * 300

	.set	LOOP_N, 10
	.set	STEP_INSNS, 8
	.globl LOOP_N, STEP_INSNS
