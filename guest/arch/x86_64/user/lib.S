/* SPDX-License-Identifier: MIT */
/* Shared ring-3 helpers: failure report and the signal restorer. */
#include "user.h"

	.section .user.text, "ax"
	.code64

/* RDI = message, RSI = expected, RDX = seen; the step comes from the data
 * area.  SYS_CHECK ends the task. */
	.globl user_check_fail
user_check_fail:
	mov %fs:UD_STEP, %r10
	mov $SYS_CHECK, %eax
	syscall
	ud2

/* The same for code without an FS data area. */
	.globl user_check_fail_nostep
user_check_fail_nostep:
	xor %r10d, %r10d
	mov $SYS_CHECK, %eax
	syscall
	ud2

/* The handler's `ret` lands here with RSP just above the return address. */
	.globl user_restorer
user_restorer:
	mov $SYS_SIGRETURN, %eax
	syscall
	ud2
