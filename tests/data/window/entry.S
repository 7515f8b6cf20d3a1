/*
 * Input of tests/test_window.c and tests/test_analysis.c: a miniature
 * entry text in the testbed's style (per-CPU offsets of kinject/abi.h).
 * The tests embed the bytes; regenerate them after editing this file with
 *   as entry.S -o e.o && ld -Ttext=0xffffffff81000000 -e 0 e.o -o e.elf
 *   objcopy -O binary -j .text e.elf e.bin && xxd -i e.bin; nm -n e.elf
 */
	.set do_syscall, 0xffffffff82000000	/* C handlers: outside the range */
	.set do_exception, 0xffffffff82000100

	.text
	.globl entry_SYSCALL_64
entry_SYSCALL_64:
	swapgs
	mov	%rsp, %gs:0x18			/* user RSP */
	mov	%gs:0x50, %rsp			/* entry (trampoline) stack */
	push	%rax
	mov	%gs:0x20, %rax			/* kernel CR3 */
	mov	%rax, %cr3
	pop	%rax
	mov	%gs:0x10, %rsp			/* task stack */
	push	%gs:0x18
	push	%r11
	push	%rcx
	sti
	call	do_syscall
	cli
	pop	%rcx
	pop	%r11
	testl	$1, %gs:0x38			/* need_resched: take the IRET path */
	jnz	.Lslow
	mov	%gs:0x28, %rax			/* user CR3 */
	mov	%rax, %cr3
	mov	%gs:0x18, %rsp
	swapgs
	sysretq
.Lslow:
	call	to_user_cr3			/* internal helper: returns */
	swapgs
	iretq
to_user_cr3:
	mov	%gs:0x28, %rax
	mov	%rax, %cr3
	ret

	.globl asm_exc_gp
asm_exc_gp:
	testb	$3, 16(%rsp)			/* saved CS: from user? */
	jz	1f
	swapgs
	push	%rax
	mov	%gs:0x20, %rax
	mov	%rax, %cr3
	pop	%rax
1:	mov	%rsp, %rdi
	call	do_exception
	testb	$3, 16(%rsp)
	jz	2f
	push	%rax
	mov	%gs:0x28, %rax
	mov	%rax, %cr3
	pop	%rax
	swapgs
2:	add	$8, %rsp			/* error code */
	iretq
	jmp	*%rax				/* unreachable: never followed */
