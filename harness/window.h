/* SPDX-License-Identifier: MIT */
/*
 * The static window map: for every instruction of the entry code, which GS
 * base (user/kernel), which CR3 (user/kernel), which stack and which IF
 * state the CPU can be in when it is about to execute that instruction.
 *
 * Method: a forward worklist dataflow over the control-flow graph, starting
 * at the entry points the caller lists with their initial state.  Each
 * dimension is a *set* of possibilities (a bitmask), merged by union, so
 * the result of an IDT stub reachable from user and kernel mode is honestly
 * "both".  The UNKNOWN bit means "the analysis could not tell" (an
 * unclassified CR3 or RSP write, a POPF) and absorbs everything.
 *
 * Transfer functions:
 *   swapgs          GS user <-> kernel (both stays both, unknown stays)
 *   mov to %cr3     ops->classify_cr3 decides (default: unknown)
 *   wrgsbase/wrmsr  ops->classify_gs decides (default: wrgsbase unknown,
 *                   wrmsr unchanged: most WRMSRs are not MSR_GS_BASE)
 *   cli/sti         IF off/on;  popf: ops->classify_popf or unknown
 *   RSP loads       (mov/lea/and/xchg/pop %rsp/leave) ops->classify_rsp
 *                   decides (default: add/sub/and/lea on RSP itself keep
 *                   the stack, anything else is unknown); push/pop/call
 *                   never change the kind of stack
 *   iret/sysret/sysexit/ud2/far transfers   the path ends
 *   ret             the path returns to the sites of internal calls whose
 *                   callee reaches this ret; otherwise it ends
 *   call inside the range   followed; the return site gets the state at
 *                   the callee's ret(s)
 *   call outside the range (a C handler) or indirect   the callee is assumed
 *                   to preserve the windows: execution continues after it
 *   jcc             both successors, unless ops->classify_branch says the
 *                   branch tests where the event came from (the RPL of the
 *                   saved CS): then each origin follows only its own edge;
 *                   jmp outside the range: path ends
 *                   (noted);  indirect jmp: path ends (noted: unknown
 *                   targets)
 *
 * Origin sensitivity: an IDT entry is reached from user and from kernel
 * mode with different states, and its code branches on the saved CS to
 * decide whether to swapgs.  Merging both origins before that branch would
 * smear GS to "both" for the whole handler.  So the dataflow runs once per
 * origin (entries say theirs), branches on the origin are resolved per run
 * (ops->classify_branch; window__branch_cs_rpl is a ready-made one), and
 * the per-origin results are merged only for display.
 *
 * The dynamic trace must agree with the map: window__check() says whether
 * an observed concrete state is one the map allows at that address; a
 * disagreement is a finding (or a classifier that is wrong).
 */
#ifndef KINJECT_WINDOW_H
#define KINJECT_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <kinject/abi.h>
#include "analysis.h"

/* GS and CR3: which side's value is loaded. */
#define WIN_USER      0x1u
#define WIN_KERNEL    0x2u
#define WIN_BOTH      (WIN_USER | WIN_KERNEL)
/* IF. */
#define WIN_IRQ_ON    0x1u
#define WIN_IRQ_OFF   0x2u
/* The "could not tell" bit, common to every dimension. */
#define WIN_UNKNOWN   0x80u

/* Stacks: one bit per KINJECT_STACK_* kind, so a dynamic trace that
 * classifies RSP with the guest's layout block tests one bit. */
#define WIN_STACK(kind)  (1u << (kind))
#define WIN_STACK_TASK   WIN_STACK(KINJECT_STACK_TASK)
#define WIN_STACK_IRQ    WIN_STACK(KINJECT_STACK_IRQ)
#define WIN_STACK_IST    WIN_STACK(KINJECT_STACK_IST)
#define WIN_STACK_ENTRY  WIN_STACK(KINJECT_STACK_ENTRY)
#define WIN_STACK_ESPFIX WIN_STACK(KINJECT_STACK_ESPFIX)
#define WIN_STACK_USER   WIN_STACK(KINJECT_STACK_USER)

/* Classifier answer meaning "this instruction does not change the
 * dimension". */
#define WIN_SAME      0u

/* One state.  0 in a dimension means unreached (the bottom). */
struct win_state {
	uint8_t gs, cr3, stack, irq;
};

struct win_entry {
	uint64_t addr;
	struct win_state state;
	/* Where the event came from: WIN_USER, WIN_KERNEL, or 0 if not
	 * known (branches on the origin are then not resolved). */
	unsigned origin;
};

/* Caller knowledge of the variant.  Each callback gets the whole decoded
 * range and the index of the instruction, so it can look at the
 * instructions before (e.g. where the value moved to CR3 came from), and
 * the state before the instruction.  Any callback may be NULL. */
struct win_ops {
	/* mov to %cr3: WIN_USER, WIN_KERNEL, WIN_UNKNOWN or WIN_SAME. */
	unsigned (*classify_cr3)(const struct code_range *c, size_t i,
				 const struct win_state *before, void *ctx);
	/* wrgsbase, wrmsr: WIN_USER, WIN_KERNEL, WIN_UNKNOWN or WIN_SAME. */
	unsigned (*classify_gs)(const struct code_range *c, size_t i,
				const struct win_state *before, void *ctx);
	/* Explicit RSP loads: a WIN_STACK_* mask, WIN_UNKNOWN or WIN_SAME. */
	unsigned (*classify_rsp)(const struct code_range *c, size_t i,
				 const struct win_state *before, void *ctx);
	/* popf: WIN_IRQ_ON/OFF, WIN_UNKNOWN or WIN_SAME. */
	unsigned (*classify_popf)(const struct code_range *c, size_t i,
				  const struct win_state *before, void *ctx);
	/* Conditional branches: WIN_USER if the branch is taken exactly when
	 * the event came from user mode, WIN_KERNEL if exactly when it came
	 * from kernel mode, 0 if it does not test the origin. */
	unsigned (*classify_branch)(const struct code_range *c, size_t i, void *ctx);
	void *ctx;
};

/* Per instruction of the range (parallel to code->insns). */
struct win_insn {
	struct win_state in;          /* before the instruction executes: all origins */
	struct win_state from_user;   /* ... for events that came from user mode */
	struct win_state from_kernel; /* ... from kernel mode */
	bool is_entry;
	uint32_t npreds;
	uint32_t *preds;              /* indices into code->insns */
};

/* Something the analysis could not follow, for the map's readers. */
struct win_note {
	uint64_t addr;
	char what[112];
};

/* Appends a note (addr, printf-style text) to a growing list, once: the
 * same text at the same address is kept only once.  0, or -1 out of memory. */
int window__add_note(struct win_note **notes, size_t *n, uint64_t addr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

struct win_map {
	const struct code_range *code;   /* borrowed: must outlive the map */
	struct win_insn *at;
	size_t nnotes;
	struct win_note *notes;
	size_t iterations;               /* worklist pops, for tests/benchmarks */
};

/* The rule used for RSP loads when ops->classify_rsp is NULL, for
 * classifiers that only know some loads: WIN_SAME for arithmetic on RSP
 * itself (sub/add/and with an immediate, lea off(%rsp)), else WIN_UNKNOWN. */
unsigned window__rsp_default(const struct insn *in);

/* A classify_branch for the usual origin test: a jz/je/jnz/jne right after
 * "test $3, OFF(%rsp)" (any OFF, byte/word/long) is taken from kernel
 * (jz) or from user (jnz).  The stack offset is not checked: entry code
 * tests nothing else with $3 on the stack. */
unsigned window__branch_cs_rpl(const struct code_range *c, size_t i, void *ctx);

/* Computes the map.  Entries must be instruction starts inside the range
 * and carry a non-empty state in every dimension.  0 or -1. */
int window__build(const struct code_range *code, const struct win_entry *entries,
		  size_t nentries, const struct win_ops *ops, struct win_map *out);
void window__free(struct win_map *m);

/* The merged state at the instruction starting at addr.  -1 if addr is not
 * an instruction start of the range; an unreached instruction gives 0 with
 * an all-zero state. */
int window__at(const struct win_map *m, uint64_t addr, struct win_state *out);
/* Same for one origin (WIN_USER or WIN_KERNEL). */
int window__at_origin(const struct win_map *m, uint64_t addr, unsigned origin,
		      struct win_state *out);
bool window__reached(const struct win_state *s);

/* Does a concrete observed state (one bit per dimension; a 0 dimension is
 * "not observed" and not checked) fit the map at addr?  If not, why says
 * which dimension disagrees, e.g. "GS kernel, map says user". */
bool window__check(const struct win_map *m, uint64_t addr, const struct win_state *seen,
		   char *why, size_t len);

/* Names: "user", "kernel", "both", "unknown", "-" (unreached);
 * stacks: "task", "irq|ist", ...; IRQs: "on", "off", "both". */
char *window__side_name(unsigned v, char *buf, size_t len);
char *window__stack_name(unsigned v, char *buf, size_t len);
char *window__irq_name(unsigned v, char *buf, size_t len);
/* "gs=kernel cr3=user stack=entry irq=off". */
char *window__state_str(const struct win_state *s, char *buf, size_t len);

/* The printable map: one line per instruction
 *   ADDRESS  SYM+OFF  DISASSEMBLY  GS CR3 STACK IRQ
 * then the notes, each as a "# note:" line. */
void window__print(FILE *f, const struct win_map *m, const struct symtab *t);

#endif /* KINJECT_WINDOW_H */
