/* SPDX-License-Identifier: MIT */
/*
 * flags: kernel work runs with the flags the kernel chose: at the first
 * instruction of the C handler, RFLAGS.DF, AC, NT and TF are clear.
 *
 * Event delivery clears TF and NT (and IF through an interrupt gate) but
 * not DF or AC: an interrupt or exception that arrives while the
 * interrupted code has DF or AC set carries them into the kernel, and the
 * entry code must clear them before any C code runs (CLD, CLAC): a string
 * instruction runs backwards with DF set, and AC set turns SMAP off
 * (historical: XSA-44, XSA-339, Linux syscall_nt; bug #9 of
 * x86-entry-bugs.md).  The user's own flags come back with the frame: the
 * transparency and restore oracles judge that.
 */
#include "oracle.h"

#define RFLAGS_TF (1ULL << 8)
#define RFLAGS_DF (1ULL << 10)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_AC (1ULL << 18)

static void flags_at_handler(struct oracle_ctx *x)
{
	const struct kvm_regs *r = vcpu__regs(x->vm);
	uint64_t bad = r->rflags & (RFLAGS_TF | RFLAGS_DF | RFLAGS_NT | RFLAGS_AC);
	char act[ENGINE_TEXT_MAX];

	if (!bad)
		return;
	snprintf(act, sizeof(act), "RFLAGS 0x%llx:%s%s%s%s set", (unsigned long long)r->rflags,
		 bad & RFLAGS_DF ? " DF" : "", bad & RFLAGS_AC ? " AC" : "",
		 bad & RFLAGS_NT ? " NT" : "", bad & RFLAGS_TF ? " TF" : "");
	oracle__report(x, &oracle_flags, r->rip,
		       "DF, AC, NT and TF clear at the C handler's first instruction", act);
}

const struct oracle oracle_flags = {
	.name = "flags",
	.summary = "Kernel C code starts with DF, AC, NT and TF clear, whatever the interrupted "
		   "code had (the entry clears what event delivery leaves).",
	.at_handler = flags_at_handler,
};
