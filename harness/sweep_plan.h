/* SPDX-License-Identifier: MIT */
/*
 * The sweep's inside, shared by sweep.c (planning in the parent, workers,
 * reporting, bench) and sweep_discover.c (discovery: a child single-steps
 * each driver of one scenario and sends back the plan's items).  Not for
 * the rest of the harness: sweep.h is the sweep's interface.
 */
#ifndef KINJECT_SWEEP_PLAN_H
#define KINJECT_SWEEP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sweep.h"

#define SWEEP_DEFAULT_IRQ   KINJECT_VEC_SPURIOUS   /* counted and ignored by the guest */
#define SWEEP_DEFAULT_CR2   0x0dead000ULL           /* USER_UNMAPPED_VA: never mapped */
#define OWN_MAX_STEPS       400000ULL               /* scenario on its own, from READY */
#define STEP_MAX_STEPS      50000ULL                /* after a driver's first step */
#define MAX_HITS            8
#define WORKER_CHUNK        64                      /* consecutive cases per worker turn */
#define MAX_DRIVERS         8
#define WHERE_MAX           96
#define WHY_MAX             160
#define DISC_DEADLINE_MS    120000ULL
#define DISC_TIMEOUT_S      900
#define CASE_TIMEOUT_S      120
#define DRIVER_CHECK        SWEEP_MAX_EVENTS        /* plan_item.event of a driver check */
#define WIRE_MAGIC          0x4b535750u             /* "PWSK" */

/* ---- the plan ---------------------------------------------------------------------- */

struct plan_driver {
	char name[64];                 /* "own", "kthread_loop/nmi" */
	bool has_step;
	struct case_step step;
	bool usable;
	char why[WHY_MAX];             /* why not usable */
	uint64_t steps;                /* single-steps traced */
	bool truncated;                /* the step limit ended the trace */
	uint64_t visited;              /* distinct boundaries */
	char end[WHY_MAX];             /* how the trace ended */
};

struct plan_scen {
	char name[CASE_SCENARIO_MAX];
	int status;                    /* 0, or -1: error[] says why */
	char error[256];
	struct verdict baseline;
	uint64_t baseline_exits;
	size_t ndrivers;
	struct plan_driver drivers[MAX_DRIVERS];
	double sec;
};

struct plan_bound {
	uint64_t addr;
	char where[WHERE_MAX];
	char mnemonic[32];
	bool padding;                  /* nop/int3 after an unconditional transfer */
	bool reached;
};

enum { PRE_RUN, PRE_IMPOSSIBLE, PRE_LIMITED };

struct plan_item {
	uint16_t scen, driver, event;  /* event DRIVER_CHECK: the driver's step alone */
	uint8_t pre;
	uint32_t hit;
	uint64_t addr;                 /* 0 for a driver check */
	uint64_t ordinal;              /* the arrival's place in the driver's run (1, 2, ...) */
	char where[WHERE_MAX];
	char why[WHY_MAX];             /* PRE_IMPOSSIBLE: the reason */
};

struct plan {
	const struct sweep_opts *o;
	char guest[CASE_GUEST_MAX];    /* guest options of every case: "iters=N" or "" */
	struct sweep_event events[SWEEP_MAX_EVENTS];
	size_t nevents;
	unsigned hits;
	size_t nscen;
	struct plan_scen scen[SWEEP_MAX_SCENARIOS];
	struct plan_bound *bounds;
	size_t nb;
	struct plan_item *items;
	size_t nitems, cap;
};

/* sweep.c */
double sweep__now_sec(void);
/* All of buf to fd (a child's pipe); 0, or -1. */
int sweep__write_all(int fd, const void *buf, size_t len);
/* One word of --events ("irq:0xfd", "pf:0x4", "nmi"...); 0 or -1. */
int sweep__parse_event(const char *word, struct sweep_event *out);

/* sweep_discover.c: scenario si of plan p, in a child, results to fd. */
int sweep__discover(const struct plan *p, size_t si, int fd);

#endif /* KINJECT_SWEEP_PLAN_H */
