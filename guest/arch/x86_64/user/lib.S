/* SPDX-License-Identifier: MIT */
/* Shared ring-3 helpers: failure report and the signal restorer. */
#include "user.h"

	.section .user.text, "ax"
	.code64

/* RDI = message, RSI = expected, RDX = seen; the step comes from the data
 * area.  SYS_CHECK ends the task.  Through int $0x80, so a report works
 * even where SYSCALL does not. */
	.globl user_check_fail
user_check_fail:
	mov %fs:UD_STEP, %r10
	mov $SYS_CHECK, %eax
	USER_INT 0x80
	ud2

/* The same for code without an FS data area. */
	.globl user_check_fail_nostep
user_check_fail_nostep:
	xor %r10d, %r10d
	mov $SYS_CHECK, %eax
	USER_INT 0x80
	ud2

/* The handler's `ret` lands here with RSP just above the return address.
 * user_restorer returns through SYSCALL (the kernel must then leave through
 * IRET: RCX/R11 are not the return RIP/RFLAGS, bug #2); only the syscalls
 * scenario uses it.  user_restorer80 uses int $0x80: everyone else. */
	.globl user_restorer
user_restorer:
	mov $SYS_SIGRETURN, %eax
	USER_SYSCALL
	ud2
	.globl user_restorer80
user_restorer80:
	mov $SYS_SIGRETURN, %eax
	USER_INT 0x80
	ud2
