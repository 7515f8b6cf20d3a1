// SPDX-License-Identifier: MIT
/* Helpers shared by the scenarios that run ring-3 programs. */
#include <guest/core.h>
#include <guest/scenario.h>
#include <guest/task.h>

static uint64_t pattern(unsigned seed, unsigned reg)
{
	/* Distinct in both halves, and different per task, so a value that
	 * leaks from another register or task is never mistaken for ours. */
	uint64_t x = (uint64_t)(seed * 31 + reg + 1) * 0x9e3779b97f4a7c15ULL;
	return x ^ (x >> 29);
}

void user_task_prepare(struct task *t, unsigned seed, uint64_t iters, const void *entry,
		       struct kinject_frame *regs)
{
	uint64_t *fs = (uint64_t *)t->udata, *gs = (uint64_t *)(t->udata + 4096);
	uint64_t *r = &regs->r15;   /* r15 .. rax are consecutive */

	memset(regs, 0, sizeof(*regs));
	fs[UD_SELF / 8] = t->udata_va;
	fs[UD_GSBASE / 8] = t->udata_va + 4096;
	fs[UD_ITERS / 8] = iters;
	fs[UD_PID / 8] = (uint64_t)t->pid;
	gs[UD_GS_SELF / 8] = t->udata_va + 4096;
	gs[UD_GS_FSBASE / 8] = t->udata_va;
	/* UD_RAX.. are in rax..r15 order; the frame is in r15..rax order. */
	for (unsigned i = 0; i < 15; i++) {
		fs[UD_RAX / 8 + i] = pattern(seed, i);
		r[14 - i] = pattern(seed, i);
	}
	regs->rip = user_text_va(entry);
	regs->rdi = t->udata_va;
	regs->rsi = t->udata_va + 4096;
}

uint64_t user_data_read(const struct task *t, unsigned off)
{
	return ((const uint64_t *)t->udata)[off / 8];
}

int scenario_verbose(void)
{
	return cmdline_u64("verbose", 0) != 0;
}
