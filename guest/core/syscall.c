// SPDX-License-Identifier: MIT
/*
 * System calls, for SYSCALL and int $0x80 alike (uapi.h).  The handlers see
 * only the frame; the entry kind matters to the variant's exit path, not
 * here.  Compatibility-mode callers only control the low 32 bits of their
 * registers, so their number and arguments are truncated.
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/scenario.h>
#include <guest/x86.h>

#define USER_TOP 0x0000800000000000ULL

static long sys_write(uint64_t ptr, uint64_t len)
{
	char buf[128];
	uint64_t done = 0;

	while (done < len) {
		uint64_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		if (copy_from_user(buf, ptr + done, n))
			return -EFAULT;
		console_write(buf, n);
		done += n;
	}
	return (long)len;
}

static void __attribute__((noreturn)) sys_check(struct kinject_frame *f, uint64_t umsg,
						uint64_t expected, uint64_t seen, uint64_t step)
{
	static char msg[96], full[192];
	struct task *t = task_current();

	if (strncpy_from_user(msg, umsg, sizeof(msg) - 1) < 0)
		strlcpy(msg, "(unreadable message)", sizeof(msg));
	msg[sizeof(msg) - 1] = 0;
	snprintf(full, sizeof(full), "%s: %s: expected %lx, seen %lx (step %lu)", t->name, msg,
		 expected, seen, step);
	/* check=oops: stop right here with the reporting frame, for the
	 * harness to see the registers as they were. */
	if (!strcmp(cmdline_get("check") ? cmdline_get("check") : "", "oops"))
		oops(KINJECT_OOPS_USER_CHECK, full, f);
	scenario_fail("%s", full);
	task_exit(1);
}

static long sys_raise_irq(uint64_t vector)
{
	if (vector < 32 || vector > 255 || vector == KINJECT_VEC_SYSCALL80)
		return -EINVAL;
	/* With IRQs off the interrupt stays pending until the return to user
	 * mode sets IF again: it then arrives in ring 3. */
	cli();
	hc_raise_irq((unsigned)vector);
	return 0;
}

static long sys_set_base(uint32_t msr, uint64_t base)
{
	if (base >= USER_TOP)
		return -EINVAL;
	/* While in the kernel the user GS base sits in KERNEL_GS_BASE. */
	wrmsr(msr, base);
	return 0;
}

/* What a debugger writing the task's registers does, on itself: every
 * saved register the system call convention does not define is flipped
 * (not RAX, the result; not RCX, R11 or RSP, which SYSRET uses, so the
 * fast return stays allowed).  Whichever way the kernel returns, it must
 * load them all from the frame. */
static void sys_rewrite(struct kinject_frame *f)
{
	uint64_t *r[] = { &f->rbx, &f->rdx, &f->rsi, &f->rdi, &f->rbp, &f->r8, &f->r9,
			  &f->r10, &f->r12, &f->r13, &f->r14, &f->r15 };

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		*r[i] = ~*r[i];
}

void do_syscall(struct kinject_frame *f)
{
	uint64_t nr = f->orig_rax, a0 = f->rdi, a1 = f->rsi, a2 = f->rdx;
	uint64_t a3 = f->r10, a4 = f->r8, a5 = f->r9;
	long ret;

	check_kernel_gs("do_syscall", f);
	if ((f->cs & 3) != 3)
		oops(KINJECT_OOPS_BAD_STATE, "do_syscall with a kernel-mode frame", f);
	if (f->cs != variant_user_cs) {
		nr = (uint32_t)nr; a0 = (uint32_t)a0; a1 = (uint32_t)a1; a2 = (uint32_t)a2;
		a3 = (uint32_t)a3; a4 = (uint32_t)a4; a5 = (uint32_t)a5;
	}
	sti();
	switch (nr) {
	case SYS_EXIT:
		task_exit((int)a0);
	case SYS_WRITE:
		ret = sys_write(a0, a1);
		break;
	case SYS_SIGACTION:
		ret = sys_sigaction(a0, a1, a2);
		break;
	case SYS_SIGRETURN:
		ret = sys_sigreturn(f);
		break;
	case SYS_YIELD:
		sched_yield();
		ret = 0;
		break;
	case SYS_GETPID:
		ret = task_current()->pid;
		break;
	case SYS_CHECK:
		sys_check(f, a0, a1, a2, a3);
	case SYS_RAISE_IRQ:
		ret = sys_raise_irq(a0);
		break;
	case SYS_ECHO:
		ret = (long)(a0 + 2 * a1 + 3 * a2 + 5 * a3 + 7 * a4 + 11 * a5);
		break;
	case SYS_RAISE_NMI:
		hc_raise_nmi();
		ret = 0;
		break;
	case SYS_SET_FS_BASE:
		ret = sys_set_base(MSR_FS_BASE, a0);
		break;
	case SYS_SET_GS_BASE:
		ret = sys_set_base(MSR_KERNEL_GS_BASE, a0);
		break;
	case SYS_REWRITE:
		sys_rewrite(f);
		ret = 0;
		break;
	default:
		ret = -ENOSYS;
	}
	cli();
	f->rax = (uint64_t)ret;
}
