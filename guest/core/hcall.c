// SPDX-License-Identifier: MIT
/*
 * Hypercalls to the VMM (abi.h), and the ways the guest ends: verdict,
 * oops, panic.  After a verdict or an oops the VMM stops the run; the halt
 * loop only matters if it does not.
 */
#include <guest/core.h>
#include <guest/x86.h>
#include <guest/variant.h>

static void __attribute__((noreturn)) halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

void hc_ready(void)
{
	kinject_hcall(KINJECT_HC_READY, (uint64_t)&kinject_layout, 0, 0, 0);
}

void hc_scenario_begin(const char *name)
{
	kinject_hcall(KINJECT_HC_SCENARIO_BEGIN, (uint64_t)name, 0, 0, 0);
}

void hc_scenario_end(const char *name, int verdict)
{
	kinject_hcall(KINJECT_HC_SCENARIO_END, (uint64_t)name, (uint64_t)verdict, 0, 0);
}

void hc_raise_irq(unsigned vector)
{
	kinject_hcall(KINJECT_HC_RAISE_IRQ, vector, 0, 0, 0);
}

void hc_raise_nmi(void)
{
	kinject_hcall(KINJECT_HC_RAISE_NMI, 0, 0, 0, 0);
}

void hc_verdict(int verdict, const char *msg)
{
	cli();
	kinject_hcall(KINJECT_HC_VERDICT, (uint64_t)verdict, (uint64_t)msg, 0, 0);
	halt_forever();
}

static const char *const oops_names[] = {
	[KINJECT_OOPS_KERNEL_FAULT] = "kernel fault",
	[KINJECT_OOPS_SCHED_ATOMIC] = "scheduling while atomic",
	[KINJECT_OOPS_PREEMPT_UNDERFLOW] = "preempt count underflow",
	[KINJECT_OOPS_UNEXPECTED_VECTOR] = "unexpected vector",
	[KINJECT_OOPS_DOUBLE_FAULT] = "double fault",
	[KINJECT_OOPS_BAD_STATE] = "bad state",
	[KINJECT_OOPS_USER_CHECK] = "user check",
};

/* The message must outlive the hypercall (the VMM reads it from guest
 * memory after the exit), hence static. */
static char oops_msg[192];

void oops(uint64_t reason, const char *msg, const struct kinject_frame *f)
{
	cli();
	const char *what = reason < ARRAY_SIZE(oops_names) && oops_names[reason] ?
		oops_names[reason] : "?";
	strlcpy(oops_msg, msg ? msg : "", sizeof(oops_msg));
	kprintf("OOPS: %s: %s\n", what, oops_msg);
	if (f)
		kprintf("  rip %lx cs %lx rflags %lx rsp %lx ss %lx vector %lx err %lx\n",
			f->rip, f->cs, f->rflags, f->rsp, f->ss, f->vector, f->error_code);
	kprintf("  preempt_count %lx need_resched %lu\n",
		kinject_percpu.preempt_count, kinject_percpu.need_resched);
	kinject_hcall(KINJECT_HC_OOPS, reason, (uint64_t)oops_msg, (uint64_t)f, 0);
	halt_forever();
}

static char panic_msg[192];

void panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(panic_msg, sizeof(panic_msg), fmt, ap);
	va_end(ap);
	oops(KINJECT_OOPS_BAD_STATE, panic_msg, 0);
}
