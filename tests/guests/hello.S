/* Smallest guest: checks the boot protocol, prints a line, says READY
 * with the boot-info pointer, then halts. */
#include <kinject/abi.h>

	.section .text.entry, "ax"
	.globl _start
_start:
	movabs	$KINJECT_BOOT_MAGIC, %rax
	cmp	%rax, %rsi
	jne	bad
	mov	%rdi, %rbx			/* boot info */
	lea	msg(%rip), %rsi
1:	lodsb
	test	%al, %al
	jz	2f
	outb	%al, $KINJECT_PORT_CONSOLE
	jmp	1b
2:	mov	%rbx, %rdi
	mov	$KINJECT_HC_READY, %eax
	outl	%eax, $KINJECT_PORT_HCALL
	hlt
	jmp	2b
bad:
	mov	$KINJECT_HC_VERDICT, %eax
	mov	$KINJECT_VERDICT_FAIL, %edi
	xor	%esi, %esi
	outl	%eax, $KINJECT_PORT_HCALL
	hlt

	.section .rodata
msg:	.asciz	"hello from the test guest\n"
