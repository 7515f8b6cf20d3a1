/* SPDX-License-Identifier: MIT */
/*
 * The kinject VMM: a small library on the KVM API.  One VM, one vCPU.
 *
 * Conventions (kvmtool style): `subsystem__verb` names; functions that can
 * fail return 0 on success and -1 on failure, leaving one line in
 * vmm__error() that names the object (file, option, ioctl) and the problem.
 * Nothing in this library exits the process or prints on its own.
 *
 * Register state: the VM keeps kvm_run's sync_regs (REGS, SREGS, EVENTS)
 * valid after every exit, so reading them costs nothing.  Changing them is
 * writing the struct and calling vcpu__mark_dirty(); the change is folded
 * into the next KVM_RUN.
 */
#ifndef KINJECT_VMM_H
#define KINJECT_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <linux/kvm.h>

struct vm;
struct vm_snapshot;

/* ---- errors ------------------------------------------------------------ */
const char *vmm__error(void);                 /* last error, one line */
int vmm__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* sets it, returns -1 */

/* ---- kvm.c: the host ---------------------------------------------------- */
/* Opens /dev/kvm, checks the API version and every capability kinject relies
 * on.  On failure the error says which and how to fix it (module,
 * permissions, nested virtualization). Returns 0 or -1. */
int kvm__check(void);
/* True when /dev/kvm cannot be used at all here (absent or no permission):
 * tests SKIP on this, loudly, with vmm__error() as the reason. */
bool kvm__unavailable(void);

/* ---- vm.c: the machine --------------------------------------------------- */
struct vm_config {
	uint64_t mem_size;            /* bytes of guest RAM; 0 = default (32 MiB) */
	FILE *console;                /* guest console is streamed here if set */
	/* Offer XSAVE (and AVX...) in guest CPUID.  Off by default: then the
	 * guest can never change XCR0, and snapshot restore skips KVM_SET_XCRS
	 * (the testbed kernel is general-registers-only; SSE stays usable). */
	bool guest_xsave;
};
#define VM_DEFAULT_MEM_SIZE (32ULL << 20)

struct vm *vm__create(const struct vm_config *cfg);   /* NULL on failure */
void vm__destroy(struct vm *vm);
/* Parses "32M", "64m", "1G", "4096K", plain bytes; -1 on anything else. */
int vm__parse_size(const char *s, uint64_t *out);

/* Memory.  Guest-physical access returns a host pointer or NULL if the range
 * is not all RAM.  Writes through these pointers are *not* seen by KVM's
 * dirty log: use vm__write_gpa()/vm__write_gva(), which also mark the page
 * dirty for the snapshot logic. */
void *vm__gpa(struct vm *vm, uint64_t gpa, size_t len);
uint64_t vm__mem_size(const struct vm *vm);
int vm__write_gpa(struct vm *vm, uint64_t gpa, const void *src, size_t len);
/* Copies raw code/data into guest RAM (tests, benchmarks): vm__write_gpa. */
int vm__load_code(struct vm *vm, uint64_t gpa, const void *code, size_t len);
/* Walks the guest's 4-level page tables under `cr3` (0: the vCPU's current
 * CR3).  Fails on a non-present mapping. */
int vm__gva_to_gpa(struct vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa);
int vm__read_gva(struct vm *vm, uint64_t cr3, uint64_t gva, void *dst, size_t len);
int vm__write_gva(struct vm *vm, uint64_t cr3, uint64_t gva, const void *src, size_t len);

/* ---- elf.c: the guest image and its symbols ------------------------------ */
struct symbol {
	uint64_t addr, size;
	const char *name;
	bool is_func;
};
struct symtab {
	struct symbol *syms;          /* sorted by address */
	size_t n;
	char *strings;
};
struct elf_image {
	char *path;
	uint64_t entry;
	struct symtab symtab;
};
/* Loads PT_LOAD segments at p_paddr, keeps the symbol table.  Corrupt,
 * truncated, wrong-architecture or non-ELF files fail with one line naming
 * the file and the problem. */
int elf__load(struct vm *vm, const char *path, struct elf_image *img);
/* Parses without loading (tests, `kinject map`). */
int elf__open(const char *path, struct elf_image *img, struct vm *vm_or_null);
void elf__free(struct elf_image *img);
/* "sym", "sym+0x12", "sym+18", "0xffffffff80001000": 0 or -1 (error says why). */
int sym__resolve(const struct symtab *t, const char *expr, uint64_t *addr);
/* Exact symbol lookup. */
const struct symbol *sym__find(const struct symtab *t, const char *name);
/* The symbol containing addr (or the nearest below), NULL if none. */
const struct symbol *sym__at(const struct symtab *t, uint64_t addr);
/* "sym+0x12" or "0x..." into buf; returns buf. */
char *sym__describe(const struct symtab *t, uint64_t addr, char *buf, size_t len);

/* ---- boot.c: straight into long mode ------------------------------------ */
/* Builds boot page tables, GDT, segment state and the boot-info block
 * (see guest/include/kinject/abi.h), sets CPUID, and points RIP at entry. */
int vm__boot_long_mode(struct vm *vm, uint64_t entry, const char *cmdline);

/* ---- run.c: the run loop ------------------------------------------------ */
enum vm_exit_kind {
	VM_EXIT_HCALL,         /* hypercall on KINJECT_PORT_HCALL: see exit.hcall */
	VM_EXIT_HLT,           /* guest halted with nothing pending */
	VM_EXIT_SHUTDOWN,      /* triple fault */
	VM_EXIT_BREAKPOINT,    /* hardware execution breakpoint: exit.debug.slot */
	VM_EXIT_SINGLESTEP,    /* one instruction done */
	VM_EXIT_FAIL_ENTRY,    /* VM entry failed: exit.reason explains */
	VM_EXIT_INTERNAL_ERROR,/* KVM internal error */
	VM_EXIT_BUDGET,        /* the exit budget or the deadline ran out: a hang */
	VM_EXIT_UNEXPECTED,    /* any other exit (unknown port, MMIO...) */
	VM_EXIT_SYSEMU,        /* the VMM ran a site's SYSCALL/INT n: exit.sysemu
				* (only after vm__sysemu_report(vm, true)) */
};
struct vm_exit {
	enum vm_exit_kind kind;
	uint64_t rip;                 /* guest RIP at the exit */
	struct {
		uint32_t nr;              /* KINJECT_HC_* */
		uint64_t args[4];         /* RDI, RSI, RDX, RCX */
	} hcall;
	struct {
		int slot;                 /* breakpoint slot, -1 for single-step */
		uint64_t dr6, pc;
	} debug;
	struct {
		uint64_t site;            /* the instruction's user address */
		int vector;               /* INT n's n; -1 for SYSCALL */
	} sysemu;
	char reason[160];             /* human-readable detail for failures */
};
/* Runs until an exit the caller must see.  Console output is consumed here
 * (streamed to cfg->console and appended to the console buffer); KINJECT_HC_RAISE_IRQ
 * and KINJECT_HC_RAISE_NMI are handled here too (queued as pending events).
 * `max_exits` bounds the KVM exits taken (0 = no bound); when reached, the
 * exit is VM_EXIT_BUDGET.  Returns 0, or -1 on a host-side ioctl failure. */
int vcpu__run(struct vm *vm, struct vm_exit *exit, uint64_t max_exits);
const char *vm_exit__name(enum vm_exit_kind k);

/* A wall-clock deadline, `ms` from now (0 clears it): once it has passed,
 * vcpu__run returns VM_EXIT_BUDGET (reason "deadline: no KVM exit for N ms"
 * when the guest spun without exiting, else "deadline: no result within
 * N ms (K KVM exits)"), also from a KVM_RUN that never exits on its own,
 * and again at every call until it is set anew or cleared.  The guest state
 * stays exact: running again resumes it.  Costs one timer_settime here and
 * nothing per exit.  The timer signals the thread that set the deadline (or
 * the thread that last ran the vCPU with it armed) with VM_DEADLINE_SIGNAL;
 * the library installs its handler (SA_RESTART) and unblocks the signal in
 * that thread.  Returns 0, or -1 if the timer cannot be created. */
#define VM_DEADLINE_SIGNAL (SIGRTMIN + 6)
int vm__set_deadline_ms(struct vm *vm, uint64_t ms);
/* The deadline last set in ms, 0 if none. */
uint64_t vm__deadline_ms(const struct vm *vm);

/* Console text the guest printed since the last vm__console_clear(). */
const char *vm__console(const struct vm *vm, size_t *len);
void vm__console_clear(struct vm *vm);
/* KVM exits taken so far (for budgets and benchmarks). */
uint64_t vm__exit_count(const struct vm *vm);
/* Wall-clock nanoseconds spent inside KVM_RUN so far (the guest running
 * plus the exit round trips): what a case costs beyond the VMM's own work. */
uint64_t vm__run_ns(const struct vm *vm);
/* A counter KVM keeps for the vCPU (KVM_GET_STATS_FD: "exits",
 * "insn_emulation", "halt_exits", ...): work inside KVM_RUN that never
 * reaches the VMM.  0, or -1 (vmm__error) where KVM has no such counter. */
int vcpu__kvm_stat(struct vm *vm, const char *name, uint64_t *val);

/* ---- sysemu.c: SYSCALL / INT n where the host mis-delivers them ---------- */
#define SYSEMU_MAX_SITES 64
/* The user addresses of the SYSCALL and INT n instructions in the guest's
 * 64-bit user code: where the host mis-delivers them from ring 3
 * (quirks.h: QUIRK_SYSCALL, QUIRK_INT80 EMULATED), the VMM runs them
 * there itself (an INT3 caught at the guest's #BP entry); elsewhere the
 * list is kept and unused.  Replaces the list.  0 or -1. */
int vm__sysemu_sites(struct vm *vm, const uint64_t *gva, size_t n);
/* With `on`, each site the VMM runs (caught at its INT3) ends vcpu__run
 * with VM_EXIT_SYSEMU: the vCPU at LSTAR after a SYSCALL, or with the INT
 * n (or its fault) injected, not yet delivered.  For callers that must see
 * every kernel entry (the sweep's plan).  A site run on the resume from
 * a caller's breakpoint there is not reported. */
void vm__sysemu_report(struct vm *vm, bool on);

/* ---- vcpu.c: register state -------------------------------------------- */
struct kvm_regs *vcpu__regs(struct vm *vm);        /* sync_regs, always valid */
struct kvm_sregs *vcpu__sregs(struct vm *vm);
struct kvm_vcpu_events *vcpu__events(struct vm *vm);
/* Marks KVM_SYNC_X86_* fields to be written on the next KVM_RUN. */
void vcpu__mark_dirty(struct vm *vm, uint64_t sync_fields);
int vcpu__get_msrs(struct vm *vm, const uint32_t *idx, uint64_t *val, int n);
int vcpu__set_msrs(struct vm *vm, const uint32_t *idx, const uint64_t *val, int n);
/* CPL from SS.DPL. */
int vcpu__cpl(struct vm *vm);
/* A 64-bit IDT gate (16 bytes). */
struct idt_gate {
	uint64_t offset;              /* the handler's address */
	unsigned selector, ist, type, dpl;
	bool present;
};
/* Decodes the 16 raw bytes of a 64-bit IDT gate. */
void idt_gate__decode(const uint8_t raw[16], struct idt_gate *g);
/* Reads and decodes gate `vector` of the vCPU's IDT (IDTR from sregs)
 * through page tables `cr3` (0: the current CR3).  -1 when the vector is
 * past the IDT limit or the gate cannot be read. */
int vcpu__idt_gate(struct vm *vm, uint64_t cr3, unsigned vector, struct idt_gate *g);
/* The handler address of IDT gate `vector` (cr3 0: the current one); 0 if
 * the entry is unreadable or not present. */
uint64_t vcpu__gate_handler(struct vm *vm, uint64_t cr3, unsigned vector);
/* The segment cache the CPU would load for selector `sel` from its GDT or
 * LDT descriptor (sregs' tables, current CR3; accessed bit left out).  -1
 * if unreadable or not a present code/data segment. */
int vcpu__segment(struct vm *vm, uint16_t sel, struct kvm_segment *seg);

/* ---- snapshot.c: the whole machine --------------------------------------- */
/* Takes GPRs, sregs, vCPU events, debug registers, XSAVE/XCRs, the MSRs the
 * guest uses, and all of memory (a full copy, once). */
struct vm_snapshot *snap__take(struct vm *vm);
/* Restores it.  Memory: only the pages written since the VM last matched
 * this snapshot (KVM dirty log plus pages the host wrote); registers are
 * folded into the next KVM_RUN via sync_regs. */
int snap__restore(struct vm *vm, const struct vm_snapshot *s);
void snap__free(struct vm_snapshot *s);
/* A second snapshot equal to `base`, to be moved along a run with
 * snap__update (a checkpoint).  It remembers which pages it has made
 * differ from `base`, so switching between the two copies only those. */
struct vm_snapshot *snap__clone(struct vm *vm, const struct vm_snapshot *base);
/* Makes `s` the machine as it is now, copying only what can differ: the
 * pages written since memory last matched `s` (or its base, plus the pages
 * where they differ), and the vCPU state outside sync_regs (one GET ioctl
 * each: MSRs, XSAVE, XCRs, debug registers).  Memory then matches `s`. */
int snap__update(struct vm *vm, struct vm_snapshot *s);
/* Memory matches `s` but for what was written since: calls fn for every
 * page whose bytes now differ from `s` (gpa of the page, the live page,
 * the snapshot's page; the guest's bytes under the VMM's own ring-3 INT3s)
 * until fn returns nonzero, which it returns.  The pages stay marked
 * written: a later snap__restore still copies them. */
int snap__changed_pages(struct vm *vm, const struct vm_snapshot *s,
			int (*fn)(void *arg, uint64_t gpa, const uint8_t *now, const uint8_t *then),
			void *arg);
/* Compares the whole vCPU with `s`: GPRs (RFLAGS.RF aside), sregs (CR2
 * aside: the CPU writes it at every #PF before a handler can read it),
 * events, held IRQs, and through GET ioctls the MSRs, XSAVE, XCRs and
 * debug registers.  0 equal (a snap__restore of `s` then skips its SET
 * ioctls until the vCPU runs), 1 different (one line in why), -1 error. */
int snap__vcpu_compare(struct vm *vm, const struct vm_snapshot *s, char *why, size_t len);
/* The value `s` holds for MSR `idx`; false if it does not carry it. */
bool snap__msr(const struct vm_snapshot *s, uint32_t idx, uint64_t *val);
/* Pages the last snap__restore copied back (benchmarks, tests). */
uint64_t snap__last_restored_pages(const struct vm *vm);
/* What the last snap__restore did and what each part cost (wall clock). */
struct snap_restore_cost {
	uint64_t pages;           /* pages copied back */
	bool full_compare;        /* memory matched another snapshot: all compared */
	unsigned vcpu_ioctls;     /* SET_MSRS, SET_XSAVE, (SET_XCRS,) SET_DEBUGREGS;
				   * 0 when provably unchanged (nothing ran or
				   * wrote them since the VM last matched) */
	uint64_t mem_ns;          /* memory: dirty log, bitmap walk, page copies */
	uint64_t vcpu_ns;         /* vCPU state: those ioctls */
};
void snap__last_restore_cost(const struct vm *vm, struct snap_restore_cost *c);
/* A digest (64-bit FNV-1a) of registers, MSRs, debug registers, XSAVE
 * state (and XCRs with guest_xsave) and all of memory now. */
uint64_t vm__digest(struct vm *vm);

/* ---- debug.c: breakpoints and single-step ------------------------------- */
#define VM_MAX_BREAKPOINTS 4
/* An execution breakpoint: every arrival at gva stops (VM_EXIT_BREAKPOINT,
 * hit count + 1) before the instruction runs.  On hosts where hardware
 * breakpoints never fire in 64-bit ring 3 (QUIRK_RING3_HWBP), a user
 * address (< 0x0000800000000000) is also armed with an INT3 in guest
 * memory and the guest's #BP entry is watched; a stop there is rewound to
 * the user state at gva, so callers see the same thing (docs/vmm.md). */
int dbg__set_breakpoint(struct vm *vm, int slot, uint64_t gva);
int dbg__clear_breakpoint(struct vm *vm, int slot);
uint64_t dbg__hits(const struct vm *vm, int slot);
void dbg__reset_hits(struct vm *vm);
/* Single-step with KVM_GUESTDBG_BLOCKIRQ; TF never shows in guest state.
 * Where the host cannot step 64-bit ring-3 code (QUIRK_RING3_HWBP), a step
 * from there runs on unstepped to the next kernel entry: see below. */
int dbg__set_singlestep(struct vm *vm, bool on);
/* True when the vCPU is in 64-bit ring 3 on such a host: the next step is
 * not one instruction.  Then vmm__error() says so in one line ("... not
 * traceable in ring 3 on this host ..."). */
bool dbg__step_blind(struct vm *vm);

/* ---- inject.c: events ----------------------------------------------------- */
enum vm_event_kind { VM_EVENT_IRQ, VM_EVENT_NMI, VM_EVENT_EXCEPTION };
struct vm_event {
	enum vm_event_kind kind;
	uint8_t vector;               /* IRQ and exception */
	bool has_error_code;
	uint32_t error_code;
	bool has_payload;             /* CR2 for #PF, DR6 for #DB */
	uint64_t payload;
	/* pending: delivered when the guest can architecturally take it (IF and
	 * the interrupt shadow for IRQs, NMI blocking for NMIs).
	 * forced: delivered at the next VM entry whatever the guest state. */
	bool force;
};
int vcpu__inject(struct vm *vm, const struct vm_event *ev);
/* True if the guest could take `ev` right now without `force`; if not, a
 * reason is written to why (e.g. "IF=0", "STI/MOV SS shadow", "NMI blocked"). */
bool vcpu__can_take(struct vm *vm, const struct vm_event *ev, char *why, size_t len);
/* True if an event is still queued (pending IRQ held by the VMM, pending NMI,
 * pending or injected exception). */
bool vcpu__event_pending(struct vm *vm);

#endif /* KINJECT_VMM_H */
