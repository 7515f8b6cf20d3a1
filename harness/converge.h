/* SPDX-License-Identifier: MIT */
/*
 * Convergence: has a run that took an injected event come back to exactly
 * the state the uninjected run had at the stop?
 *
 * The engine checkpoints the machine at a case's last stop, before it
 * injects.  When that step's interrupted context resumes, the machine is
 * compared with the checkpoint: the whole vCPU (RFLAGS.RF and CR2 aside),
 * and every byte of memory, but for memory nothing can read before writing
 * it again:
 *
 *   - on the stack the context resumed on, below its RSP (the guest is
 *     built without a red zone; at CPL 3 the current task's whole kernel
 *     stack, which is empty while ring 3 runs);
 *   - per-CPU stacks (IRQ, IST, entry trampoline, espfix) that no live
 *     context runs on, but for the state the layout says they keep across
 *     uses (the nested-NMI flag);
 *   - the statistics the layout declares (kinject_layout.stats), each only
 *     if capstone finds every instruction of the kernel that names it only
 *     adding to it or storing to it (no load, no address taken; absolute,
 *     RIP- and %gs-relative operands).
 *
 * If they are equal, the rest of the run is the uninjected run's from that
 * stop (the guest is deterministic), which the engine has already seen
 * pass: the case can end there.  Anything else runs on to the verdict.
 */
#ifndef KINJECT_CONVERGE_H
#define KINJECT_CONVERGE_H

#include <stddef.h>
#include <stdint.h>
#include "kinject.h"
#include "case.h"

struct converge;

/* The contexts of a run when the last step's context resumed. */
struct converge_live {
	uint64_t rsp;                       /* the context that resumed */
	int cpl;
	uint64_t top_of_stack;              /* percpu: the current task's kernel stack top */
	uint64_t outer_rsp[CASE_MAX_STEPS]; /* contexts still interrupted */
	unsigned nouter;
};

/* Finds the layout block of guest `g` and checks, decoding the kernel's
 * text, which of the statistics it declares the code only adds to.  NULL
 * with vmm__error() on failure (then cases never end early). */
struct converge *converge__open(struct guest *g);
void converge__close(struct converge *cv);
/* Why some statistics are not exempt ("" if all are). */
const char *converge__stats_note(const struct converge *cv);

/* 0: the machine equals checkpoint `ckpt` but for dead memory; 1: it does
 * not (why says where first); -1: host error (vmm__error()). */
int converge__check(struct converge *cv, const struct vm_snapshot *ckpt,
		    const struct converge_live *l, char *why, size_t len);

#endif /* KINJECT_CONVERGE_H */
