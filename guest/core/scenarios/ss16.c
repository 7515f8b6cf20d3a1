// SPDX-License-Identifier: MIT
/*
 * ss16: compatibility-mode code on a 16-bit stack segment from the LDT
 * (arch/x86_64/user/ss16.S), ESP[31:16] = USER_SS16_ESP_HIGH.  It makes
 * int $0x80 calls, takes timer ticks and int3 signals.  Pass: ESP[31:16]
 * never changes (no kernel stack bits leak through IRET: ESPFIX works).
 * With `ldt=0` the stack segment is the variant's GDT 16-bit SS
 * (variant_user_ss16, base 0) instead of LDT entry 0; the exit path must
 * treat it the same (ESPFIX).
 */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/sched.h>

extern char user_ss16_entry[];

static struct task *t;
static uint64_t iters;

static void setup(void)
{
	struct kinject_frame regs;

	iters = scenario_iters(64);
	memset(&regs, 0, sizeof(regs));
	t = utask_alloc("ss16", PRIO_NORMAL);
	regs.rip = user_text_va(user_ss16_entry);
	regs.cs = variant_user_cs32;
	regs.ss = host_ldt_ss_ok() ? USER_SS16_SEL : variant_user_ss16;
	regs.rsp = ((uint64_t)USER_SS16_ESP_HIGH << 16) | 0xfff0;
	regs.rbp = iters;
	utask_start(t, &regs);
}

static int finish(char *msg, unsigned long len)
{
	if (t->exit_status != 0) {
		snprintf(msg, len, "expected exit status 0, seen %d", t->exit_status);
		return KINJECT_VERDICT_FAIL;
	}
	snprintf(msg, len, "%lu iterations on a 16-bit %s SS, ESP[31:16] stayed %x", iters,
		 host_ldt_ss_ok() ? "LDT" : "GDT", USER_SS16_ESP_HIGH);
	return KINJECT_VERDICT_PASS;
}

const struct scenario scn_ss16 = {
	.name = "ss16",
	.what = "compat-mode code on a 16-bit LDT stack: ESP[31:16] survives every return (ESPFIX)",
	.setup = setup,
	.finish = finish,
};
