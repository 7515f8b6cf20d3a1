/* SYSCALL, SYSRET and INT n from ring 3, for tests/test_vmm_sysemu.c (the
 * VMM's emulation on hosts that mis-deliver them, vmm/sysemu.c; plain
 * hardware elsewhere).  Its own GDT (0x08 code64 DPL0, 0x10 data DPL0,
 * 0x20 code32 DPL3, 0x28 data DPL3, 0x30 code64 DPL3, 0x38 the boot TSS:
 * user CS 0x33, which is what `mov %cs` reads in 64-bit ring 3 on kvm_pvm
 * whatever the selector), IDT (256 gates,
 * interrupt gates at DPL 0, 0x80 at DPL 3), TSS RSP0 = kstack_top, and the
 * SYSCALL MSRs: LSTAR = KINJECT_KERNEL_VBASE + KENTRY, a copy of `kentry`
 * on a supervisor page, as any kernel has it.  Ring-0 code runs through
 * the kernel's high view (supervisor-only) once entered through the IDT
 * or LSTAR, so breakpoints there are plain hardware ones (the VMM takes
 * addresses below 0x0000800000000000 for user code);
 * STAR = 0x0023_0008 << 32; SFMASK = 0x47700 (TF IF DF IOPL NT AC).
 * Then ring 3 (CS 0x33, SS 0x2b, RFLAGS 0x3202), every round:
 *   1. GPRs loaded with patterns; `u_syscall`: SYSCALL (RCX/R11 hold
 *      0xcccc/0xbbbb before it);
 *   2. at LSTAR (CPL 0, the user's RSP): SYSRETQ at once;
 *   3. `u_sysret`: back in ring 3: PROBE(0x5c, CS, RCX, R11);
 *   4. `u_int80`: INT $0x80 -> `h80` (ring 0): PROBE(0x80, CS) with the
 *      frame at RSP, IRETQ;
 *   5. `u_int81`: INT $0x81 through a DPL 0 gate -> #GP(0x81 * 8 + 2) ->
 *      the #GP stub: PROBE(0x10d, error code, frame RIP), which skips the
 *      two bytes and IRETQs;
 *   6. `u_ud2`: UD2 -> the #UD stub: PROBE(0x106, 0, frame RIP), skips 2;
 *   7. HC_NOP, round again.
 * Every other stub reports PROBE(0x100 | vector) and stops. */
#include <kinject/abi.h>
#include "testguest.h"

#define HCALL(nr) mov $nr, %eax; outl %eax, $KINJECT_PORT_HCALL
#define KENTRY 0x200000

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	/* The first 2 MiB user-accessible; the next 2 MiB (KENTRY) not. */
	RING3_BOOT kstack_top
	lea	kentry(%rip), %rsi
	mov	$KENTRY, %edi
	mov	$(kentry_end - kentry), %ecx
	rep movsb
	/* IDT: 256 interrupt gates at DPL 0 to their stubs, 0x80 at DPL 3,
	 * all through the kernel's high view (supervisor-only). */
	IDT_FILL 256, KINJECT_KERNEL_VBASE
	IDT_GATE 0x80, h80, 0xee00, KINJECT_KERNEL_VBASE
	lidt	idtr(%rip)
	lea	kstack_top(%rip), %rsp
	mov	$0xc0000082, %ecx		/* LSTAR: KENTRY in the high view */
	mov	$(KENTRY + 0x80000000), %eax
	mov	$0xffffffff, %edx
	wrmsr
	mov	$0xc0000081, %ecx		/* STAR */
	xor	%eax, %eax
	mov	$0x00230008, %edx
	wrmsr
	mov	$0xc0000084, %ecx		/* SFMASK */
	mov	$0x47700, %eax
	xor	%edx, %edx
	wrmsr
	mov	$0xc0000080, %ecx		/* EFER.SCE */
	rdmsr
	or	$1, %eax
	wrmsr
	HCALL(KINJECT_HC_READY)
	pushq	$0x2b
	lea	ustack_top(%rip), %rax
	push	%rax
	pushq	$0x3202				/* IOPL 3 (hypercalls), IF */
	pushq	$0x33
	lea	user_main(%rip), %rax
	push	%rax
	iretq

/* ---- ring 3 -------------------------------------------------------------- */
	.globl user_main
user_main:
	movabs	$0x1111111111111111, %rax
	movabs	$0x2222222222222222, %rbx
	movabs	$0xcccc, %rcx
	movabs	$0x4444444444444444, %rdx
	movabs	$0x5555555555555555, %rsi
	movabs	$0x6666666666666666, %rdi
	movabs	$0x7777777777777777, %rbp
	movabs	$0x8888888888888888, %r8
	movabs	$0x9999999999999999, %r9
	movabs	$0xaaaaaaaaaaaaaaaa, %r10
	movabs	$0xbbbb, %r11
	.globl u_syscall
u_syscall:
	syscall
	.globl u_sysret
u_sysret:
	mov	%rcx, %rdx
	mov	%r11, %rcx
	mov	%cs, %esi
	mov	$0x5c, %edi
	HCALL(KINJECT_HC_PROBE)
	.globl u_int80
u_int80:
	int	$0x80
	.globl u_int81
u_int81:
	int	$0x81
	.globl u_ud2
u_ud2:
	ud2
	HCALL(KINJECT_HC_NOP)
	jmp	user_main

/* ---- ring 0 -------------------------------------------------------------- */
/* At LSTAR (copied to KENTRY): straight back. */
kentry:
	sysretq
kentry_end:

	.globl h80
h80:
	push	%rax
	push	%rdi
	push	%rsi
	mov	%cs, %esi
	mov	$0x80, %edi
	HCALL(KINJECT_HC_PROBE)
	pop	%rsi
	pop	%rdi
	pop	%rax
	iretq

/* Stub i: PROBE(0x100 | i, error code, frame RIP); #GP and #UD skip two
 * bytes and return, the others stop. */
	IDT_STUBS 256

common:
	push	%rax
	push	%rdi
	push	%rsi
	push	%rdx
	mov	32(%rsp), %rdi			/* vector */
	mov	40(%rsp), %rsi			/* error code */
	mov	48(%rsp), %rdx			/* frame RIP */
	or	$0x100, %edi
	HCALL(KINJECT_HC_PROBE)
	mov	32(%rsp), %rdi
	cmp	$13, %edi
	je	1f
	cmp	$6, %edi
	je	1f
2:	jmp	2b
1:	addq	$2, 48(%rsp)
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
	.quad	0				/* 0x18 (TR keeps the boot TSS cached) */
	.quad	0x00cffa000000ffff		/* 0x20 code32 DPL3 */
	.quad	0x00cff2000000ffff		/* 0x28 data DPL3 */
	.quad	0x00affa000000ffff		/* 0x30 code64 DPL3 */
	.quad	0x00008b0021000067, 0		/* 0x38 the boot TSS (busy) */
gdt_end:
	.balign 8
gdtr:	.word	gdt_end - gdt - 1
	.quad	gdt
	.balign 8
idtr:	.word	256 * 16 - 1
	.quad	idt

	.section .bss
	.balign 4096
idt:	.space	256 * 16
	.balign 16
	.space	4096
	.globl kstack_top
kstack_top:
	.space	4096
	.globl ustack_top
ustack_top:
