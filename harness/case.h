/* SPDX-License-Identifier: MIT */
/*
 * Case files: one reproducible injection experiment as a few lines of text
 * (the format is specified in docs/case-format.md).  A case names the guest
 * variant and scenario, optional guest command-line options and code
 * patches, and one or more steps "stop at STATE ; inject EVENT", each
 * searched after the previous step's event was injected.
 *
 * Errors: functions return 0 or -1 and leave one line in vmm__error();
 * parse errors read "FILE:LINE: expected X, got Y".  The parser never
 * exits, aborts or reads past its input, whatever the input.
 *
 * Symbol expressions ("sym", "sym+0x12", "0xffffffff80001000") are kept as
 * written; case__resolve() turns them into addresses with a guest's symbol
 * table, so a case can be parsed and checked without a guest.
 */
#ifndef KINJECT_CASE_H
#define KINJECT_CASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "vmm.h"

#define CASE_VERSION          3     /* the newest version this code reads and writes */
#define CASE_VERSION_MIN      1     /* the oldest it still reads */
#define CASE_MAX_STEPS        8
#define CASE_MAX_PATCHES      32
#define CASE_MAX_PATCH_BYTES  32
#define CASE_WHERE_MAX        128   /* symbol expression, with its NUL */
#define CASE_TITLE_MAX        160
#define CASE_VARIANT_MAX      16    /* = sizeof(kinject_layout.variant) */
#define CASE_SCENARIO_MAX     32    /* = sizeof(kinject_layout.scenario) */
#define CASE_ORACLE_MAX       32
#define CASE_GUEST_MAX        128   /* guest options "k=v k=v", with its NUL */
#define CASE_GUEST_MAX_OPTS   8     /* the guest keeps 16 options, the harness sets 4 */
#define CASE_NAME_MAX         256

/* Predicates on the CPU state at a stop.  CASE_ANY: not constrained. */
enum case_pred {
	CASE_PRED_CPL,            /* 0 or 3 */
	CASE_PRED_IF,             /* RFLAGS.IF */
	CASE_PRED_NMI_BLOCKED,    /* NMIs blocked (inside an NMI, before its IRET) */
	CASE_PRED_SHADOW,         /* STI or MOV SS interrupt shadow */
	CASE_PRED_IRQ_STACK,      /* RSP on the IRQ stack */
	CASE_PRED_SS16,           /* SS is a 16-bit segment */
	CASE_NPREDS
};
#define CASE_ANY (-1)

struct case_state {
	char where[CASE_WHERE_MAX];   /* as written: sym__resolve() syntax */
	uint64_t addr;                /* set by case__resolve() */
	uint64_t hit;                 /* stop at the hit-th arrival, >= 1 */
	int8_t pred[CASE_NPREDS];     /* CASE_ANY or the required value */
};

struct case_event {
	enum vm_event_kind kind;      /* IRQ, NMI or exception */
	uint8_t vector;               /* IRQ 0-255, exception 0-31 (not 2); NMI: 2 */
	bool has_error_code;          /* always set for vectors 8,10-14,17,21 */
	uint32_t error_code;
	bool has_cr2;                 /* #PF only */
	uint64_t cr2;
	bool has_dr6;                 /* #DB only */
	uint64_t dr6;
	bool force;                   /* deliver whatever the guest state */
};

struct case_step {
	struct case_state stop;
	struct case_event inject;
	unsigned line;                /* source line, for later messages */
};

struct case_patch {
	char where[CASE_WHERE_MAX];
	uint64_t addr;                /* set by case__resolve() */
	uint8_t bytes[CASE_MAX_PATCH_BYTES];
	size_t len;
	unsigned line;
};

enum case_mode { CASE_MODE_DEFAULT, CASE_MODE_TRACE, CASE_MODE_FAST };
enum case_expect { CASE_EXPECT_PASS, CASE_EXPECT_FAIL };

struct kcase {
	char name[CASE_NAME_MAX];     /* file (or given) name, for messages */
	unsigned version;
	char title[CASE_TITLE_MAX];   /* "" if none */
	char variant[CASE_VARIANT_MAX];
	char scenario[CASE_SCENARIO_MAX];
	char guest[CASE_GUEST_MAX];   /* version 3: guest options, one space apart; "" if none */
	size_t npatches;
	struct case_patch patches[CASE_MAX_PATCHES];
	size_t nsteps;
	struct case_step steps[CASE_MAX_STEPS];
	uint64_t budget_exits;        /* 0: the harness default */
	uint64_t budget_steps;        /* 0: the harness default */
	enum case_mode mode;
	enum case_expect expect;
	char oracle[CASE_ORACLE_MAX]; /* expect fail ORACLE; "" = any finding */
};

/* Parse a case.  On error `out` is left cleared (case__free is harmless). */
int case__parse_file(const char *path, struct kcase *out);
int case__parse_string(const char *text, const char *name, struct kcase *out);

/* Writes the canonical form.  The text is parsed back and compared before
 * anything reaches `f`, so what is written always reproduces the case
 * exactly; a case that cannot be written that way (a '#' in the title, a
 * vector out of range...) is an error and nothing is written. */
int case__write(FILE *f, const struct kcase *c);
/* Same, into a NUL-terminated malloc'ed string (*text, caller frees). */
int case__to_string(const struct kcase *c, char **text);

/* Releases what a parsed case holds (today nothing: cases are flat; call it
 * anyway, the struct may grow). */
void case__free(struct kcase *c);

/* A zeroed case with every predicate CASE_ANY, version CASE_VERSION, one
 * unset step; for code that builds cases (the sweep). */
void case__init(struct kcase *c);
void case__init_step(struct case_step *s);

/* Same experiment (ignores name, source lines and resolved addresses). */
bool case__equal(const struct kcase *a, const struct kcase *b);

/* Resolve every step's and patch's symbol expression with the guest's
 * symbol table.  Errors name the case file and line. */
int case__resolve(struct kcase *c, const struct symtab *t);
/* A `--patch WHERE=HEX` command-line option, parsed by the case parser
 * itself (a one-patch case), so its syntax and errors are exactly the
 * `patch` statement's.  0, or -1 with one line in vmm__error(). */
int case__parse_patch(const char *spec, struct case_patch *out);
/* One more --patch option into extra[*n] (at most CASE_MAX_PATCHES).  0, or
 * -1 with one line in vmm__error(). */
int case__parse_patch_option(const char *spec, struct case_patch *extra, size_t *n);
/* Append command-line patches to a parsed case.  0, or -1 with one line
 * naming the case file in vmm__error() when it would hold too many. */
int case__add_patches(struct kcase *c, const struct case_patch *p, size_t n);
/* One stop/patch address: "sym", "sym+OFF", an address, or (version 2)
 * "user:sym+OFF" for a ring-3 label at its user address
 * (KINJECT_USER_TEXT_VA + (sym - __user_text_start), guest ABI). */
int case__resolve_where(const struct symtab *t, const char *where, uint64_t *addr);

/* The injection as the VMM takes it. */
void case__to_vm_event(const struct case_event *e, struct vm_event *out);

/* One step in case syntax ("stop at X hit 1 when cpl=0 ; inject nmi"),
 * and one event ("exception pf error 0x4 cr2 0x1000"). Return buf. */
char *case__step_str(const struct case_step *s, char *buf, size_t len);
char *case__event_str(const struct case_event *e, char *buf, size_t len);

/* Exception names: "pf" -> 14 (-1 if unknown); 14 -> "pf" (NULL if none).
 * Vectors that push an error code: 8, 10-14, 17, 21. */
int case__exception_vector(const char *name);
const char *case__exception_name(unsigned vector);
bool case__vector_has_error_code(unsigned vector);
/* "cpl", "if", ... for enum case_pred. */
const char *case__pred_name(enum case_pred p);

#endif /* KINJECT_CASE_H */
