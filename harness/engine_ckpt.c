/* SPDX-License-Identifier: MIT */
/*
 * The engine's checkpoints (harness/engine_run.h): the machine at a case's
 * last stop, kept to start the next case there (chaining) and to compare
 * the machine with when that step's context resumes (convergence,
 * harness/converge.h); and the runs seen to pass that a converged case's
 * rest of the run is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine_run.h"

/* ---- checkpoints and convergence ------------------------------------------------ */

#define ENGINE_MAX_PASSED 64

/* The first n steps of c, stops by address, and the mode (a run judged in
 * fast mode says nothing of the trace oracles): what identifies a run that
 * far. */
static void steps_key(const struct kcase *c, unsigned n, bool trace, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "%s:", trace ? "trace" : "fast");

	for (unsigned i = 0; i < n && off < len; i++) {
		char st[256];
		off += (size_t)snprintf(buf + off, len - off, "%s%s @0x%llx", i ? " | " : "",
					case__step_str(&c->steps[i], st, sizeof(st)),
					(unsigned long long)c->steps[i].stop.addr);
	}
}

/* The checkpoint's name: the steps before the last, and the last stop. */
static void ckpt_key(const struct kcase *c, bool trace, uint64_t addr, uint32_t hit, char *buf,
		     size_t len)
{
	size_t off;

	steps_key(c, c->nsteps - 1, trace, buf, len);
	off = strlen(buf);
	snprintf(buf + off, len - off, " || 0x%llx#%u", (unsigned long long)addr, hit);
}

/* The run without the last step was seen to pass, nothing found.  A key
 * found moves to the newest end: the runs cases converge into stay. */
static bool prefix_passed(const struct run *R)
{
	struct session *s = R->s;
	unsigned last = R->c->nsteps - 1;
	char key[ENGINE_KEY_MAX];

	if (last == 0)
		return s->baseline.kind == VERDICT_PASS;
	steps_key(R->c, last, R->trace, key, sizeof(key));
	for (unsigned i = 0; i < s->npassed; i++)
		if (!strcmp(s->passed[i], key)) {
			memmove(s->passed + i, s->passed + i + 1,
				(s->npassed - i - 1) * sizeof(*s->passed));
			memcpy(s->passed[s->npassed - 1], key, sizeof(key));
			return true;
		}
	return false;
}

void ckpt__note_passed(struct session *s, const struct kcase *c, bool trace)
{
	if (!s->passed && !(s->passed = calloc(ENGINE_MAX_PASSED, sizeof(*s->passed))))
		return;
	if (s->npassed == ENGINE_MAX_PASSED) {
		memmove(s->passed, s->passed + 1, (ENGINE_MAX_PASSED - 1) * sizeof(*s->passed));
		s->npassed--;
	}
	steps_key(c, c->nsteps, trace, s->passed[s->npassed++], ENGINE_KEY_MAX);
}

/* At the last step's stop, before its injection: the machine (for the
 * convergence check, and for the next case to start here) and, with
 * nothing found so far, the run's bookkeeping. */
int ckpt__take(struct run *R)
{
	struct session *s = R->s;
	struct vm *vm = s->g.vm;
	const struct case_step *sp = &R->c->steps[R->c->nsteps - 1];

	if (!s->ckpt && !(s->ckpt = snap__clone(vm, s->snap)))
		return -1;
	s->ckpt_valid = false;
	if (snap__update(vm, s->ckpt))
		return -1;
	s->ckpt_valid = true;
	R->ckpt_taken = true;
	ckpt_key(R->c, R->trace, sp->stop.addr, (uint32_t)sp->stop.hit, s->ckpt_key,
		 sizeof(s->ckpt_key));
	s->ckpt_run_ok = false;
	if (!R->r->nfindings && !R->r->dropped) {
		if (!s->ckpt_run && !(s->ckpt_run = malloc(sizeof(*R))))
			return 0;
		*s->ckpt_run = *R;
		s->ckpt_exits = vm__exit_count(vm) - R->start_exits;
		s->ckpt_run_ok = true;
	}
	return 0;
}

/* Chaining: the checkpoint is this case's previous stop: go on from there
 * with the run's bookkeeping as it was.  False: start from READY. */
bool ckpt__chain_start(struct run *R)
{
	struct session *s = R->s;
	struct kcase *c = R->c;
	struct case_result *r = R->r;
	const struct engine_chain *ch = R->chain;
	char key[ENGINE_KEY_MAX];

	if (!ch || !s->ckpt_valid || !s->ckpt_run_ok)
		return false;
	ckpt_key(c, R->trace, ch->from_addr, ch->from_hit, key, sizeof(key));
	if (strcmp(key, s->ckpt_key) || snap__restore(s->g.vm, s->ckpt))
		return false;
	*R = *s->ckpt_run;
	R->c = c;
	R->r = r;
	R->x.c = c;
	R->x.r = r;
	R->chain = ch;
	R->chained = true;
	R->ckpt_taken = false;
	R->start_exits = vm__exit_count(s->g.vm) - s->ckpt_exits;
	r->steps_done = R->x.nsteps;
	r->chained = true;
	R->steps_base = R->steps;
	R->nexpect = 0;
	/* Trace mode: stepping on where it was (step_guard arms the guards
	 * before the next step); else the slots as they were. */
	if (R->stepping)
		dbg__set_singlestep(s->g.vm, true);
	else
		run__bp_rearm(R);
	return true;
}

/* The last step's context is back.  If the machine is as it was at that
 * stop (harness/converge.h), the rest of the run is the run without this
 * step, which passed: end here. */
void ckpt__converge_try(struct run *R)
{
	struct vm *vm = R->s->g.vm;
	unsigned last = oracle__last(&R->x);
	struct converge_live lv = {
		.rsp = vcpu__regs(vm)->rsp, .cpl = vcpu__cpl(vm),
		.top_of_stack = *(const volatile uint64_t *)(R->s->percpu + KINJECT_PCPU_TOP_OF_STACK),
	};
	char why[ENGINE_TEXT_MAX];

	if (!prefix_passed(R)) {
		run__line(R, "not converged: the run without step %u was not seen to pass", last + 1);
		return;
	}
	for (unsigned i = 0; i < last; i++)
		if (!R->x.resumed[i])
			lv.outer_rsp[lv.nouter++] = R->x.stop[i].regs.rsp;
	int rc = converge__check(R->s->cv, R->s->ckpt, &lv, why, sizeof(why));
	if (rc) {
		run__line(R, "not converged (%s): on to the verdict", rc < 0 ? vmm__error() : why);
		return;
	}
	verdict__set(&R->end, VERDICT_PASS, "converged",
		     "step %u's context resumed with the machine as at its stop (dead stack and "
		     "statistics aside): the rest is the run without it, which passed", last + 1);
	R->ended = true;
	R->r->converged = true;
	run__line(R, "converged: the machine is as at step %u's stop", last + 1);
}
