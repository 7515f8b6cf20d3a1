/* SPDX-License-Identifier: MIT */
/*
 * User memory access.  The only kernel instructions allowed to fault: a
 * #PF or #GP at one of the labelled instructions is turned by
 * uaccess_fixup() into a jump to the fault exit, which returns -EFAULT.
 * STAC/CLAC bracket exactly the user access (SMAP).
 */
#define EFAULT 14

	.text

/* int __uaccess_copy(void *dst, const void *src, uint64_t n) */
	.globl __uaccess_copy
	.type __uaccess_copy, @function
__uaccess_copy:
	stac
	mov %rdx, %rcx
.Lcopy_insn:
	rep movsb
	clac
	xor %eax, %eax
	ret
	.size __uaccess_copy, . - __uaccess_copy

/* long __uaccess_strncpy(char *dst, const char *usrc, uint64_t n):
 * length copied (without the NUL), stops at NUL or n bytes. */
	.globl __uaccess_strncpy
	.type __uaccess_strncpy, @function
__uaccess_strncpy:
	stac
	xor %eax, %eax
1:	cmp %rdx, %rax
	jae 2f
.Lstr_insn:
	movb (%rsi,%rax), %cl
	movb %cl, (%rdi,%rax)
	test %cl, %cl
	jz 2f
	inc %rax
	jmp 1b
2:	clac
	ret
	.size __uaccess_strncpy, . - __uaccess_strncpy

	.type __uaccess_fault, @function
__uaccess_fault:
	clac
	mov $-EFAULT, %rax
	ret
	.size __uaccess_fault, . - __uaccess_fault

	.section .rodata
	.balign 8
	.globl __uaccess_insns
__uaccess_insns:
	.quad .Lcopy_insn, .Lstr_insn, 0
	.globl __uaccess_fault_addr
__uaccess_fault_addr:
	.quad __uaccess_fault
