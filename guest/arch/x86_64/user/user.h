/* SPDX-License-Identifier: MIT */
/*
 * Macros for the ring-3 programs (GNU as, included from .S only).  Every
 * program keeps its register patterns in its data area at FS (uapi.h UD_*),
 * so checks are memory compares that need no scratch register.
 */
#include <kinject/abi.h>
#include <guest/uapi.h>

	.set UD_rax, UD_RAX
	.set UD_rbx, UD_RBX
	.set UD_rcx, UD_RCX
	.set UD_rdx, UD_RDX
	.set UD_rsi, UD_RSI
	.set UD_rdi, UD_RDI
	.set UD_rbp, UD_RBP
	.set UD_r8,  UD_R8
	.set UD_r9,  UD_R9
	.set UD_r10, UD_R10
	.set UD_r11, UD_R11
	.set UD_r12, UD_R12
	.set UD_r13, UD_R13
	.set UD_r14, UD_R14
	.set UD_r15, UD_R15

#define ALL_REGS rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15

/* SYSCALL and INT n in 64-bit ring-3 code go through these: each site is
 * listed in .sysemu_sites (abi.h KINJECT_SYSEMU_SITES), so a VMM on a host
 * that mis-delivers them from ring 3 can run them there itself.  (Compat
 * code cannot have sites: ss16.S uses plain int $0x80.) */
.macro USER_SYSCALL
9100:	syscall
	.pushsection .sysemu_sites, "a"
	.quad 9100b
	.popsection
.endm

.macro USER_INT vec
9101:	int $\vec
	.pushsection .sysemu_sites, "a"
	.quad 9101b
	.popsection
.endm

/* Flip every bit of each listed register. */
.macro NOT_REGS regs:vararg
.irp r, \regs
	not %\r
.endr
.endm

/* Load each listed register with its pattern. */
.macro LOAD_REGS regs:vararg
.irp r, \regs
	mov %fs:UD_\r, %\r
.endr
.endm

/* Compare each listed register with its pattern; .Lbad_<reg> on mismatch. */
.macro CHECK_REGS regs:vararg
.irp r, \regs
	cmp %fs:UD_\r, %\r
	jne .Lbad_\r
.endr
.endm

/* The .Lbad_<reg> stubs: report "<reg> changed" with expected and seen. */
.macro BAD_STUBS regs:vararg
.irp r, \regs
.Lbad_\r:
	mov %\r, %rdx
	mov %fs:UD_\r, %rsi
	lea .Lmsg_\r(%rip), %rdi
	jmp user_check_fail
.endr
.irp r, \regs
.Lmsg_\r:
	.asciz "\r changed"
.endr
.endm

/* Report a failure: RDI = message, RSI = expected, RDX = seen. */
.macro FAIL msg
	lea 9001f(%rip), %rdi
	jmp user_check_fail
9001:	.asciz "\msg"
.endm

.macro SYS nr
	mov $\nr, %eax
	syscall
.endm

/* The same through int $0x80.  Every program but `syscalls` uses only this
 * gate, so SYSCALL/SYSRET problems show up in one scenario only. */
.macro SYS80 nr
	mov $\nr, %eax
	int $0x80
.endm

/* FS and GS bases without FSGSBASE (which the CPU may lack, and CR4 may
 * keep off): set through the kernel, checked through memory.  Each area's
 * first word holds its own user VA (UD_SELF / UD_GS_SELF), a TLS-style self
 * pointer, so `mov %fs:0` reads back the FS base.  Clobbers RAX and RDI;
 * \fs and \gs must be other registers.  Fails (FAIL msg) unless both calls
 * return 0 and both self pointers read back. */
.macro SET_BASES fs, gs
	mov \fs, %rdi
	SYS80 SYS_SET_FS_BASE
	test %rax, %rax
	jnz .Lset_bases_failed
	mov \gs, %rdi
	SYS80 SYS_SET_GS_BASE
	test %rax, %rax
	jnz .Lset_bases_failed
	cmp %fs:UD_SELF, \fs
	jne .Lset_bases_failed
	cmp %gs:UD_GS_SELF, \gs
	jne .Lset_bases_failed
.endm
.macro SET_BASES_FAIL_STUB
.Lset_bases_failed:
	mov %rax, %rdx
	xor %esi, %esi
	lea 9004f(%rip), %rdi
	jmp user_check_fail_nostep
9004:	.asciz "setting the FS/GS base (result, or %fs:0/%gs:0 self pointer)"
.endm
