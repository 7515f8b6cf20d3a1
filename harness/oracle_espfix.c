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
 */
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

const struct oracle oracle_espfix = {
	.name = "espfix",
	.summary = "After a return to ring 3 on a 16-bit SS, RSP above bit 15 holds the user's "
		   "bits, not a kernel stack address.",
	.at_resume = espfix_at_resume,
	.at_hit = espfix_at_hit,
	.at_end = espfix_at_end,
};
