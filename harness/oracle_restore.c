/* SPDX-License-Identifier: MIT */
/*
 * restore: every return to ring 3 resumes exactly the task's saved frame.
 * At each IRET or SYSRET at CPL 0 that returns to ring 3 (trace mode), what
 * the instruction is about to load -- the IRET frame at RSP, or RCX, R11,
 * RSP and STAR's selectors for SYSRET -- and every other GPR equal the
 * frame at the top of the current task's kernel stack (the ABI's place for
 * it: oracle__task_frame).
 *
 * That frame is what the entry saved (the frame oracle checks it at the
 * handler) as the kernel then changed it on purpose: a system call's
 * result, a signal handler's entry, sigreturn, a debugger's write.  The
 * exit path may copy it to the trampoline or espfix stack or take the
 * SYSRET shortcut, but what reaches ring 3 must be that frame: a register
 * the exit forgets to reload leaks the kernel's value or loses the new one
 * (bug #10 of x86-entry-bugs.md).  SYSRET carries RCX and R11 only as the
 * new RIP and RFLAGS, so a frame whose RCX or R11 differ from its RIP or
 * RFLAGS -- one the kernel rewrote -- must leave through IRET (bug #2), and
 * so must one with a non-canonical RIP, which SYSRET faults on in ring 0
 * on Intel (bug #1).
 */
#include <string.h>
#include "oracle.h"

#define MSR_STAR 0xc0000081

struct mismatch {
	char text[ENGINE_TEXT_MAX];
	size_t len;
	unsigned n;
};

static void differs(struct mismatch *m, const char *what, uint64_t want, uint64_t got)
{
	if (want == got || m->len >= sizeof(m->text))
		return;
	m->len += (size_t)snprintf(m->text + m->len, sizeof(m->text) - m->len,
				   "%s%s 0x%llx (frame 0x%llx)", m->n++ ? ", " : "", what,
				   (unsigned long long)got, (unsigned long long)want);
}

static void restore_at_step(struct oracle_ctx *x, const struct insn *in)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	struct kinject_frame f;
	uint64_t fva;
	struct mismatch m = { .n = 0 };
	bool sysret;
	char exp[ENGINE_TEXT_MAX];

	if (!oracle__returns_to_user(x, in, NULL) || !(fva = oracle__task_frame(x, &f)))
		return;
	sysret = in->flags & INSN_SYSRET;
	const struct { const char *name; uint64_t want, got; bool sysret_carries; } gpr[] = {
		{ "rax", f.rax, r->rax, false }, { "rbx", f.rbx, r->rbx, false },
		{ "rcx", f.rcx, r->rcx, true },  { "rdx", f.rdx, r->rdx, false },
		{ "rsi", f.rsi, r->rsi, false }, { "rdi", f.rdi, r->rdi, false },
		{ "rbp", f.rbp, r->rbp, false }, { "r8", f.r8, r->r8, false },
		{ "r9", f.r9, r->r9, false },    { "r10", f.r10, r->r10, false },
		{ "r11", f.r11, r->r11, true },  { "r12", f.r12, r->r12, false },
		{ "r13", f.r13, r->r13, false }, { "r14", f.r14, r->r14, false },
		{ "r15", f.r15, r->r15, false },
	};
	for (size_t i = 0; i < sizeof(gpr) / sizeof(gpr[0]); i++)
		if (!(sysret && gpr[i].sysret_carries))
			differs(&m, gpr[i].name, gpr[i].want, gpr[i].got);
	if (sysret) {
		uint64_t star = 0;
		/* What SYSRET loads: RIP <- RCX, RFLAGS <- R11, the selectors
		 * from STAR; RSP stays. */
		differs(&m, "RIP (rcx)", f.rip, r->rcx);
		/* Intel raises #GP for a non-canonical RCX in ring 0, on the
		 * user's stack with the user's GS (bug #1): such a frame must
		 * leave through IRET, whose fault is the user's. */
		if ((uint64_t)((int64_t)(r->rcx << 16) >> 16) != r->rcx && m.len < sizeof(m.text))
			m.len += (size_t)snprintf(m.text + m.len, sizeof(m.text) - m.len,
						  "%sRIP (rcx) 0x%llx not canonical", m.n++ ? ", " : "",
						  (unsigned long long)r->rcx);
		differs(&m, "RFLAGS (r11)", f.rflags, r->r11);
		differs(&m, "RSP", f.rsp, r->rsp);
		if (!vcpu__get_msrs(x->vm, (const uint32_t[]){ MSR_STAR }, &star, 1)) {
			uint16_t base = (uint16_t)(star >> 48);
			differs(&m, "CS (STAR)", f.cs, (uint16_t)((base + 16) | 3));
			differs(&m, "SS (STAR)", f.ss, (uint16_t)((base + 8) | 3));
		}
		/* RCX and R11 themselves: SYSRET leaves RIP and RFLAGS in them. */
		differs(&m, "rcx after SYSRET (= RIP)", f.rcx, f.rip);
		differs(&m, "r11 after SYSRET (= RFLAGS)", f.r11, f.rflags);
	} else {
		uint64_t iret[5];
		if (vm__read_gva(x->vm, 0, r->rsp, iret, sizeof(iret)))
			return;
		differs(&m, "RIP", f.rip, iret[0]);
		differs(&m, "CS", f.cs, iret[1]);
		differs(&m, "RFLAGS", f.rflags, iret[2]);
		differs(&m, "RSP", f.rsp, iret[3]);
		differs(&m, "SS", f.ss, iret[4]);
	}
	if (!m.n)
		return;
	snprintf(exp, sizeof(exp), "the %s to ring 3 loads the task's saved frame at 0x%llx",
		 sysret ? "SYSRET" : "IRET", (unsigned long long)fva);
	oracle__report_step(x, &oracle_restore, in->addr, exp, m.text);
}

const struct oracle oracle_restore = {
	.name = "restore",
	.summary = "Every return to ring 3 resumes exactly the task's saved frame: the IRET frame "
		   "or SYSRET's RCX/R11/RSP, and every other GPR (trace mode).",
	.at_step = restore_at_step,
};
