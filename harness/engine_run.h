/* SPDX-License-Identifier: MIT */
/*
 * The engine's inside, shared by its three files: engine.c (sessions, the
 * run of a case, the hooks), engine_trace.c (trace mode: single-stepping,
 * guards, gaps) and engine_ckpt.c (checkpoints, chaining, convergence).
 * Not for the rest of the harness: engine.h is the engine's interface.
 */
#ifndef KINJECT_ENGINE_RUN_H
#define KINJECT_ENGINE_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include "engine.h"
#include "entrymap.h"
#include "oracle.h"
#include "converge.h"

#define MSR_KERNEL_GS_BASE 0xc0000102u
#define IDT_VECTOR_DF 8
#define DCACHE_SIZE 4096                      /* decoded instructions outside the entry text */
#define ENGINE_DEADLINE_MS 10000              /* wall clock per run, plus ~ENGINE_STEP_US per step */
#define ENGINE_STEP_US 100

enum { SLOT_STOP, SLOT_RESUME, SLOT_DECIDE, SLOT_SWITCH };
#define ORACLE_MAX 16
#define ENGINE_MAX_GUARDS 64
#define ENGINE_LOST_STEP_RUNS 4                /* runs of a trace that loses steps */
#define USER_HALF_END 0x0000800000000000ULL   /* end of the canonical lower half */

struct session {
	struct engine_opts opts;
	char elf[4096];
	char variant[CASE_VARIANT_MAX];
	char scenario[CASE_SCENARIO_MAX];
	char guest[CASE_GUEST_MAX];          /* the case's guest options, on the command line */
	size_t npatches;
	struct case_patch patches[CASE_MAX_PATCHES];
	char first_case[CASE_NAME_MAX];      /* names patch errors */

	struct guest g;
	struct vm_snapshot *snap;
	struct code_range entry;
	const volatile uint8_t *percpu;      /* host pointer into guest RAM */
	uint64_t irq_lo, irq_hi;             /* IRQ stack [lo, hi) */
	uint64_t do_irq, do_nmi, do_exception, do_syscall;
	uint64_t switch_to;                  /* variant_switch_to, 0 if none */
	uint64_t decide;                     /* return-to-kernel decision, 0 if unknown */
	uint64_t preempt_path;               /* ... and its preempting branch, 0 if unknown */

	struct verdict baseline;
	uint64_t baseline_exits;
	uint64_t default_budget;

	/* The checkpoint at the last stop of the latest case (engine_opts
	 * converge/chain): the machine before the injection, the run's
	 * bookkeeping then (fast mode), and which stop it is. */
	struct vm_snapshot *ckpt;
	bool ckpt_valid;
	char ckpt_key[ENGINE_KEY_MAX];
	struct run *ckpt_run;                /* the run then (if nothing was found yet) */
	bool ckpt_run_ok;                    /* ... and it may be continued */
	uint64_t ckpt_exits;                 /* exits the run had used by then */
	struct converge *cv;                 /* NULL: cases never end early */
	/* Step lists (engine__case_key) seen to pass with nothing found, the
	 * newest last: what a converged case's rest of the run is. */
	char (*passed)[ENGINE_KEY_MAX];
	unsigned npassed;

	/* Trace mode, built on first use. */
	int map_state;                       /* 0 not built, 1 built, -1 failed */
	uint64_t guards[ENGINE_MAX_GUARDS];  /* where the host lost a step trap */
	unsigned nguards;
	char map_error[200];
	struct entrymap map;
	struct dcache_ent *dcache;           /* kernel code outside the entry text */
};

struct dcache_ent {
	bool valid;
	struct insn in;
};

/* One run of one case. */
struct run {
	struct session *s;
	struct kcase *c;
	struct case_result *r;
	struct oracle_ctx x;
	uint64_t start_exits, budget;
	bool searching;                      /* slot STOP is a stop, not the handler */
	unsigned step;                       /* step being searched */
	uint64_t hits;                       /* matching arrivals in this search */
	uint64_t arrivals;                   /* all arrivals in this search */
	bool found;
	int resume_top;                      /* step whose resume slot 1 watches, -1 */
	uint64_t handler;                    /* armed handler address (0: none) */
	bool other_pending;                  /* an event besides ours was queued at the stop */
	bool only_determinism;               /* run 2: only that oracle's hooks */
	const struct oracle *orc[ORACLE_MAX];
	size_t norc;
	struct verdict end;
	bool ended;
	uint64_t tail_end;                   /* tail mode: exit count that ends the run, 0 */
	bool ckpt_taken;                     /* s->ckpt is this run's last stop */
	bool chained;                        /* this run started from s->ckpt */
	uint64_t steps_base;                 /* ... with this many steps already counted */
	const struct engine_chain *chain;    /* the caller's chaining hint, or NULL */

	/* Trace mode. */
	bool trace;                          /* this run single-steps after injections */
	bool stepping;                       /* single-step on, slots kept in software */
	bool deliver_pending;                /* run to the injected event's gate first */
	/* Every context resumed, the last in the kernel, of a task that came
	 * from ring 3: stepping goes on to its return there (trace__before_run). */
	bool until_user;
	bool bp_on[VM_MAX_BREAKPOINTS];      /* the slots as the hooks armed them */
	uint64_t bp_addr[VM_MAX_BREAKPOINTS];
	uint64_t steps, budget_steps;
	unsigned guard_pair;                 /* slots 0-1 or 2-3 guard this step (see step_guard) */
	uint64_t expect[2];                  /* an unguarded step must land on one of these */
	unsigned nexpect;                    /* ... (0: not checked) */
	uint64_t expect_from;                /* the instruction stepped */
	bool lost_step;                      /* the host lost a trap: run the case again */
	unsigned last_injected;              /* step number injected at the next at_step, 0: none */
	bool to_user;                        /* the last step was a return to ring 3 */
	const char *gap;                     /* printed with the next step */
	struct insn scratch;                 /* decoded user code (not cached) */
};

/* The oracles this run calls, in registry order: trace-only ones only in
 * trace mode, and only the determinism oracle in a determinism rerun. */
#define FOR_ORACLES(R, o)                                  \
	for (size_t i_ = 0; i_ < (R)->norc; i_++)          \
		for (const struct oracle *o = (R)->orc[i_]; o; o = NULL)

/* engine.c */
void run__result_set(struct case_result *r, enum verdict_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void run__bp_rearm(struct run *R);
bool run__bp_at(const struct run *R, uint64_t addr);
void run__step_on(struct run *R);
void run__step_off(struct run *R);
/* A timeline line for --verbose: what the engine saw, when. */
void run__line(struct run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void run__on_breakpoint(struct run *R, const struct vm_exit *e);

/* engine_ckpt.c */
int ckpt__take(struct run *R);
bool ckpt__chain_start(struct run *R);
void ckpt__converge_try(struct run *R);
void ckpt__note_passed(struct session *s, const struct kcase *c, bool trace);

/* engine_trace.c */
int trace__prepare(struct run *R);
void trace__on_step(struct run *R, bool dispatch);
void trace__step_check(struct run *R, uint64_t rip);
int trace__before_run(struct run *R, int *host_err);

#endif /* KINJECT_ENGINE_RUN_H */
