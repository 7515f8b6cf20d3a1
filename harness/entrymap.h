/* SPDX-License-Identifier: MIT */
/*
 * The entry map: the guest's entry/exit code (layout.entry_text_*) decoded
 * and annotated with its windows (window.h), derived generically from a
 * guest booted to READY and from the ABI -- never from tables of one
 * variant:
 *
 *   entry points   the live IDT (sregs.idt: 256 gates, offset, IST, DPL,
 *                  type) and MSR_LSTAR / MSR_CSTAR / MSR_IA32_SYSENTER_EIP
 *                  when they point into the entry text;
 *   initial state  per origin: from user GS/CR3 user, stack TSS.RSP0 or the
 *                  gate's IST slot (read from the TSS through the GDT's TR
 *                  descriptor, classified with the layout's stack ranges);
 *                  from kernel GS/CR3 kernel on the interrupted kernel stack,
 *                  except IST gates (the CPU may be anywhere: both);
 *   classifiers    a small backward abstract evaluation of the register
 *                  written to CR3 / RSP / GS base: %gs:KINJECT_PCPU_* slots,
 *                  constants and guest memory read at READY, values read
 *                  from CR3 with bits forced by and/or/btr/bts (compared
 *                  with layout.kernel_cr3 ^ layout.user_cr3), values saved
 *                  earlier and restored (resolved with the previous pass).
 *
 * Anything a classifier cannot decide is WIN_UNKNOWN, never a guess.  The
 * dynamic trace checks what it observes with entrymap__check(); a
 * disagreement is a finding (or a classifier bug, see docs/map.md).
 */
#ifndef KINJECT_ENTRYMAP_H
#define KINJECT_ENTRYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/kvm.h>
#include <kinject/abi.h>
#include "analysis.h"
#include "window.h"

struct guest;

/* ENTRYMAP_OTHER: a function symbol of the entry text that no IDT gate or
 * MSR reaches (entered by kernel code, e.g. a context switch "returning"
 * to a new task's first frame): mapped from kernel mode with the state the
 * ABI gives kernel C code (kernel GS and CR3, a task/IRQ/IST stack), and
 * without origin (its branches on the saved CS are not resolved). */
enum entrymap_kind { ENTRYMAP_IDT, ENTRYMAP_LSTAR, ENTRYMAP_CSTAR, ENTRYMAP_SYSENTER, ENTRYMAP_OTHER };

struct entrymap_entry {
	enum entrymap_kind kind;
	uint64_t addr;
	int vector;                   /* IDT: 0-255; MSR entries: -1 */
	unsigned ist;                 /* IDT: 0 or IST slot 1-7 */
	unsigned dpl;                 /* IDT gate DPL */
	bool trap_gate;               /* IDT type 0xf (IF not cleared) */
	unsigned origins;             /* WIN_USER | WIN_KERNEL; 0 for ENTRYMAP_OTHER */
	struct win_state from_user, from_kernel;   /* initial states (OTHER: from_kernel) */
};

struct entrymap {
	struct kinject_layout layout;           /* copied at READY */
	const struct symtab *symtab;            /* borrowed from the guest: may be NULL */
	struct code_range code;                 /* the decoded entry text */
	struct win_map map;                     /* merged over every context */
	struct entrymap_entry *entries;
	size_t nentries;
	/* What the build read from the guest. */
	uint64_t idt_base, tss_base, tss_rsp0, tss_ist[8];
	unsigned idt_present, idt_outside;      /* present gates; gates outside the entry text */
	uint64_t lstar, cstar, sysenter_eip, sfmask;
	unsigned passes;                        /* classifier passes until stable */
	bool converged;
	size_t nnotes;                          /* entrymap's own notes (the map has more) */
	struct win_note *notes;
};

/* Builds the map of a READY guest (guest__run_to_ready done).  Reads
 * registers, MSRs and guest memory; runs nothing.  0 or -1 (vmm__error). */
int entrymap__build(struct guest *g, struct entrymap *out);
void entrymap__free(struct entrymap *m);

/* Instruction boundaries of the entry text, in address order: every
 * instruction start (reached_only: only those the map reaches).  *out is
 * malloc'ed; returns the count, or -1. */
long entrymap__boundaries(const struct entrymap *m, bool reached_only, uint64_t **out);
/* The instruction starting at addr, NULL if addr is not a boundary. */
const struct insn *entrymap__insn(const struct entrymap *m, uint64_t addr);
/* Merged state at a boundary (window__at). */
int entrymap__state(const struct entrymap *m, uint64_t addr, struct win_state *out);
bool entrymap__in_text(const struct entrymap *m, uint64_t rip);

/* The concrete state of the vCPU in map terms, from the layout: GS kernel
 * iff gs.base == layout.percpu; CR3 by comparing with layout.kernel_cr3 /
 * user_cr3 without PCID (11:0) and bit 63; stack by RSP in the layout's
 * ranges (start, end] (a stack's top belongs to it), else user below 2^47;
 * IRQ from RFLAGS.IF.  A dimension that fits nothing is left 0 (not
 * observed).  Returns the number of dimensions left 0. */
int entrymap__observe_layout(const struct kinject_layout *l, const struct kvm_regs *regs,
			     const struct kvm_sregs *sregs, struct win_state *out);
int entrymap__observe(const struct guest *g, const struct kvm_regs *regs,
		      const struct kvm_sregs *sregs, struct win_state *out);

/* Does the observed state at rip fit the map?  RIPs outside the entry text
 * are not the map's business: true.  why: the disagreement, one line. */
bool entrymap__check(const struct entrymap *m, uint64_t rip, const struct win_state *seen,
		     char *why, size_t len);

/* `kinject map` output: header, one line per instruction, notes. */
void entrymap__print(FILE *f, const struct entrymap *m);
void entrymap__print_json(FILE *f, const struct entrymap *m);

#endif /* KINJECT_ENTRYMAP_H */
