// SPDX-License-Identifier: MIT
/*
 * Work on the way back to user mode: reschedule, deliver signals.  Entered
 * with IRQs off, one pass with IRQs on, left with IRQs off.  The variant
 * calls it while either flag is set, testing them with IRQs off each time
 * (as i386's work_pending): that re-test is what keeps a signal or a
 * reschedule that arrives during this pass from being lost on the way out
 * (bug #16: no return with pending work).
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/x86.h>

void exit_to_user_work(struct kinject_frame *f)
{
	static char buf[128];

	check_kernel_gs("exit_to_user_work", f);
	if ((f->cs & 3) != 3)
		oops(KINJECT_OOPS_BAD_STATE, "exit_to_user_work with a kernel-mode frame", f);
	if (preempt_count() != 0) {
		snprintf(buf, sizeof(buf), "return to user mode with preempt count %lx",
			 preempt_count());
		oops(KINJECT_OOPS_BAD_STATE, buf, f);
	}
	sti();
	if (need_resched())
		schedule();
	if (kinject_percpu.sigpending)
		signal_deliver(f);
	/* IRQs still on: what arrives from here on is the variant's re-test's. */
	__asm__ volatile(".globl exit_work_window\nexit_work_window:");
	cli();
}
