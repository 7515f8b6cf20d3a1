// SPDX-License-Identifier: MIT
/*
 * Exceptions.  From ring 3 they become signals, delivered on the way back
 * to user mode.  In the kernel only a fault at a known user-access
 * instruction is recoverable; everything else is an oops, except the
 * events the harness injects that a real kernel also survives (#DB, #MC,
 * #NM and reserved vectors are counted and ignored).
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/x86.h>

static const char *const names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF9",
	"#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM",
	"#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC",
	"#SX", "#31",
};

static int signal_for(unsigned v)
{
	switch (v) {
	case X86_TRAP_DE: case X86_TRAP_MF: case X86_TRAP_XF:
		return SIGFPE;
	case X86_TRAP_DB: case X86_TRAP_BP:
		return SIGTRAP;
	case X86_TRAP_UD:
		return SIGILL;
	case X86_TRAP_NP: case X86_TRAP_SS: case X86_TRAP_AC:
		return SIGBUS;
	case X86_TRAP_OF: case X86_TRAP_BR: case X86_TRAP_TS: case X86_TRAP_GP:
	case X86_TRAP_PF:
		return SIGSEGV;
	default:
		return 0;
	}
}

void do_exception(struct kinject_frame *f, uint64_t aux)
{
	static char msg[160];
	unsigned v = (unsigned)f->vector;
	int user = (f->cs & 3) == 3;

	check_kernel_gs("do_exception", f);
	irq_stats.exceptions++;
	if (v >= 32)
		oops(KINJECT_OOPS_UNEXPECTED_VECTOR, "do_exception called with a vector >= 32", f);
	if (v == X86_TRAP_DF)
		oops(KINJECT_OOPS_DOUBLE_FAULT, "double fault", f);
	if (v == X86_TRAP_NMI)
		oops(KINJECT_OOPS_UNEXPECTED_VECTOR, "NMI vector routed to do_exception", f);
	if (v == X86_TRAP_MC)
		return;
	if (v == X86_TRAP_DB && !user) {
		/* A #DB in the kernel (e.g. delivered right at an entry
		 * instruction): nothing to do but survive it. */
		irq_stats.kernel_db++;
		return;
	}

	int signo = signal_for(v);
	if (!signo)
		return;   /* #NM, reserved vectors: injected, harmless */

	if (!user) {
		if ((v == X86_TRAP_PF || v == X86_TRAP_GP) && uaccess_fixup(f))
			return;
		snprintf(msg, sizeof(msg), "%s in kernel mode at rip %lx (error %lx, cr2/dr6 %lx)",
			 names[v], f->rip, f->error_code, aux);
		oops(KINJECT_OOPS_KERNEL_FAULT, msg, f);
	}

	if (f->rflags & X86_RFLAGS_IF)
		sti();
	signal_send(task_current(), signo, v,
		    v == X86_TRAP_DB ? aux : f->error_code,
		    v == X86_TRAP_PF ? aux : 0);
	cli();
}
