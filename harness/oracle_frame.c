/* SPDX-License-Identifier: MIT */
/*
 * frame: at the first instruction of the C handler, the saved frame in guest
 * memory equals the interrupted state (all GPRs, RIP, CS, RFLAGS but RF,
 * RSP, SS, vector, error code) of the innermost injected event.
 *
 * The expected values come from the vCPU at the stop, before injection;
 * the frame is read from guest memory at the handler's first argument (RDI).
 * One allowance: an exception injected at an IRET may report the context
 * the IRET was returning to (rip..ss of the IRET frame), because a fault of
 * IRET belongs to that context (Linux's fixup_bad_iret and its peers).
 */
#include <string.h>
#include "oracle.h"

struct field {
	const char *name;
	uint64_t expected, actual, mask;
};

static void frame_at_handler(struct oracle_ctx *x)
{
	unsigned k = oracle__last(x);
	const struct engine_state *st = &x->stop[k];
	const struct kvm_regs *g = &st->regs;
	const struct vm_event *ev = &x->event[k];
	const struct kinject_frame *f = &x->frame;
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX], where[128];
	uint64_t ec = ev->kind == VM_EVENT_EXCEPTION && ev->has_error_code ? ev->error_code : 0;
	const uint64_t all = ~0ULL;

	if (!x->frame_ok) {
		snprintf(exp, sizeof(exp), "a readable struct kinject_frame at RDI on entry to %s",
			 sym__describe(x->symtab, x->handler_rip, where, sizeof(where)));
		snprintf(act, sizeof(act), "RDI = 0x%llx, not mapped", (unsigned long long)x->frame_va);
		oracle__report(x, &oracle_frame, st->regs.rip, exp, act);
		return;
	}

	uint64_t hw[5] = { g->rip, st->sregs.cs.selector, g->rflags, g->rsp, st->sregs.ss.selector };
	/* The IRET-fault allowance: judge rip..ss against the IRET's target
	 * when that is what the frame holds. */
	if (ev->kind == VM_EVENT_EXCEPTION && st->iret_frame_ok &&
	    f->rip == st->iret_frame[0] && f->cs == st->iret_frame[1]) {
		memcpy(hw, st->iret_frame, sizeof(hw));
		oracle__note(x, &oracle_frame, "exception at an IRET: frame judged against the IRET's target");
	}

	const struct field fields[] = {
		{ "r15", g->r15, f->r15, all }, { "r14", g->r14, f->r14, all },
		{ "r13", g->r13, f->r13, all }, { "r12", g->r12, f->r12, all },
		{ "r11", g->r11, f->r11, all }, { "r10", g->r10, f->r10, all },
		{ "r9", g->r9, f->r9, all },    { "r8", g->r8, f->r8, all },
		{ "rbp", g->rbp, f->rbp, all }, { "rdi", g->rdi, f->rdi, all },
		{ "rsi", g->rsi, f->rsi, all }, { "rdx", g->rdx, f->rdx, all },
		{ "rcx", g->rcx, f->rcx, all }, { "rbx", g->rbx, f->rbx, all },
		{ "rax", g->rax, f->rax, all },
		{ "vector", ev->vector, f->vector, all },
		{ "error_code", ec, f->error_code, all },
		{ "rip", hw[0], f->rip, all },
		/* CPUs push the selector zero-extended; only 16 bits are it. */
		{ "cs", hw[1], f->cs, 0xffff },
		{ "rflags", hw[2], f->rflags, ~RFLAGS_RF_BIT },
		{ "rsp", hw[3], f->rsp, all },
		{ "ss", hw[4], f->ss, 0xffff },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *fl = &fields[i];
		if (((fl->expected ^ fl->actual) & fl->mask) == 0)
			continue;
		snprintf(exp, sizeof(exp), "frame.%s = 0x%llx (interrupted state, step %u)", fl->name,
			 (unsigned long long)(fl->expected & fl->mask), k + 1);
		snprintf(act, sizeof(act), "frame.%s = 0x%llx (frame at 0x%llx, entering %s)", fl->name,
			 (unsigned long long)(fl->actual & fl->mask), (unsigned long long)x->frame_va,
			 sym__describe(x->symtab, x->handler_rip, where, sizeof(where)));
		oracle__report(x, &oracle_frame, st->regs.rip, exp, act);
	}
}

static void frame_at_end(struct oracle_ctx *x)
{
	if (x->nsteps && !x->handler_seen)
		oracle__note(x, &oracle_frame, "does not apply: the C handler of step %u's event was "
			     "never entered", x->nsteps);
}

const struct oracle oracle_frame = {
	.name = "frame",
	.summary = "At the first instruction of the C handler the saved frame equals the "
		   "interrupted state: GPRs, RIP, CS, RFLAGS (RF aside), RSP, SS, vector, error code.",
	.at_handler = frame_at_handler,
	.at_end = frame_at_end,
};
