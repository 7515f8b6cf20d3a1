// SPDX-License-Identifier: MIT
/*
 * Work on the way back to user mode: reschedule, deliver signals.  Entered
 * with IRQs off; both flags are re-tested with IRQs off before leaving, and
 * the variant tests them once more (bug #16: no return with pending work).
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
	for (;;) {
		sti();
		if (need_resched())
			schedule();
		if (kinject_percpu.sigpending)
			signal_deliver(f);
		cli();
		if (!need_resched() && !kinject_percpu.sigpending)
			break;
	}
}
