/* SPDX-License-Identifier: MIT */
/*
 * Sweep output: JSON lines, JUnit XML, the progress bar and the summary
 * table.  Pure formatting: nothing here runs a guest or decides a verdict.
 */
#ifndef KINJECT_REPORT_H
#define KINJECT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "engine.h"
#include "sweep.h"

/* One judged case, as reported. */
struct report_case {
	uint64_t id;                       /* index in the plan */
	const char *scenario;
	const char *driver;                /* "own", "kthread_loop/nmi" ... */
	const char *where;                 /* the boundary, "sym+0x12" ("-": driver check) */
	uint64_t addr;
	uint64_t hit;
	const char *event;                 /* as in --events */
	enum verdict_kind verdict;
	const char *kind;                  /* "pass", "fail", "impossible", "unreached", "skip", "error" */
	const char *reason;
	const struct verdict *guest;       /* how the guest run ended, NULL if not run */
	const struct finding *findings;
	size_t nfindings, dropped;
	uint64_t exits, usec;
	bool ran;                          /* went through the engine */
	const char *case_file;             /* failure written here, or NULL */
	const char *text;                  /* the case (steps), one line */
};

/* Boundaries no driver reaches, grouped by symbol and reason. */
struct report_group {
	char symbol[96];
	char reason[200];
	uint64_t first;                    /* lowest address of the group */
	uint64_t count;
};

/* JSON string with every control character, quote and backslash escaped. */
void report__json_string(FILE *f, const char *s);
void report__json_case(FILE *f, const struct report_case *c);
void report__json_summary(FILE *f, const struct sweep_totals *t,
			  const struct report_group *g, size_t ng);

/* JUnit: cases are kept per scenario (one <testsuite> each) and written at
 * report__junit_write. */
struct report_junit;
struct report_junit *report__junit_new(void);
int report__junit_add(struct report_junit *j, const struct report_case *c);
/* 0, or -1 with the file named in vmm__error(). */
int report__junit_write(struct report_junit *j, const char *path, double wall_sec);
void report__junit_free(struct report_junit *j);

/* "\r[#####.....] 123/456  2 failed  41.0 cases/s  ETA 9s" on stderr. */
void report__progress(uint64_t done, uint64_t total, uint64_t failed, double rate);
void report__progress_end(void);

/* The summary table. */
void report__summary(FILE *f, const struct sweep_totals *t, const struct report_group *g,
		     size_t ng);

#endif /* KINJECT_REPORT_H */
