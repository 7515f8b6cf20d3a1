/* Probe guest: its own IDT with 256 stubs; every vector reports (vector,
 * error code, CR2, DR6) with KINJECT_HC_PROBE and returns with IRETQ.
 * The main loop alternates an IF=0 stretch and an IF=1 stretch, each
 * announced with KINJECT_HC_NOP and a tag in RDI:
 *   tag 1: IF=0 from here        tag 3: still IF=0, STI follows
 *   tag 2: IF=1 from here        (then back to tag 1)
 * In the IF=1 stretch the guest executes HLT once (tag 4 just before). */
#include <kinject/abi.h>
#include "testguest.h"

#define HCALL(nr) mov $nr, %eax; outl %eax, $KINJECT_PORT_HCALL

	.section .text.entry, "ax"
	.globl _start
_start:
	/* Fill the IDT: gate i -> stubs + 16 * i, 64-bit interrupt gate. */
	IDT_FILL 256
	lidt	idtr(%rip)
	HCALL(KINJECT_HC_READY)

	.globl main_loop
main_loop:
	cli
	mov	$1, %edi
	HCALL(KINJECT_HC_NOP)
	.globl if0_spin
if0_spin:
	mov	$2000, %ecx
2:	pause
	dec	%ecx
	jnz	2b
	mov	$3, %edi
	HCALL(KINJECT_HC_NOP)
	sti
	nop
	.globl if1_start
if1_start:
	mov	$2, %edi
	HCALL(KINJECT_HC_NOP)
	mov	$2000, %ecx
3:	pause
	dec	%ecx
	jnz	3b
	mov	$4, %edi
	HCALL(KINJECT_HC_NOP)
	.globl halt_here
halt_here:
	hlt
	jmp	main_loop

	IDT_STUBS 256

common:
	push	%rax
	push	%rdi
	push	%rsi
	push	%rdx
	push	%rcx
	mov	40(%rsp), %rdi			/* vector */
	mov	48(%rsp), %rsi			/* error code */
	mov	%cr2, %rdx
	mov	%dr6, %rcx
	mov	%rsp, %rax
	mov	%rax, last_frame(%rip)		/* host reads the frame here */
	HCALL(KINJECT_HC_PROBE)
	pop	%rcx
	pop	%rdx
	pop	%rsi
	pop	%rdi
	pop	%rax
	add	$16, %rsp
	iretq

	.section .rodata
	.balign 8
idtr:	.word	256 * 16 - 1
	.quad	idt

	.section .data
	.balign 8
	.globl last_frame
last_frame: .quad 0

	.section .bss
	.balign 4096
	.globl idt
idt:	.space	256 * 16
