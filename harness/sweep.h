/* SPDX-License-Identifier: MIT */
/*
 * The sweep: every instruction boundary of the entry/exit text, every
 * chosen event, every scenario -- injected and judged (docs/sweep.md).
 *
 * A sweep runs in two phases:
 *
 *   plan      once per scenario, a discovery guest (booted, patched,
 *             snapshotted at READY) runs the scenario without injection
 *             (the baseline) and then each "driver" -- the scenario on its
 *             own, or a first step that makes the guest pass through entry
 *             code -- single-stepped, counting arrivals at each boundary of
 *             the entry text and noting at each arrival which of the
 *             chosen events the CPU could take there.  Each (driver,
 *             boundary, hit, event) becomes one case; a case whose event
 *             the CPU cannot take at that arrival is known SKIP
 *             ("architecturally impossible") without running it.
 *   run       worker processes (one engine session per scenario each,
 *             never re-booted) run the remaining cases with
 *             engine__run_case and send the results back through pipes;
 *             the parent reports, writes each failure as a case file, and
 *             keeps a watchdog on every worker.
 *
 * Errors: functions return 0 or -1 with one line in vmm__error().
 */
#ifndef KINJECT_SWEEP_H
#define KINJECT_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "case.h"
#include "engine.h"

#define SWEEP_MAX_EVENTS     16
#define SWEEP_MAX_SCENARIOS  16
#define SWEEP_EVENT_NAME_MAX 48
/* `--iters` by default: one iteration per scenario reaches every boundary
 * the guest's own counts reach (docs/sweep.md has the measurements). */
#define SWEEP_DEFAULT_ITERS  1

/* One event of --events: its spelling and what a case injects. */
struct sweep_event {
	char name[SWEEP_EVENT_NAME_MAX];   /* "irq:0xff", "pf:0x0:0xdead000" */
	struct case_event ev;
};

/* Parses "irq,nmi,pf:0x4,gp" (see docs/sweep.md).  0, or -1 with the
 * offending word in vmm__error(). */
int sweep__parse_events(const char *list, struct sweep_event *out, size_t max, size_t *n);

struct sweep_opts {
	const char *variant;               /* NULL: linux64 */
	const char *elf;                   /* NULL: the built guest of the variant */
	const char *scenarios[SWEEP_MAX_SCENARIOS];
	size_t nscenarios;                 /* 0: every known scenario */
	struct sweep_event events[SWEEP_MAX_EVENTS];
	size_t nevents;                    /* 0: irq, nmi */
	size_t npatches;
	struct case_patch patches[CASE_MAX_PATCHES];
	bool trace;                        /* mode trace: single-stepping oracles */
	unsigned jobs;                     /* worker processes, >= 1 */
	unsigned hits;                     /* cases for arrivals 1..hits (default 1) */
	unsigned iters;                    /* guest option iters=N of every case (0: the
					    * guest's own; the command's default is
					    * SWEEP_DEFAULT_ITERS) */
	uint64_t limit;                    /* run at most this many cases (0: all), spread evenly */
	bool run_impossible;               /* run cases known impossible through the engine too */
	uint64_t max_steps;                /* discovery: single-steps per driver (0: default) */
	unsigned case_timeout_s;           /* a worker silent this long is killed (0: default) */
	uint64_t tail_exits;               /* engine tail mode (engine_opts), 0: to the verdict */
	bool no_converge;                  /* every case from READY to the verdict: no
					    * chaining, no ending at a converged resume */
	const char *out_dir;               /* failure case files (NULL: none written) */
	FILE *json;                        /* JSON lines, or NULL */
	const char *junit;                 /* JUnit XML file, or NULL */
	bool progress;                     /* progress bar on stderr */
	FILE *log;                         /* plan notes and the summary table, or NULL */
};

/* What one sweep found, for the summary and the exit code. */
#define SWEEP_MAX_ORACLES 16
struct sweep_totals {
	uint64_t boundaries;               /* instruction boundaries of the entry text */
	uint64_t reached;                  /* ... that some driver reaches */
	uint64_t not_reached;
	uint64_t planned;                  /* cases in the plan (before --limit) */
	uint64_t cases;                    /* cases judged (after --limit) */
	uint64_t run;                      /* ... of which went through the engine */
	uint64_t passed, failed, errors;
	uint64_t skipped_impossible;       /* the event cannot be taken there */
	uint64_t skipped_unreached;        /* the engine did not reach the state */
	uint64_t skipped_other;
	size_t noracles;
	struct { char name[CASE_ORACLE_MAX]; uint64_t cases; } oracle[SWEEP_MAX_ORACLES];
	uint64_t baseline_failures;        /* scenarios that fail without injection */
	uint64_t drivers_failed;           /* drivers whose own first step does not pass */
	uint64_t files_written;
	double plan_sec, run_sec, wall_sec;
	double cases_per_sec;              /* cases through the engine / run_sec */
	uint64_t exits;                    /* KVM exits of the engine runs */
	uint64_t chained;                  /* runs that started at the previous case's stop */
	uint64_t converged;                /* runs that ended at a converged resume */
};

/* The whole sweep.  Returns 0 (totals filled: the caller decides the exit
 * code), or -1 on a setup error (no guest, no KVM, bad patch...). */
int sweep__run(const struct sweep_opts *o, struct sweep_totals *t);

/* Exit code of a finished sweep: 0 no failure, no error, no failing
 * baseline; 1 otherwise. */
int sweep__exit_code(const struct sweep_totals *t);

/* What sweep__bench measured, per case that went through the engine. */
struct sweep_bench {
	double cases_per_sec;
	double mean_steps;                 /* instructions single-stepped (trace mode) */
	double mean_exits;                 /* KVM exits */
	double mean_run_us;                /* time inside KVM_RUN (guest code and exits) */
	unsigned cases;                    /* cases measured */
	unsigned chained;                  /* ... that started at the previous case's stop */
	unsigned converged;                /* ... that ended at their resume */
	/* KVM's own counters (vcpu__kvm_stat), per case; have_kvm_stats
	 * false where KVM does not keep them. */
	bool have_kvm_stats;
	double mean_kvm_exits;             /* exits KVM handled, the VMM's included */
	double mean_emulated;              /* guest instructions KVM emulated */
};

/* For `kinject bench`: plans `scenario` of `variant` with `events`
 * (NULL: irq,nmi) and the sweep's default guest options (iters), then runs
 * the first `ncases` (0: all) cases that go through the engine, in plan
 * order, in-process on one session, as a sweep worker does (chained,
 * converging), and measures them alone (not the plan, not the boot).  0,
 * or -1 (vmm__error). */
int sweep__bench(const char *variant, const char *scenario, const char *events, bool trace,
		 unsigned ncases, struct sweep_bench *b);

#endif /* KINJECT_SWEEP_H */
