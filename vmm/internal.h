/* SPDX-License-Identifier: MIT */
/*
 * Private to the VMM library: the layout of struct vm and the helpers the
 * files share.  Nothing outside vmm/ includes this.
 */
#ifndef KINJECT_VMM_INTERNAL_H
#define KINJECT_VMM_INTERNAL_H

#include <sys/types.h>
#include <time.h>
#include "vmm.h"

#define PAGE_SIZE 4096ULL
#define PAGE_SHIFT 12

/* The MSRs a snapshot carries (filtered at VM creation to what KVM has). */
#define VM_MAX_SNAP_MSRS 24

/* Ring-3 breakpoints on hosts whose hardware breakpoints never fire in
 * 64-bit ring 3 (QUIRK_RING3_HWBP, vmm/ring3.c): an INT3 at the address
 * and a hardware breakpoint at the guest's #BP entry. */
/* The lower canonical half: user addresses. */
#define USER_HALF_END 0x0000800000000000ULL
/* INT3s ring3.c may have in guest memory at once: caller breakpoints and
 * sysemu.c's sites. */
#define RING3_PATCHES (VM_MAX_BREAKPOINTS + SYSEMU_MAX_SITES)
struct ring3_patch {
	uint64_t gva, gpa;
	uint8_t orig;                 /* the guest's byte under our INT3 */
	bool used;
	bool site;                    /* a sysemu.c site: wanted for good */
};
struct ring3_state {
	bool active;                  /* some slot was ever emulated */
	/* Every sysemu.c site has its patch; else the CR3 the missing ones
	 * did not translate under (tried again when CR3 changes). */
	bool sites_planted;
	uint64_t sites_cr3;
	bool emul[VM_MAX_BREAKPOINTS];   /* slot stops by INT3 */
	bool seen64[VM_MAX_BREAKPOINTS]; /* it did: its own DR is idle */
	struct ring3_patch patch[RING3_PATCHES];
	uint64_t idt_base;            /* the gates below were read under it */
	uint64_t bp_entry, db_entry;  /* #BP and #DB gate offsets (0: unread) */
	bool want_bp, want_db;        /* the entry being prepared needs them */
	int bp_dr, db_dr;             /* their slots in the KVM config, -1 */
	uint64_t stopped;             /* reported a stop here: step on resume */
	/* The instruction at a ring-3 stop runs once with TF (the guest's
	 * #DB entry catches it) before its INT3 goes back. */
	bool step, step_user_tf;
	uint64_t step_addr;
	uint8_t step_insn[16];
	size_t step_len;
	uint64_t step_dr6;            /* the guest's DR6 before it (BS hidden) */
	bool step_dr6_ok;
};

/* SYSCALL and INT n from 64-bit ring 3 emulated on hosts that mis-deliver
 * them (QUIRK_SYSCALL, QUIRK_INT80: vmm/sysemu.c), at the sites the
 * caller names: an INT3 there, caught with ring3.c's. */
struct sysemu_state {
	bool checked;                 /* the quirk states below were asked */
	bool syscall, intn;           /* emulate SYSCALL / INT n */
	uint64_t site[SYSEMU_MAX_SITES];   /* user addresses of the instructions */
	size_t nsites;
	bool report;                  /* end the run with VM_EXIT_SYSEMU */
	uint64_t syscalls, ints;      /* emulated so far (tests, docs) */
};

/* KVM's own per-vCPU counters (kvmstats.c): the statistics fd and its
 * descriptors, read once. */
struct kvm_stats {
	int fd;                       /* -1 until opened */
	bool failed;                  /* ... and why it cannot be */
	char why[160];
	char *desc;                   /* ndesc descriptors of desc_size bytes */
	size_t desc_size;
	unsigned ndesc;
	uint64_t data_offset;
};

struct vm {
	struct vm_config cfg;
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;

	uint8_t *mem;
	uint64_t mem_size, npages;
	uint64_t *kvm_dirty;          /* KVM_GET_DIRTY_LOG lands here */
	uint64_t *host_dirty;         /* pages vm__write_* touched */
	uint64_t mem_snap_id;         /* snapshot memory matches, 0 = none */
	const struct vm_snapshot *mem_snap;   /* ... that snapshot (its base/diff) */
	/* The vCPU's MSRs/XSAVE/DRs equal this snapshot's (0: unknown) until
	 * vcpu__state_touched(): any KVM_RUN (even one that ends in EINTR
	 * without an exit: the guest may have run for seconds), or a write
	 * of that state by the host. */
	uint64_t vcpu_snap_id;
	/* The snapshot MSRs (msr_idx) as last read, valid until the vCPU runs
	 * or the host writes an MSR: one KVM_GET_MSRS serves every reader of
	 * one stop (transparency, checkpoint, convergence). */
	uint64_t msr_cache[VM_MAX_SNAP_MSRS];
	bool msr_cache_ok;
	/* No KVM_RUN since the dirty log was last folded into host_dirty. */
	bool dirty_collected;
	struct snap_restore_cost last_cost;

	char *console;
	size_t console_len, console_cap;
	uint64_t exits;
	uint64_t run_ns;              /* wall clock inside KVM_RUN */

	/* Wall-clock deadline (deadline.c): CLOCK_MONOTONIC ns, 0 = none;
	 * the exit count when it was set, for the reason. */
	uint64_t deadline_ns, deadline_ms, deadline_exits;
	timer_t deadline_timer;
	bool deadline_timer_ok;
	pid_t deadline_tid;           /* the thread the timer signals */
	/* What the last entry consumed (run.c), given back if KVM_RUN was
	 * interrupted before the guest ran: breakpoints stepped over, at RIP. */
	unsigned entry_skip, entry_skip_internal;
	uint64_t entry_rip;

	/* Pending external interrupts held here until the guest can take
	 * one (like an interrupt controller's request register). */
	uint64_t irr[4];
	/* The instruction a single-step is about to execute, for the TF fix-up. */
	uint64_t step_rip;
	uint8_t step_insn[16];
	size_t step_len;

	/* Guest debug configuration; `dbg_dirty` means KVM has not seen it. */
	uint64_t bp_addr[VM_MAX_BREAKPOINTS];
	bool bp_on[VM_MAX_BREAKPOINTS];
	uint64_t bp_hits[VM_MAX_BREAKPOINTS];
	bool singlestep;
	/* Slots to step over on the next entry (the breakpoints we stopped
	 * at): RF does not suppress them here, so the next entry runs one
	 * instruction with them disarmed, then re-arms them. */
	unsigned step_over;
	/* The VMM's own slots (ring3.c's #BP/#DB entries, sysemu.c's catches)
	 * that stopped and were not the caller's business: the next entry
	 * steps past them whatever the caller's slots say. */
	unsigned step_internal;
	/* The current entry single-steps for the VMM's own sake (stepping
	 * over a breakpoint, or waiting for an interrupt window), not the
	 * caller's: such step exits are not reported. */
	bool internal_step;
	/* A temporary breakpoint standing in for a single step (IRETQ: this
	 * KVM backend's step over IRETQ runs one instruction too far). */
	int tmp_slot;
	uint64_t tmp_addr;
	bool dbg_valid;
	struct kvm_guest_debug dbg_applied;
	uint64_t step_cs, step_rsp, step_rflags;

	/* KVM state that a snapshot carries beyond sync_regs. */
	uint32_t msr_idx[VM_MAX_SNAP_MSRS];
	int nmsrs;
	int xsave_size;               /* bytes for KVM_GET_XSAVE2 */
	struct kvm_xsave *xsave_tmp;  /* scratch of that size (snap__vcpu_compare) */
	bool has_xsave2;

	/* Ring-3 breakpoints emulated with INT3 (ring3.c). */
	struct ring3_state r3;
	/* SYSCALL / INT n emulated where the host mis-delivers them. */
	struct sysemu_state sys;
	struct kvm_stats stats;
};

/* An event KVM will deliver on the next entry. */
static inline bool vcpu__event_due(const struct kvm_vcpu_events *ev)
{
	return ev->exception.pending || ev->exception.injected || ev->nmi.injected ||
	       ev->interrupt.injected || (ev->nmi.pending && !ev->nmi.masked);
}

/* The VMM's own rewinds (ring3.c, sysemu.c): the vCPU in the user context
 * of an interrupt frame -- RIP, RFLAGS, RSP as given, CS and SS caches
 * from their descriptors, GPRs untouched.  -1 (vmm__error) if a selector
 * does not load. */
int vcpu__enter_frame(struct vm *vm, uint64_t rip, uint16_t cs, uint64_t rflags, uint64_t rsp,
		      uint16_t ss);

/* The vCPU state outside sync_regs may have changed: a restore must
 * write it again. */
static inline void vcpu__state_touched(struct vm *vm)
{
	vm->vcpu_snap_id = 0;
	vm->msr_cache_ok = false;
}

/* Bitmaps of pages. */
static inline void bitmap_set(uint64_t *b, uint64_t i) { b[i / 64] |= 1ULL << (i % 64); }
static inline size_t bitmap_words(uint64_t n) { return (n + 63) / 64; }

/* kvm.c */
int kvm__open(void);                           /* checked /dev/kvm fd, or -1 */
/* vm.c */
void vm__mark_host_dirty(struct vm *vm, uint64_t gpa, size_t len);
/* debug.c: give KVM the guest-debug configuration for the next entry
 * (user breakpoints minus `skip` slots, single-step if `step`), with an
 * ioctl only when it differs from what KVM has, or when `force`. */
int dbg__sync(struct vm *vm, bool step, unsigned skip, bool force);
/* debug.c: set up a breakpoint-based step for IRETQ if that is next. */
bool dbg__step_by_bp(struct vm *vm);
/* debug.c: after a single-step exit, hide TF the stepped instruction stored. */
void dbg__fixup_step(struct vm *vm);
/* debug.c: the offset of the opcode after legacy and REX prefixes. */
size_t dbg__skip_prefixes(const uint8_t *p, size_t n);
/* ring3.c: whether slot's breakpoint is emulated (quirk, user address);
 * called after every change of the slot. */
void ring3__slot_changed(struct vm *vm, int slot);
/* ring3.c: before each entry (from dbg__sync): INT3 bytes in place, the
 * step past a ring-3 stop; sets r3.want_bp/want_db.  `kvm_step`: the
 * entry single-steps with KVM.  0 or -1. */
int ring3__prepare(struct vm *vm, bool kvm_step);
/* ring3.c: a debug exit (run.c): 0 = report `e` (filled), 1 = consumed,
 * go on, -1 = not ours (DR6 cleaned of our slots). */
int ring3__debug_exit(struct vm *vm, struct vm_exit *e);
/* ring3.c: single-stepping here would run 64-bit ring-3 code unstepped. */
bool ring3__cannot_step(struct vm *vm);
/* ring3.c: a hardware breakpoint in code segment `cs` would never fire
 * (64-bit ring 3 on such a host). */
bool ring3__cannot_stop(struct vm *vm, uint16_t cs);
/* kvmstats.c: set up (before anything can fail) and release. */
void kvmstats__init(struct vm *vm);
void kvmstats__destroy(struct vm *vm);
/* sysemu.c: force the emulation on or off for this VM (the quirk probes;
 * otherwise the first entry asks quirks__state). */
void sysemu__force(struct vm *vm, bool syscall, bool intn);
/* sysemu.c: does this VM run SYSCALL / INT n at their sites (the quirks
 * say so)?  Asked once, then cached. */
bool sysemu__active(struct vm *vm);
/* sysemu.c: the vCPU is in the user state at site gva (whose first byte
 * is `orig` under the INT3): run its SYSCALL or INT n.  0 or -1. */
int sysemu__run_site(struct vm *vm, uint64_t gva, uint8_t orig);
/* sysemu.c: after site gva ran: the caller sees it (VM_EXIT_SYSEMU when
 * asked for, or the end of its single step: `e` filled, true) or the run
 * goes on (false). */
bool sysemu__report(struct vm *vm, uint64_t gva, struct vm_exit *e);
/* inject.c: the held IRQ with the highest vector, -1 if none. */
int irq__highest(const struct vm *vm);
bool irq__any(const struct vm *vm);
void irq__raise(struct vm *vm, uint8_t vector);
void irq__clear(struct vm *vm, uint8_t vector);
/* inject.c: queue an NMI as pending (NMI-blocking respected). */
void nmi__raise(struct vm *vm);
/* deadline.c: around one vcpu__run (the signal handler's target and,
 * from another thread, the timer re-aimed); whether the deadline passed;
 * the timer's end at vm__destroy. */
int deadline__begin(struct vm *vm);
void deadline__end(struct vm *vm);
bool deadline__passed(const struct vm *vm);
void deadline__destroy(struct vm *vm);
/* run.c: push sync_regs state through the explicit ioctls now. */
int vcpu__flush_sync(struct vm *vm, uint64_t fields);

#endif
