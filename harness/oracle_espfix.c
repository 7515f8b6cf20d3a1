/* SPDX-License-Identifier: MIT */
/*
 * espfix: after a return to ring 3 with a 16-bit SS, the bits of RSP above
 * SP[15:0] that the user can see are the user's own (those at the
 * interrupted state), not bits of a kernel stack address.
 *
 * IRET to a 16-bit stack segment loads only SP[15:0]; the rest of RSP keeps
 * whatever the kernel's last RSP had unless the kernel returned through an
 * espfix stack whose address carries the user's bits (CVE-2014-8133/8134).
 * Code running with a 64-bit CS sees all of RSP, so RSP[63:16] is compared;
 * compatibility-mode code sees ESP only, so RSP[31:16] is (RSP[63:32] is
 * invisible to it and legitimately holds espfix bits).  Judged at the
 * resume point, or at the first later breakpoint stop in ring 3 of the
 * same task on a 16-bit SS.
 *
 * Some hosts' IRET loads all of ESP even for a 16-bit SS (kvm_pvm does),
 * which hides the leak from any check after the return.  So trace mode
 * also judges the mechanism, as the architecture defines it: an IRET at
 * CPL 0 whose frame's SS is a 16-bit data segment leaves the RSP it ran on
 * in RSP[31:16], so that RSP[31:16] must already be the frame's (the
 * espfix stack's alias chosen for the user's ESP).
 */
#include "kinject.h"
#include "oracle.h"

static void judge(struct oracle_ctx *x, unsigned k)
{
	const struct engine_state *st = &x->stop[k];
	const struct kvm_regs *now = vcpu__regs(x->vm);
	const struct kvm_sregs *sr = vcpu__sregs(x->vm);
	uint64_t mask = sr->cs.l ? ~0xffffULL : 0xffff0000ULL;
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];

	x->espfix_checked[k] = true;
	if (((now->rsp ^ st->regs.rsp) & mask) == 0)
		return;
	snprintf(exp, sizeof(exp), "RSP[%s:16] = 0x%llx after the return to a 16-bit SS "
		 "(the user's, step %u)", sr->cs.l ? "63" : "31",
		 (unsigned long long)(st->regs.rsp & mask), k + 1);
	snprintf(act, sizeof(act), "RSP = 0x%llx (bits 0x%llx), at ring 3 RIP 0x%llx",
		 (unsigned long long)now->rsp, (unsigned long long)(now->rsp & mask),
		 (unsigned long long)now->rip);
	oracle__report(x, &oracle_espfix, st->regs.rip, exp, act);
}

static void espfix_at_resume(struct oracle_ctx *x, unsigned k)
{
	if (x->stop[k].ss16 && !x->espfix_checked[k])
		judge(x, k);
}

static void espfix_at_hit(struct oracle_ctx *x)
{
	const struct kvm_sregs *sr = vcpu__sregs(x->vm);

	if (vcpu__cpl(x->vm) != 3 || sr->ss.db)
		return;
	for (unsigned k = 0; k < x->nsteps; k++)
		if (x->stop[k].ss16 && !x->espfix_checked[k] &&
		    oracle__percpu(x, KINJECT_PCPU_CURRENT) == x->stop[k].current)
			judge(x, k);
}

static void espfix_at_end(struct oracle_ctx *x)
{
	for (unsigned k = 0; k < x->nsteps; k++) {
		if (!x->stop[k].ss16)
			continue;
		if (!x->espfix_checked[k])
			oracle__note(x, &oracle_espfix, "step %u interrupted a 16-bit SS context that "
				     "was never seen again in ring 3", k + 1);
		return;
	}
	oracle__note(x, &oracle_espfix, "does not apply: no step interrupted ring 3 on a 16-bit SS");
}

static void espfix_at_step(struct oracle_ctx *x, const struct insn *in)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	char exp[ENGINE_TEXT_MAX], act[ENGINE_TEXT_MAX];
	uint64_t f[5];                           /* RIP, CS, RFLAGS, RSP, SS */
	struct kvm_segment ss;

	if (!in || !(in->flags & INSN_IRET) || vcpu__cpl(x->vm) != 0 ||
	    vm__read_gva(x->vm, 0, r->rsp, f, sizeof(f)) || (f[1] & 3) != 3 ||
	    vcpu__segment(x->vm, (uint16_t)f[4], &ss) || ss.db)
		return;
	if (((r->rsp ^ f[3]) & 0xffff0000ULL) == 0)
		return;
	snprintf(exp, sizeof(exp), "an IRET to the 16-bit SS 0x%llx runs on a stack whose RSP[31:16] "
		 "are the user's 0x%llx (the architecture leaves them in ESP)",
		 (unsigned long long)f[4], (unsigned long long)((f[3] >> 16) & 0xffff));
	snprintf(act, sizeof(act), "RSP 0x%llx: ESP[31:16] would read 0x%llx in ring 3 at 0x%llx",
		 (unsigned long long)r->rsp, (unsigned long long)((r->rsp >> 16) & 0xffff),
		 (unsigned long long)f[0]);
	oracle__report_step(x, &oracle_espfix, r->rip, exp, act);
}

const struct oracle oracle_espfix = {
	.name = "espfix",
	.summary = "After a return to ring 3 on a 16-bit SS, RSP above bit 15 holds the user's "
		   "bits, not a kernel stack address.",
	.at_resume = espfix_at_resume,
	.at_hit = espfix_at_hit,
	.at_end = espfix_at_end,
	.at_step = espfix_at_step,
};
