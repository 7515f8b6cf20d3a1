/* SPDX-License-Identifier: MIT */
/*
 * Oracles: independent judges of one case run.  Each looks only at what
 * the engine observed from outside the guest (vCPU state at breakpoints,
 * guest memory, how the run ended), never at what the guest says about
 * itself, and reports findings: where, what was expected, what was seen.
 *
 * An oracle is a name, one sentence, and the hooks it needs; the engine
 * calls every registered oracle's hooks in registry order.  Hooks read the
 * observations gathered so far in struct oracle_ctx (filled by the engine
 * before the hook runs) and the live vCPU state (x->vm).  An oracle that
 * does not apply to a case says so with oracle__note() (debug output only).
 * One file per oracle: harness/oracle_NAME.c.  docs/oracles.md lists them.
 */
#ifndef KINJECT_ORACLE_H
#define KINJECT_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "entrymap.h"

/* Everything a run has shown so far; the engine owns and fills it. */
struct oracle_ctx {
	/* The machine and what is known about the guest (read-only). */
	struct vm *vm;
	const struct symtab *symtab;
	const struct kinject_layout *layout;
	const struct code_range *entry;          /* decoded entry text */
	const volatile uint8_t *percpu;          /* host view of kinject_percpu */
	const struct kcase *c;
	struct case_result *r;                   /* findings go here */
	const struct entrymap *map;              /* trace mode: the static window map, or NULL */
	FILE *debug;
	unsigned run;                            /* 1; 2 for the determinism rerun */

	/* Steps: state at each stop and the event injected there. */
	unsigned nsteps;                         /* injected so far */
	struct engine_state stop[CASE_MAX_STEPS];
	struct vm_event event[CASE_MAX_STEPS];
	bool resumed[CASE_MAX_STEPS];            /* its interrupted context resumed */
	bool switched[CASE_MAX_STEPS];           /* its task was switched away from before that */

	/* The C handler entry of the innermost (last) event. */
	bool handler_seen;
	uint64_t handler_rip;
	uint64_t frame_va;                       /* RDI there */
	bool frame_ok;                           /* frame could be read */
	struct kinject_frame frame;

	/* The return-to-kernel decision for the innermost event's frame. */
	bool decision_armed;                     /* the variant has a decision label */
	bool decision_seen;
	uint64_t decision_rip;
	uint64_t need_resched, preempt_count;    /* percpu, at the decision */
	uint64_t saved_rflags;                   /* the frame's, at the decision */
	bool preempt_path_seen;                  /* its preempting branch was entered */

	/* espfix: steps whose return to a 16-bit SS was judged already. */
	bool espfix_checked[CASE_MAX_STEPS];

	/* Trace mode: single-steps so far (at_step runs before each). */
	bool trace;
	uint64_t nstep;

	/* The end. */
	bool ended;
	uint64_t end_rip;
	uint64_t digest;
	bool have_prev;                          /* determinism: the first run's */
	uint64_t prev_digest;
	struct verdict prev_guest;
};

struct oracle {
	const char *name;                        /* as in `expect fail NAME` */
	const char *summary;                     /* one sentence */
	bool trace_only;                         /* needs single-stepping (mode trace) */
	/* Step `k`'s interrupted state was captured, nothing injected yet. */
	void (*at_stop)(struct oracle_ctx *x, unsigned k);
	/* First instruction of the C handler of the innermost event. */
	void (*at_handler)(struct oracle_ctx *x);
	/* The return-to-kernel decision point, frame of the innermost event at
	 * RSP; called again with preempt_path_seen set if the variant's
	 * preempting branch is entered next. */
	void (*at_decision)(struct oracle_ctx *x);
	/* A context switch (variant_switch_to(prev, next) entered). */
	void (*at_switch)(struct oracle_ctx *x, uint64_t prev, uint64_t next);
	/* Step `k`'s interrupted context resumes: vCPU state is the resumed one. */
	void (*at_resume)(struct oracle_ctx *x, unsigned k);
	/* Any other breakpoint stop after the first injection. */
	void (*at_hit)(struct oracle_ctx *x);
	/* The run ended: r->guest holds how. */
	void (*at_end)(struct oracle_ctx *x);
	/* Trace mode: about to execute `in` (NULL outside decoded text). */
	void (*at_step)(struct oracle_ctx *x, const struct insn *in);
};

/* ---- oracle_registry.c ---------------------------------------------------- */
/* Every oracle, in the order hooks run.  *n gets the count. */
const struct oracle *const *oracle__all(size_t *n);
const struct oracle *oracle__find(const char *name);
/* "frame, transparency, ..." into buf. */
char *oracle__names(char *buf, size_t len);

/* A finding at guest address `addr` (0: none): the location is described
 * as "sym+off: disassembly".  Beyond ENGINE_MAX_FINDINGS it is counted in
 * r->dropped. */
void oracle__report(struct oracle_ctx *x, const struct oracle *o, uint64_t addr,
		    const char *expected, const char *actual);
/* A debug note ("does not apply: ..."), to x->debug if set. */
void oracle__note(struct oracle_ctx *x, const struct oracle *o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "sym+0x12: insn" for any guest code address. */
char *oracle__where(struct oracle_ctx *x, uint64_t addr, char *buf, size_t len);
/* A quadword of kinject_percpu (KINJECT_PCPU_*). */
uint64_t oracle__percpu(const struct oracle_ctx *x, unsigned off);
/* The current task's saved user frame (the ABI's place for it: the top
 * of its kernel stack, KINJECT_PCPU_TOP_OF_STACK), read through the
 * kernel's page tables (the user CR3 may be loaded): its address, or 0 if
 * unreadable. */
uint64_t oracle__task_frame(const struct oracle_ctx *x, struct kinject_frame *f);
/* Trace oracles fire at many instructions: this reports once per (oracle,
 * address) and at most ORACLE_STEP_REPORTS times per oracle and run. */
#define ORACLE_STEP_REPORTS 6
void oracle__report_step(struct oracle_ctx *x, const struct oracle *o, uint64_t addr,
			 const char *expected, const char *actual);
/* The live value of a capstone register (64-bit GPRs, their 32-bit halves,
 * RIP as the next instruction's address for `in`).  False if unknown. */
bool oracle__reg(const struct kvm_regs *r, const struct insn *in, unsigned reg, uint64_t *val);
/* Linear address of in->mem[i]: base + index*scale + disp + FS/GS base.
 * False if a register is unknown. */
bool oracle__mem_linear(struct oracle_ctx *x, const struct insn *in, unsigned i, uint64_t *addr);
/* The implicit stack access of push/pop/call/ret/pushf/popf/iret/leave:
 * [*addr, *addr + *len).  False if `in` has none. */
bool oracle__stack_access(const struct insn *in, const struct kvm_regs *r, uint64_t *addr,
			  unsigned *len);
/* `in` at CPL 0 is an IRET/SYSRET that returns to ring 3 now (the IRET's
 * frame at RSP says CS RPL 3).  *rip gets the target if known. */
bool oracle__returns_to_user(struct oracle_ctx *x, const struct insn *in, uint64_t *rip);
/* The user's GS base as step k found it: the live one if it interrupted
 * ring 3 or a user-GS window, else MSR_KERNEL_GS_BASE (swapgs's other half). */
uint64_t oracle__user_gs(const struct oracle_ctx *x, unsigned k);
/* CR3 without PCID (11:0) and NOFLUSH (63). */
static inline uint64_t oracle__cr3_base(uint64_t cr3) { return cr3 & 0x7ffffffffffff000ULL; }

/* The index of the innermost step (nsteps - 1). */
static inline unsigned oracle__last(const struct oracle_ctx *x) { return x->nsteps - 1; }
/* True for events that arrive from outside the instruction stream. */
static inline bool oracle__async(const struct vm_event *e)
{
	return e->kind == VM_EVENT_IRQ || e->kind == VM_EVENT_NMI;
}

#define RFLAGS_RF_BIT (1ULL << 16)
#define RFLAGS_IF_BIT (1ULL << 9)

/* The oracles (one file each). */
extern const struct oracle oracle_frame;
extern const struct oracle oracle_transparency;
extern const struct oracle oracle_fatal;
extern const struct oracle oracle_determinism;
extern const struct oracle oracle_espfix;
extern const struct oracle oracle_preempt;
extern const struct oracle oracle_map;
extern const struct oracle oracle_gs;
extern const struct oracle oracle_stack;
extern const struct oracle oracle_cr3;
extern const struct oracle oracle_exitwork;
extern const struct oracle oracle_restore;
extern const struct oracle oracle_flags;

#endif /* KINJECT_ORACLE_H */
