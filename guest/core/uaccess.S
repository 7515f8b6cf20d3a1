/* SPDX-License-Identifier: MIT */
/*
 * User memory access.  The only kernel instructions allowed to fault: a
 * #PF or #GP at one of the labelled instructions is turned by
 * uaccess_fixup() into a jump to the fault exit, which returns -EFAULT.
 * STAC/CLAC bracket exactly the user access (SMAP).  They are emitted as
 * ASM_STAC/ASM_CLAC (guest/x86.h): recorded sites that x86_cpu_init turns
 * into 3-byte NOPs unless SMAP is present and wanted (they #UD without it).
 */
#include <guest/x86.h>
#define EFAULT 14

	.text

/* int __uaccess_copy(void *dst, const void *src, uint64_t n) */
	.globl __uaccess_copy
	.type __uaccess_copy, @function
__uaccess_copy:
	ASM_STAC
	mov %rdx, %rcx
.Lcopy_insn:
	rep movsb
	ASM_CLAC
	xor %eax, %eax
	ret
	.size __uaccess_copy, . - __uaccess_copy

/* long __uaccess_strncpy(char *dst, const char *usrc, uint64_t n):
 * length copied (without the NUL), stops at NUL or n bytes. */
	.globl __uaccess_strncpy
	.type __uaccess_strncpy, @function
__uaccess_strncpy:
	ASM_STAC
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
2:	ASM_CLAC
	ret
	.size __uaccess_strncpy, . - __uaccess_strncpy

	.type __uaccess_fault, @function
__uaccess_fault:
	ASM_CLAC
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
