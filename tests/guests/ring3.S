/* Ring-3 guest: its own GDT (user code64 0x33, user data 0x2b, user code32
 * 0x3b), IDT (#BP gate DPL 3, every stub reports) and kernel stack, then
 * ring-3 rounds forever, each:
 *   1. user_main (64-bit, IOPL 3 so it can hypercall): every GPR but RSP
 *      and R15 gets a pattern, R15 = LOOP_N; the loop at `r3_bp` runs
 *      LOOP_N times (`r3_bp` a 3-byte ADD, `r3_tail` its JNZ back);
 *   2. an INT3 of its own (`r3_int3`): the #BP stub reports
 *      PROBE(3, frame RIP, frame CS) and returns after it;
 *   3. KINJECT_HC_NOP with RDI = a checksum of every GPR and RSP,
 *      RSI = RCX (the loop's result), RDX = RFLAGS (PUSHF), RCX = RSP;
 *   4. compat mode (CS 0x3b): `r3_compat` runs LOOP_N times, then
 *      KINJECT_HC_NOP with RDI = 32, RSI = ECX; back to 64-bit user_main.
 * Every stub i reports PROBE(i, frame RIP, frame CS) and IRETQs (#BP
 * only is expected). */
#include <kinject/abi.h>
#include "testguest.h"

#define HCALL(nr) mov $nr, %eax; outl %eax, $KINJECT_PORT_HCALL
#define LOOP_N 5

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	RING3_BOOT kstack_top
	/* IDT: 32 gates, interrupt gates at DPL 0, #BP at DPL 3. */
	IDT_FILL 32
	IDT_GATE 3, (stubs+3*16), 0xee00
	lidt	idtr(%rip)
	lea	kstack_top(%rip), %rsp
	HCALL(KINJECT_HC_READY)
	pushq	$0x2b
	lea	ustack_top(%rip), %rax
	push	%rax
	pushq	$0x3202				/* IOPL 3, IF */
	pushq	$0x33
	lea	user_main(%rip), %rax
	push	%rax
	iretq

/* ---- ring 3 -------------------------------------------------------------- */
	.globl user_main
user_main:
	movabs	$0x1111111111111111, %rax
	movabs	$0x2222222222222222, %rbx
	movabs	$0x3333333333333333, %rcx
	movabs	$0x4444444444444444, %rdx
	movabs	$0x5555555555555555, %rsi
	movabs	$0x6666666666666666, %rdi
	movabs	$0x7777777777777777, %rbp
	movabs	$0x8888888888888888, %r8
	movabs	$0x9999999999999999, %r9
	movabs	$0xaaaaaaaaaaaaaaaa, %r10
	movabs	$0xbbbbbbbbbbbbbbbb, %r11
	movabs	$0xcccccccccccccccc, %r12
	movabs	$0xdddddddddddddddd, %r13
	movabs	$0xeeeeeeeeeeeeeeee, %r14
	mov	$LOOP_N, %r15d
	.globl r3_bp
r3_bp:
	add	%rbx, %rcx
	rol	$7, %rdx
	xor	%rcx, %rsi
	dec	%r15
	.globl r3_tail
r3_tail:
	jnz	r3_bp
	.globl r3_int3
r3_int3:
	int3
	.globl r3_sum
r3_sum:
	add	%rbx, %rax
	add	%rcx, %rax
	add	%rdx, %rax
	add	%rsi, %rax
	add	%rdi, %rax
	add	%rbp, %rax
	add	%r8, %rax
	add	%r9, %rax
	add	%r10, %rax
	add	%r11, %rax
	add	%r12, %rax
	add	%r13, %rax
	add	%r14, %rax
	add	%r15, %rax
	add	%rsp, %rax
	mov	%rax, %rdi
	mov	%rcx, %rsi
	pushfq
	pop	%rdx
	mov	%rsp, %rcx
	HCALL(KINJECT_HC_NOP)
	/* To compat mode. */
	pushq	$0x3b
	lea	compat(%rip), %rax
	push	%rax
	lretq

	.code32
compat:
	mov	$LOOP_N, %edx
	xor	%ecx, %ecx
	.globl r3_compat
r3_compat:
	add	$3, %ecx
	dec	%edx
	jnz	r3_compat
	mov	%ecx, %esi
	mov	$32, %edi
	HCALL(KINJECT_HC_NOP)
	ljmp	$0x33, $user_main
	.code64

/* ---- ring 0: stub i pushes a zero unless the CPU pushed an error code,
 * then i; reports PROBE(vector, frame RIP, frame CS) and returns. */
	IDT_STUBS 32

common:
	push	%rax
	push	%rdi
	push	%rsi
	push	%rdx
	mov	32(%rsp), %rdi			/* vector */
	mov	48(%rsp), %rsi			/* frame RIP */
	mov	56(%rsp), %rdx			/* frame CS */
	HCALL(KINJECT_HC_PROBE)
	pop	%rdx
	pop	%rsi
	pop	%rdi
	pop	%rax
	add	$16, %rsp
	iretq

	.section .rodata
	.balign 8
gdt:	.quad	0
	.quad	0x00af9a000000ffff		/* 0x08 code64 DPL0 */
	.quad	0x00cf92000000ffff		/* 0x10 data DPL0 */
	.quad	0x00008b0021000067, 0		/* 0x18 the boot TSS (busy) */
	.quad	0x00cff2000000ffff		/* 0x28 data DPL3 */
	.quad	0x00affa000000ffff		/* 0x30 code64 DPL3 */
	.quad	0x00cffa000000ffff		/* 0x38 code32 DPL3 */
gdt_end:
	.balign 8
gdtr:	.word	gdt_end - gdt - 1
	.quad	gdt
	.balign 8
idtr:	.word	32 * 16 - 1
	.quad	idt

	.section .bss
	.balign 4096
idt:	.space	32 * 16
	.balign 16
	.space	4096
kstack_top:
	.space	4096
	.globl ustack_top
ustack_top:
