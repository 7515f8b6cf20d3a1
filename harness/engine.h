/* SPDX-License-Identifier: MIT */
/*
 * The case engine: runs case files (harness/case.h) against a booted guest
 * and judges them with the oracles (harness/oracle.h).
 *
 * A session is one guest booted to READY for one (ELF, variant, scenario,
 * guest options, patches) tuple: patched, snapshotted, with its layout
 * block, symbols and decoded entry text kept for every case run on it.
 * The sweep runs thousands of cases per session, so a case costs one
 * snapshot restore, a few breakpoint changes and the guest's own run;
 * nothing is booted, decoded or looked up again.
 *
 * Running a case (engine__run_case): restore; for each step arm a hardware
 * breakpoint at its stop address, count the arrivals whose predicates hold,
 * capture the interrupted state, check that the event can be delivered now
 * (unless forced), inject; then watch the outcome with the four hardware
 * breakpoints (see engine.c for the slot plan) up to the guest's verdict
 * (in tail mode: a few exits past the last resume; converging: the last
 * step's resume), feeding the oracles.  Trace mode is engine_trace.c, the
 * checkpoints engine_ckpt.c, what the three share engine_run.h.
 * Errors of the host or the case are ERROR verdicts; whatever the guest
 * does (crash, hang, oops) is judged, never fatal.
 */
#ifndef KINJECT_ENGINE_H
#define KINJECT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "kinject.h"
#include "case.h"
#include "analysis.h"
#include "window.h"

#define ENGINE_MAX_FINDINGS 32
#define ENGINE_TEXT_MAX     192
#define ENGINE_KEY_MAX      1024

/* One thing an oracle saw go wrong.  Every field is one line of text. */
struct finding {
	char oracle[CASE_ORACLE_MAX];
	uint64_t addr;                    /* where (guest RIP), 0 if none */
	char where[ENGINE_TEXT_MAX];      /* "sym+0x12: movq %rsp, %gs:0x18" */
	char expected[ENGINE_TEXT_MAX];
	char actual[ENGINE_TEXT_MAX];
};

/* Prints one finding as four lines (oracle, where, expected, actual), each
 * starting with `prefix` (e.g. "    ", or "#   " inside a case file). */
void finding__print(FILE *f, const struct finding *x, const char *prefix);

/* The CPU state at one stop, before the step's event was injected. */
struct engine_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
	uint64_t kernel_gs_base;          /* MSR_KERNEL_GS_BASE */
	uint64_t current;                 /* percpu.current (the task) */
	int cpl;
	bool ss16;                        /* 16-bit SS at CPL 3 */
	const struct insn *insn;          /* the interrupted instruction, if in entry text */
	/* When that instruction is an IRET: the frame it is returning to
	 * (rip, cs, rflags, rsp, ss), which a fault there may legitimately
	 * report instead (a bad IRET becomes a fault of the target context). */
	bool iret_frame_ok;
	uint64_t iret_frame[5];
};

struct case_result {
	enum verdict_kind verdict;        /* after the case's `expect` */
	enum verdict_kind observed;       /* before it: FAIL iff findings */
	char reason[ENGINE_TEXT_MAX * 2]; /* SKIP/ERROR reason, or a summary */
	struct verdict guest;             /* how the guest run ended */
	size_t nfindings;
	size_t dropped;                   /* findings beyond ENGINE_MAX_FINDINGS */
	struct finding findings[ENGINE_MAX_FINDINGS];
	unsigned steps_done;              /* events injected */
	uint64_t digest;                  /* vm__digest() at the end of the run; only
					   * with opts.twice (0 otherwise) */
	uint64_t exits;                   /* KVM exits, all runs of the case */
	uint64_t usec;                    /* wall time, all runs of the case */
	uint64_t run_usec;                /* ... of it inside KVM_RUN (guest code, exits) */
	unsigned runs;                    /* 1, or 2 with determinism */
	bool chained;                     /* started from the previous case's checkpoint */
	bool converged;                   /* ended at its resume, converged */
	/* Trace mode (zero otherwise). */
	bool traced;                      /* the run single-stepped */
	uint64_t steps;                   /* instructions single-stepped */
	unsigned gaps;                    /* spans that ran unstepped (ring 3, held IRQs) */
};

/* Trace mode: one instruction about to execute, as `kinject trace` prints
 * it.  Pointers are valid only during the on_step call. */
struct engine_step {
	uint64_t n;                       /* 1, 2, ... since the first injection */
	uint64_t rip;
	int cpl;
	const struct insn *insn;          /* NULL if the bytes could not be read */
	const struct kvm_regs *regs;
	const struct kvm_sregs *sregs;
	struct win_state seen;            /* GS, CR3, stack, IF in map terms (0: fits nothing) */
	const char *gap;                  /* what ran unstepped right before, or NULL */
	const struct finding *findings;   /* raised at this instruction */
	size_t nfindings;
	bool injected;                    /* an event of the case was injected here */
	unsigned step;                    /* ... this step of the case (1-based) */
};

struct engine_opts {
	const char *elf;                  /* NULL: the built guest of the variant */
	bool twice;                       /* run every case twice (determinism) */
	bool trace;                       /* single-step and run the trace oracles */
	uint64_t budget_exits;            /* 0: case budget, else the default */
	/* Tail mode (opt-in): end a run this many exits after every
	 * interrupted context resumed, instead of at the guest's verdict.
	 * Damage that shows only later in the run goes unseen (the fatal
	 * oracle judges nothing then); a context that never resumes still
	 * runs to the verdict.  0: every run goes to the verdict. */
	uint64_t tail_exits;
	/* End a run when the last step's context resumes and the machine has
	 * converged back to its state at that stop (harness/converge.h), if
	 * the engine has seen the rest of that run pass: the case without
	 * its last step (or the scenario alone).  Sound, unlike tail mode;
	 * off with `twice` (the determinism oracle needs the final state). */
	bool converge;
	FILE *debug;                      /* oracle notes ("does not apply"), or NULL */
	/* Trace mode. */
	uint64_t budget_steps;            /* 0: the case's, else ENGINE_DEFAULT_STEPS */
	/* Called once per single-stepped instruction, before it executes,
	 * after the oracles judged it (kinject trace prints it). */
	void (*on_step)(void *arg, const struct engine_step *st);
	void *step_arg;
};

struct session;

/* Boots the guest of (opts->elf or the variant's), scenario, guest options
 * (on its command line) and patches of case `c` (its other fields are
 * ignored), to READY; applies the patches; snapshots; decodes the entry
 * text; runs the scenario once without any injection as the baseline (its
 * exits set the default budget).  NULL on failure with one line in
 * vmm__error(). */
struct session *engine__open(const struct engine_opts *opts, const struct kcase *c);
void engine__close(struct session *s);
/* True if case `c` runs on this session (same variant, scenario, guest
 * options, patches). */
bool engine__matches(const struct session *s, const struct kcase *c);
/* The baseline: how the scenario ends with no injection, and its cost. */
const struct verdict *engine__baseline(const struct session *s, uint64_t *exits);
const struct symtab *engine__symtab(const struct session *s);
/* The session's VM (benchmarks read KVM's counters of it). */
struct vm *engine__vm(const struct session *s);

/* Runs one case (resolving its symbols on the session's guest).  Always
 * fills `r`; returns 0, or -1 on a host failure (r->verdict is ERROR). */
int engine__run_case(struct session *s, struct kcase *c, struct case_result *r);

/* Chaining: a case whose steps but the last are those of the
 * previous case run, and whose last stop comes later in the same
 * uninjected run than the previous case's last stop, starts from the
 * checkpoint at that stop instead of from READY.  Only the caller knows
 * the order of arrivals (the sweep's plan single-stepped the run), so it
 * says so: */
struct engine_chain {
	uint64_t from_addr;               /* the previous case's last stop ... */
	uint32_t from_hit;                /* ... and its hit count */
	/* Arrivals at this case's last stop address that match its
	 * predicates, up to and including the arrival at that stop. */
	uint32_t before;
};
/* engine__run_case, from the checkpoint if `ch` holds (else from READY,
 * as without it).  r->chained tells which. */
int engine__run_case_from(struct session *s, struct kcase *c, const struct engine_chain *ch,
			  struct case_result *r);

/* Default exit budget of a case: this many times the baseline, plus slack
 * for breakpoints. */
#define ENGINE_BUDGET_FACTOR 8
#define ENGINE_BUDGET_SLACK  200000ULL
/* Trace mode: single-steps allowed per case run (`budget steps N`); past
 * it the run is a hang (fatal oracle). */
#define ENGINE_DEFAULT_STEPS 200000ULL

#endif /* KINJECT_ENGINE_H */
