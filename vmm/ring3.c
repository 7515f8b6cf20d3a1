/* SPDX-License-Identifier: MIT */
/*
 * ring3.c: execution breakpoints in 64-bit ring 3 on hosts whose hardware
 * breakpoints never fire there (QUIRK_RING3_HWBP: kvm_pvm).  What does work
 * there: hardware breakpoints at CPL 0, and an INT3 executed in 64-bit
 * ring 3 is delivered to the guest's IDT vector 3 with its frame; TF set
 * in the user's RFLAGS traps to the guest's vector 1.  So:
 *
 *  - arm: the slot keeps its debug register at the address (compat-mode
 *    and ring-0 arrivals still stop by hardware; the first such hit makes
 *    the slot plain hardware for good), and an INT3 goes at the address
 *    (through guest memory, host-dirty tracked, original byte kept).  One
 *    more debug register watches the guest's #BP entry (IDT gate 3).
 *  - stop: at the #BP entry the frame at RSP is RIP, CS, RFLAGS, RSP, SS.
 *    RIP = address + 1 and CS RPL 3 with our INT3 there: put the byte
 *    back and rewind the vCPU to the user state of the frame (CS and SS
 *    caches from their descriptors; GPRs, DS/ES/FS/GS and their bases
 *    were not touched yet), then report the slot.  The five words the
 *    CPU pushed stay below the entry stack's pointer: that stack (TSS
 *    RSP0 or an IST stack) is empty whenever ring 3 runs, nobody reads
 *    them.  Any other #BP (the guest's own INT3) goes on to the guest.
 *  - resume: the instruction runs once with TF set in RFLAGS, a debug
 *    register on the guest's #DB entry catches the trap, the vCPU is
 *    rewound to the frame (TF cleared, a PUSHF image cleaned) and the
 *    INT3 goes back.  If an event is delivered on the resuming entry, it
 *    comes first and the return to the address is a new arrival, as on
 *    hardware: the INT3 goes back at once.
 *
 * The internal debug registers take free slots first, then the slot of a
 * breakpoint already seen stopping by INT3, then any emulated slot's.
 *
 * sysemu.c's sites (SYSCALL / INT n the host mis-delivers) get INT3s the
 * same way, for good while the guest has a #BP gate: at the #BP entry the
 * vCPU is rewound to the user state at the site and sysemu.c runs the
 * instruction; a caller's breakpoint at a site stops first, and resuming
 * from that stop runs the instruction the same way (no TF step).
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include "internal.h"
#include "quirks.h"

#define RFLAGS_TF  (1ULL << 8)
#define INT3       0xcc

static bool in_ring3_64(struct vm *vm)
{
	const struct kvm_sregs *s = &vm->run->s.regs.sregs;

	return (s->cs.selector & 3) == 3 && s->cs.l;
}

bool ring3__cannot_step(struct vm *vm)
{
	return in_ring3_64(vm) && !quirks__works(QUIRK_RING3_HWBP);
}

bool ring3__cannot_stop(struct vm *vm, uint16_t cs)
{
	struct kvm_segment seg;

	return (cs & 3) == 3 && !vcpu__segment(vm, cs, &seg) && seg.l &&
	       !quirks__works(QUIRK_RING3_HWBP);
}

void ring3__slot_changed(struct vm *vm, int slot)
{
	struct ring3_state *r3 = &vm->r3;

	r3->seen64[slot] = false;
	r3->emul[slot] = vm->bp_on[slot] && vm->bp_addr[slot] < USER_HALF_END &&
			 !quirks__works(QUIRK_RING3_HWBP);
	if (r3->emul[slot])
		r3->active = true;
}

static struct ring3_patch *patch_at(struct vm *vm, uint64_t gva)
{
	for (int i = 0; i < RING3_PATCHES; i++)
		if (vm->r3.patch[i].used && vm->r3.patch[i].gva == gva)
			return &vm->r3.patch[i];
	return NULL;
}

static uint8_t *patch_byte(struct vm *vm, const struct ring3_patch *p)
{
	return vm__gpa(vm, p->gpa, 1);
}

/* Should our INT3 be in patch p now? */
static bool patch_wanted(struct vm *vm, const struct ring3_patch *p)
{
	const struct ring3_state *r3 = &vm->r3;

	if (r3->step && r3->step_addr == p->gva)
		return false;
	if (p->site && r3->bp_entry)
		return true;
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		if (vm->bp_on[i] && r3->emul[i] && vm->bp_addr[i] == p->gva)
			return true;
	return false;
}

/* A patch for gva, translated under the current CR3; NULL if the address
 * is not mapped now (tried again at the next entry). */
static struct ring3_patch *patch_new(struct vm *vm, uint64_t gva)
{
	struct ring3_patch *p = NULL;
	uint64_t gpa;

	if (vm__gva_to_gpa(vm, 0, gva, &gpa) || !vm__gpa(vm, gpa, 1))
		return NULL;
	for (int i = 0; i < RING3_PATCHES && !p; i++)
		if (!vm->r3.patch[i].used)
			p = &vm->r3.patch[i];
	/* Full: reuse one that is not wanted and holds the guest's byte. */
	for (int i = 0; i < RING3_PATCHES && !p; i++) {
		struct ring3_patch *q = &vm->r3.patch[i];
		if (!patch_wanted(vm, q) && *patch_byte(vm, q) != INT3)
			p = q;
	}
	if (!p)
		return NULL;
	if (p->site)
		vm->r3.sites_planted = false;   /* a site loses its patch (no #BP gate now) */
	p->used = true;
	p->site = false;
	p->gva = gva;
	p->gpa = gpa;
	p->orig = *(uint8_t *)vm__gpa(vm, gpa, 1);
	return p;
}

/* Memory as the slots want it: our INT3 where wanted, the guest's byte
 * everywhere else (also after a snapshot restore brought back either).
 * Returns true if some INT3 is in place. */
static bool fix_memory(struct vm *vm)
{
	struct ring3_state *r3 = &vm->r3;
	bool any = false;

	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		if (vm->bp_on[i] && r3->emul[i] && !patch_at(vm, vm->bp_addr[i]))
			patch_new(vm, vm->bp_addr[i]);
	/* sysemu.c's sites: a patch each, once (a site's patch is never
	 * reused); one not mapped yet is tried again under another CR3. */
	uint64_t cr3 = vm->run->s.regs.sregs.cr3;
	if (!r3->sites_planted && r3->bp_entry && cr3 != r3->sites_cr3 && sysemu__active(vm)) {
		bool all = true;
		for (size_t i = 0; i < vm->sys.nsites; i++) {
			struct ring3_patch *p = patch_at(vm, vm->sys.site[i]);
			if (!p)
				p = patch_new(vm, vm->sys.site[i]);
			if (p)
				p->site = true;
			all &= p != NULL;
		}
		r3->sites_planted = all;
		r3->sites_cr3 = cr3;
	}
	for (int i = 0; i < RING3_PATCHES; i++) {
		struct ring3_patch *p = &r3->patch[i];
		if (!p->used)
			continue;
		uint8_t b = *patch_byte(vm, p), want = patch_wanted(vm, p) ? INT3 : p->orig;
		if (want == INT3 && b != INT3)
			p->orig = b;            /* what the guest has there now */
		if (b != want)
			vm__write_gpa(vm, p->gpa, &want, 1);
		any |= want == INT3;
	}
	return any;
}


static void read_gates(struct vm *vm)
{
	struct ring3_state *r3 = &vm->r3;
	uint64_t base = vm->run->s.regs.sregs.idt.base;

	if (r3->idt_base == base && r3->bp_entry && r3->db_entry)
		return;
	r3->idt_base = base;
	r3->bp_entry = vcpu__gate_handler(vm, 0, 3);
	r3->db_entry = vcpu__gate_handler(vm, 0, 1);
}

int ring3__prepare(struct vm *vm, bool kvm_step)
{
	struct ring3_state *r3 = &vm->r3;
	struct kvm_regs *r = &vm->run->s.regs.regs;

	r3->want_bp = r3->want_db = false;
	if (!r3->active)
		return 0;
	/* Resuming from a ring-3 stop with nothing delivered first: the
	 * instruction runs once with TF before its INT3 goes back -- or, at
	 * a sysemu site, is run by the VMM (its INT3 stays). */
	if (r3->stopped) {
		uint64_t a = r3->stopped;
		struct ring3_patch *p;

		r3->stopped = 0;
		read_gates(vm);
		p = patch_at(vm, a);
		if (r->rip == a && in_ring3_64(vm) && !r3->step && p && p->site &&
		    !vcpu__event_due(&vm->run->s.regs.events)) {
			if (sysemu__run_site(vm, a, p->orig))
				return -1;
		} else if (r->rip == a && in_ring3_64(vm) && !kvm_step && !r3->step && r3->db_entry &&
		    !vcpu__event_due(&vm->run->s.regs.events) && p && patch_wanted(vm, p)) {
			uint64_t gpa;
			r3->step = true;
			r3->step_addr = a;
			r3->step_user_tf = r->rflags & RFLAGS_TF;
			r3->step_len = 0;
			if (vm__gva_to_gpa(vm, 0, a, &gpa) == 0) {
				size_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
				n = n < sizeof(r3->step_insn) ? n : sizeof(r3->step_insn);
				const void *p = vm__gpa(vm, gpa, n);
				if (p) {
					memcpy(r3->step_insn, p, n);
					r3->step_len = n;
				}
			}
			/* The trap sets DR6.BS: the guest's DR6 is put back. */
			struct kvm_debugregs dr;
			r3->step_dr6_ok = ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &dr) == 0;
			r3->step_dr6 = dr.dr6;
			r->rflags |= RFLAGS_TF;
			vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS);
		}
	}
	bool need = r3->step || vm->sys.nsites;
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		need |= vm->bp_on[i] && r3->emul[i];
	if (need)
		read_gates(vm);
	/* No usable #BP gate (no IDT): plain hardware breakpoints.  (Without
	 * a #DB gate the resume does not step: the INT3 goes back at once and
	 * the instruction at the stop traps again.) */
	if (need && !r3->bp_entry)
		for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
			r3->emul[i] = false;
	r3->want_bp = fix_memory(vm);
	r3->want_db = r3->step;
	return 0;
}

/* The interrupt frame at RSP (no error code): RIP, CS, RFLAGS, RSP, SS. */
struct frame {
	uint64_t rip, cs, rflags, rsp, ss;
};

static bool read_frame(struct vm *vm, struct frame *f)
{
	return vm__read_gva(vm, 0, vm->run->s.regs.regs.rsp, f, sizeof(*f)) == 0 &&
	       (f->cs & 3) == 3;
}

/* The vCPU back in the interrupted user context (GPRs untouched). */
static int rewind_user(struct vm *vm, const struct frame *f, uint64_t rip, uint64_t rflags)
{
	if (vcpu__enter_frame(vm, rip, (uint16_t)f->cs, rflags, f->rsp, (uint16_t)f->ss))
		return vmm__fail("ring-3 breakpoint: %s", vmm__error());
	return 0;
}

static int fail_exit(struct vm *vm, struct vm_exit *e)
{
	e->kind = VM_EXIT_UNEXPECTED;
	snprintf(e->reason, sizeof(e->reason), "%s", vmm__error());
	return 0;
}

/* At the #BP entry, our INT3 at a sysemu site no caller stops at: the
 * vCPU back at the site, its instruction run.  1 = consumed, 0 = `e`
 * filled (a caller's single step ends here, or a failure). */
static int site_hit(struct vm *vm, struct vm_exit *e, const struct frame *f,
		    const struct ring3_patch *p)
{
	if (rewind_user(vm, f, p->gva, f->rflags) || sysemu__run_site(vm, p->gva, p->orig))
		return fail_exit(vm, e);
	return sysemu__report(vm, p->gva, e) ? 0 : 1;
}

/* At the #BP entry: our INT3?  0 = stop reported (or `e` filled), 1 =
 * consumed (a sysemu site), -1 = not ours. */
static int bp_entry_hit(struct vm *vm, struct vm_exit *e)
{
	struct ring3_state *r3 = &vm->r3;
	struct frame f;
	unsigned bits = 0;

	if (!read_frame(vm, &f))
		return -1;
	uint64_t a = f.rip - 1;
	struct ring3_patch *p = patch_at(vm, a);
	if (!p || *patch_byte(vm, p) != INT3 || p->orig == INT3 || !patch_wanted(vm, p))
		return -1;
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		if (vm->bp_on[i] && r3->emul[i] && vm->bp_addr[i] == a)
			bits |= 1u << i;
	if (!bits)
		return site_hit(vm, e, &f, p);
	vm__write_gpa(vm, p->gpa, &p->orig, 1);
	if (rewind_user(vm, &f, a, f.rflags))
		return fail_exit(vm, e);
	e->kind = VM_EXIT_BREAKPOINT;
	e->rip = e->debug.pc = a;
	e->debug.dr6 = (e->debug.dr6 & ~0xfULL) | bits;
	e->debug.slot = __builtin_ctz(bits);
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++) {
		if (bits & (1u << i)) {
			vm->bp_hits[i]++;
			r3->seen64[i] = true;
		}
	}
	r3->stopped = a;
	return 0;
}

/* At the #DB entry: the trap after our TF step?  1 = consumed, -1 = not. */
static int db_entry_hit(struct vm *vm, struct vm_exit *e)
{
	struct ring3_state *r3 = &vm->r3;
	struct frame f;

	if (!r3->step || !read_frame(vm, &f) || !(f.rflags & RFLAGS_TF))
		return -1;
	r3->step = false;                /* the INT3 goes back at the next entry */
	if (r3->step_user_tf)
		return -1;                   /* the guest's own TF: its #DB */
	if (rewind_user(vm, &f, f.rip, f.rflags & ~RFLAGS_TF))
		return fail_exit(vm, e);
	struct kvm_debugregs dr;
	if (r3->step_dr6_ok && ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &dr) == 0 &&
	    dr.dr6 != r3->step_dr6) {
		dr.dr6 = r3->step_dr6;
		if (ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &dr) < 0) {
			vmm__fail("ring-3 breakpoint: KVM_SET_DEBUGREGS (DR6 back): %s", strerror(errno));
			return fail_exit(vm, e);
		}
	}
	/* A PUSHF stored our TF. */
	size_t op = dbg__skip_prefixes(r3->step_insn, r3->step_len);
	if (op < r3->step_len && r3->step_insn[op] == 0x9c) {
		uint16_t w;
		if (vm__read_gva(vm, 0, f.rsp, &w, sizeof(w)) == 0 && (w & RFLAGS_TF)) {
			w &= ~RFLAGS_TF;
			vm__write_gva(vm, 0, f.rsp, &w, sizeof(w));
		}
	}
	return 1;
}

int ring3__debug_exit(struct vm *vm, struct vm_exit *e)
{
	struct ring3_state *r3 = &vm->r3;
	struct kvm_debug_exit_arch *d = &vm->run->debug.arch;
	uint64_t rip = vm->run->s.regs.regs.rip;
	unsigned bits = d->dr6 & 0xf, ours = 0, theirs;

	if (!r3->active)
		return -1;
	if (r3->bp_dr >= 0 && rip == r3->bp_entry)
		ours |= 1u << r3->bp_dr;
	if (r3->db_dr >= 0 && rip == r3->db_entry)
		ours |= 1u << r3->db_dr;
	ours &= bits;
	theirs = bits & ~ours;
	/* A hardware stop at an emulated slot's own address (compat mode or
	 * ring 0): that code does not run in 64-bit ring 3, the slot is plain
	 * hardware from now on (and its INT3 must not run on the step-over). */
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++) {
		if ((theirs & (1u << i)) && r3->emul[i] && vm->bp_addr[i] == rip) {
			r3->emul[i] = false;
			fix_memory(vm);
		}
	}
	if (!ours)
		return -1;
	int r = -1;
	if (r3->bp_dr >= 0 && (ours & (1u << r3->bp_dr)))
		r = bp_entry_hit(vm, e);
	if (r < 0 && r3->db_dr >= 0 && (ours & (1u << r3->db_dr)))
		r = db_entry_hit(vm, e);
	if (r >= 0)
		return r;
	/* Not ours: the guest takes its own #BP/#DB.  Report a caller's
	 * breakpoint at this very address, else step past ours. */
	d->dr6 &= ~(uint64_t)ours;
	e->debug.dr6 = d->dr6;
	if (theirs)
		return -1;
	vm->step_internal |= ours;
	return 1;
}
