/* SPDX-License-Identifier: MIT */
/*
 * Boot entry (guest/include/kinject/abi.h, "Boot protocol").  The VMM enters
 * here in 64-bit mode on its own page tables (identity + high map of all
 * RAM), IF clear, RDI = guest-physical address of struct kinject_boot_info.
 *
 * _start: zero .bss, switch to the boot stack in .bss, remember the boot-info
 * address (boot_info_pa), detect CPU features (x86_cpu_init: patches
 * STAC/CLAC out if the CPU has no SMAP) and call the core's kmain(boot_info_pa).
 */
#include <kinject/abi.h>

	.section .text.boot, "ax"
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movq	%rdi, %r12			/* boot_info_pa (callee-saved) */
	/* Zero .bss (rep stosb needs no stack). */
	leaq	__bss_start(%rip), %rdi
	leaq	__bss_end(%rip), %rcx
	subq	%rdi, %rcx
	xorl	%eax, %eax
	rep stosb
	movq	%r12, boot_info_pa(%rip)
	leaq	boot_stack_top(%rip), %rsp
	xorl	%ebp, %ebp
	movq	%r12, %rdi
	call	x86_cpu_init			/* features; STAC/CLAC patched out without SMAP */
	movq	%r12, %rdi
	call	kmain
	/* kmain must not return; if it does, stop here for good. */
1:	cli
	hlt
	jmp	1b
	.size _start, . - _start

	.section .data
	.balign 8
	.globl boot_info_pa
boot_info_pa:
	.quad 0

	.section .bss
	.balign 4096
	.globl boot_stack_bottom, boot_stack_top
boot_stack_bottom:
	.skip 16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
