/* SPDX-License-Identifier: MIT */
/*
 * The testbed kernel's user ABI: system call numbers, signal numbers, the
 * signal frame, and the fixed user virtual-address layout.  Shared by the
 * core (C) and the ring-3 programs (GNU as), so plain #defines only.
 *
 * System calls: number in RAX, arguments RDI, RSI, RDX, R10, R8, R9, result
 * in RAX (negative errno on error).  Both SYSCALL and `int $0x80` use this
 * convention, also from compatibility mode (there only the low 32 bits of
 * the number and arguments count).
 */
#ifndef GUEST_UAPI_H
#define GUEST_UAPI_H

#include <kinject/abi.h>

#define SYS_EXIT        1   /* (status)                       no return */
#define SYS_WRITE       2   /* (ptr, len) -> len              console */
#define SYS_SIGACTION   3   /* (signo, handler, restorer) -> 0 */
#define SYS_SIGRETURN   4   /* () from the restorer: restores the saved frame */
#define SYS_YIELD       5   /* () -> 0 */
#define SYS_GETPID      6   /* () -> pid */
#define SYS_CHECK       7   /* (msg, expected, seen, step): report a failure, exits */
#define SYS_RAISE_IRQ   8   /* (vector): pending IRQ, taken on return to user */
#define SYS_ECHO        9   /* (a..f) -> a + 2b + 3c + 5d + 7e + 11f */
#define SYS_RAISE_NMI   10  /* (): pending NMI */
#define SYS_SET_FS_BASE 11  /* (base) */
#define SYS_SET_GS_BASE 12  /* (base) */
#define SYS_REWRITE     13  /* () -> 0: flips every bit of the saved RBX, RDX, RSI,
			       RDI, RBP, R8-R10, R12-R15 (a debugger's register
			       write); the return loads them from the frame */
#define SYS_NR          14

#define EFAULT  14
#define EINVAL  22
#define ENOSYS  38

#define SIGILL   4
#define SIGTRAP  5
#define SIGBUS   7
#define SIGFPE   8
#define SIGSEGV  11
#define NSIG     32

/* siginfo, passed to the handler in RSI. */
#define SIGINFO_SIGNO   0x00
#define SIGINFO_VECTOR  0x08   /* exception vector that caused it */
#define SIGINFO_ERROR   0x10   /* exception error code */
#define SIGINFO_ADDR    0x18   /* CR2 for #PF, else 0 */
#define SIGINFO_SIZE    0x20

/* Signal frame, built on the user stack.  At handler entry RSP points at
 * SIGFRAME_RETADDR (the restorer), so the handler's `ret` enters the
 * restorer with RSP = frame + 8, which then does SYS_SIGRETURN.  The handler
 * gets RDI = signo, RSI = &info, RDX = &saved frame (struct kinject_frame,
 * KINJECT_FRAME_* offsets) and may rewrite the saved frame. */
#define SIGFRAME_RETADDR 0x00
#define SIGFRAME_INFO    0x08
#define SIGFRAME_FRAME   (SIGFRAME_INFO + SIGINFO_SIZE)      /* 0x28 */
#define SIGFRAME_MAGIC   (SIGFRAME_FRAME + 0xb8)             /* 0xe0 */
#define SIGFRAME_SIZE    (SIGFRAME_MAGIC + 8)                /* 0xe8 */
#define SIGFRAME_MAGIC_VALUE 0x4d4152464749534bULL           /* "KSIGFRAM" */

/* ---- User virtual-address layout ---------------------------------------- */
/* .user.text at USER_TEXT_VA, .user.data at the same distance from it as in
 * the kernel image, so RIP-relative references keep working. */
#define USER_TEXT_VA        KINJECT_USER_TEXT_VA   /* abi.h: the harness knows it too */
/* Per task slot: a 16 KiB stack at the top of a 64 KiB window (the rest is
 * an unmapped guard), and two data pages (FS area, GS area). */
#define USER_STACK_BASE     0x10000000
#define USER_STACK_WINDOW   0x10000
#define USER_STACK_PAGES    4
#define USER_DATA_BASE      0x20000000
#define USER_DATA_WINDOW    0x10000
/* The 16-bit stack segment of the ss16 scenario: LDT data segment with this
 * base and limit 0xffff; its top two pages are mapped. */
#define USER_SS16_BASE      0x30000000
#define USER_SS16_PAGES     2
#define USER_SS16_ESP_HIGH  0x1234        /* what ESP[31:16] must stay */
#define USER_SS16_SEL       0x07          /* LDT entry 0, RPL 3 */
/* With `ldt=0` (a host KVM that cannot IRET to an LDT SS) ss16 uses the
 * variant's GDT 16-bit data segment (variant_user_ss16, base 0) instead:
 * its stack is then the top two pages below USER_SS16_GDT_BASE + 0x10000. */
#define USER_SS16_GDT_BASE  0x0
/* Never mapped: the #PF target of the signals scenario. */
#define USER_UNMAPPED_VA    0x0dead000

/* ---- Per-task data area (the FS page; the GS page follows it) ----------- */
#define UD_SELF      0x00   /* this area's own user VA (== FS base) */
#define UD_GSBASE    0x08   /* the GS base the task must keep */
#define UD_ITERS     0x10   /* iterations to run */
#define UD_PID       0x18
#define UD_RSP       0x20   /* RSP the spin loop must keep */
#define UD_SIGCOUNT  0x28   /* signals the task's handler saw */
#define UD_ARG       0x30   /* scenario-specific */
#define UD_STEP      0x38   /* which step the program is at (in failure reports) */
#define UD_COUNTER   0xc0   /* a loop counter kept in memory */
#define UD_RAX       0x40   /* register patterns, 8 bytes each, rax..r15 */
#define UD_RBX       0x48
#define UD_RCX       0x50
#define UD_RDX       0x58
#define UD_RSI       0x60
#define UD_RDI       0x68
#define UD_RBP       0x70
#define UD_R8        0x78
#define UD_R9        0x80
#define UD_R10       0x88
#define UD_R11       0x90
#define UD_R12       0x98
#define UD_R13       0xa0
#define UD_R14       0xa8
#define UD_R15       0xb0
#define UD_GS_SELF   0x00   /* in the GS page: its own user VA (== GS base) */
#define UD_GS_FSBASE 0x08   /* in the GS page: the FS base the task must keep */

#endif /* GUEST_UAPI_H */
