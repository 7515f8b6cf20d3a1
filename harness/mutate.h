/* SPDX-License-Identifier: MIT */
/*
 * Mutation testing of the oracles: generate small, deliberate bugs in the
 * guest's entry text (as case-file patches), run cases against each mutant
 * and report which oracle killed it, or why it survived.
 *
 * Mutants are generated, never listed by hand: the entry text is decoded
 * with capstone (analysis.h, through the entry map) and each class looks for
 * its instruction pattern, using the variant's labels (docs/variants.md)
 * only where a class needs to know which code path it is on.  docs/mutate.md
 * describes the classes and the site patterns.
 *
 * Errors: functions return 0 or -1 with one line in vmm__error().
 */
#ifndef KINJECT_MUTATE_H
#define KINJECT_MUTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "case.h"
#include "engine.h"
#include "analysis.h"

enum mutant_class {
	MUT_SWAPGS,          /* a swapgs -> a NOP of the same length */
	MUT_CR3,             /* a mov to %cr3 -> NOPs */
	MUT_ESPFIX,          /* a jcc to the espfix return -> NOPs (falls through) */
	MUT_PREEMPT_IF,      /* the saved-IF test in the return-to-kernel decision */
	MUT_RESCHED,         /* the exit-to-user loop's re-check -> straight out */
	MUT_IRQSTACK,        /* IRQ-stack in-use mark moved after the RSP switch */
	MUT_PARANOID_CS,     /* paranoid entry trusts the saved CS, not the GS MSR */
	MUT_REGS,            /* a GPR save or restore of the frame -> NOPs */
	MUT_FLAGS,           /* a CLD of an IDT entry -> NOP */
	MUT_NCLASSES
};

#define MUTANT_MAX_PATCHES 4
#define MUTANT_NAME_MAX    96

struct mutant {
	char name[MUTANT_NAME_MAX];      /* "swapgs-error_entry+0x9": file-name safe */
	enum mutant_class cls;
	uint64_t site;                   /* first byte changed */
	char site_desc[ENGINE_TEXT_MAX]; /* "error_entry+0x9: swapgs" (unmutated) */
	char what[ENGINE_TEXT_MAX];      /* one line: what the mutation does */
	/* A stop that reaches the mutated code (in the mutant's own
	 * addresses), with its scenario: the site-targeted case. 0: none. */
	uint64_t target_stop;
	size_t npatches;
	struct case_patch patches[MUTANT_MAX_PATCHES];
};

struct mutant_set {
	struct mutant *m;
	size_t n;
	size_t per_class[MUT_NCLASSES];
};

const char *mutate__class_name(enum mutant_class c);
/* One sentence: what the class does to the code. */
const char *mutate__class_summary(enum mutant_class c);

/* Finds every site of every class in the decoded entry text `code` of a
 * guest with symbol table `t`.  A class whose pattern or label is missing
 * simply has no mutants.  Returns 0 or -1 (memory). */
int mutate__generate(const struct code_range *code, const struct symtab *t,
		     struct mutant_set *out);
/* Boots the guest (elf, or the built one of `variant`) to READY, builds
 * its entry map and generates from it. */
int mutate__generate_guest(const char *elf, const char *variant, struct mutant_set *out);
void mutate__free(struct mutant_set *s);

/* ---- running ---------------------------------------------------------------- */
enum mutant_status { MUT_KILLED, MUT_SURVIVED, MUT_NOT_REACHED, MUT_ERROR };
const char *mutate__status_name(enum mutant_status s);

struct mutate_opts {
	const char *elf;                 /* NULL: the built guest of the variant */
	const char *variant;             /* NULL: linux64 */
	const char *cases_dir;           /* regression cases (NULL: none) */
	const char *outdir;              /* where killing cases are written (NULL: nowhere) */
	FILE *log;                       /* progress lines, or NULL */
};

struct mutant_result {
	enum mutant_status status;
	char oracle[CASE_ORACLE_MAX];    /* killed: the first finding's oracle */
	char oracles[128];               /* killed: every oracle that fired, "frame,fatal" */
	char killer[CASE_NAME_MAX];      /* killed: the case's name */
	char case_path[512];             /* killed: the case file written ("" if none) */
	struct finding first;            /* killed: the first finding */
	char reason[ENGINE_TEXT_MAX * 2];/* survived / not reached / error: why */
	unsigned cases_run;
	uint64_t usec;
};

struct mutate_ctx;

/* A context for one guest: the built-in cases and the regression cases.
 * NULL with vmm__error() on failure. */
struct mutate_ctx *mutate__open(const struct mutate_opts *o);
void mutate__close(struct mutate_ctx *x);

/* The control: every built-in and regression case on the unmutated guest.
 * Returns 0 when every case that ran has no finding (skips allowed), 1 with
 * `why` when one failed, -1 on a host error. */
int mutate__control(struct mutate_ctx *x, unsigned *ran, unsigned *skipped,
		    char *why, size_t len);

/* Runs cases against one mutant until one kills it; otherwise checks
 * whether the mutated code was reached at all.  Always fills `r`. */
void mutate__run(struct mutate_ctx *x, const struct mutant *m, struct mutant_result *r);


/* The case template list (built-in drivers), for docs and tests. */
size_t mutate__ndrivers(void);
const char *mutate__driver_name(size_t i);

#endif /* KINJECT_MUTATE_H */
