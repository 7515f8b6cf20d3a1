/* SPDX-License-Identifier: MIT */
/*
 * debug.c: hardware execution breakpoints and single-step through
 * KVM_SET_GUEST_DEBUG.  The configuration is kept here and pushed to KVM
 * only when it changed.  KVM single-steps with the guest's RFLAGS.TF, so an
 * instruction that stores RFLAGS (pushf, syscall) would show TF to the
 * guest: after each step the stored copy is cleaned.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include "internal.h"

#define RFLAGS_TF (1ULL << 8)

/* A slot for an internal breakpoint (ring3.c): a free one, else the slot
 * of an emulated breakpoint (one seen stopping by INT3 first: its own
 * debug register is idle there).  -1 if none. */
static int internal_slot(struct vm *vm, unsigned taken)
{
	for (int pass = 0; pass < 3; pass++) {
		for (int i = VM_MAX_BREAKPOINTS - 1; i >= 0; i--) {
			if ((taken & (1u << i)) || i == vm->tmp_slot)
				continue;
			if ((pass == 0 && !vm->bp_on[i]) ||
			    (pass == 1 && vm->bp_on[i] && vm->r3.emul[i] && vm->r3.seen64[i]) ||
			    (pass == 2 && vm->bp_on[i] && vm->r3.emul[i]))
				return i;
		}
	}
	return -1;
}

/* Arms `addr` in some slot for the ring-3 emulation; its slot or -1. */
static int arm_internal(struct vm *vm, struct kvm_guest_debug *d, unsigned *taken,
			uint64_t addr, const char *what)
{
	int i = internal_slot(vm, *taken);

	if (i < 0)
		return vmm__fail("ring-3 breakpoint: no debug register left for the guest's %s entry "
				 "(all four slots in use)", what);
	*taken |= 1u << i;
	d->arch.debugreg[i] = addr;
	d->arch.debugreg[7] |= 1ULL << (2 * i);
	return i;
}

/* Whether ring3.c's catches (#BP and #DB entries) can be left unarmed
 * for this entry, because no INT3 or TF of ours can run in it:
 *  - an IRETQ stepped by a temporary breakpoint (dbg__step_by_bp): one
 *    IRETQ to code that is not 64-bit ring 3, and the temporary breakpoint
 *    may need the register;
 *  - a caller's single step of ring-0 code that is not an IRET or SYSRET:
 *    on kvm_pvm a step with a debug register armed costs about twice one
 *    without (trace mode's exits, 17 -> 37 us).  Not the VMM's own steps:
 *    this host loses the trap after some emulated instructions and the
 *    step runs on, maybe into ring 3; a stepping caller sees that (the
 *    engine's trace mode checks every landing and runs the case again),
 *    the VMM's own steps would not. */
static bool catches_idle(const struct vm *vm, bool step)
{
	const uint8_t *p = vm->step_insn;
	size_t op;

	if (vm->tmp_slot >= 0)
		return true;
	if (!step || vm->internal_step || (vm->run->s.regs.sregs.cs.selector & 3) || !vm->step_len ||
	    vm->step_rip != vm->run->s.regs.regs.rip)
		return false;
	op = dbg__skip_prefixes(p, vm->step_len);
	if (op >= vm->step_len || p[op] == 0xcf)                 /* IRET */
		return false;
	return !(p[op] == 0x0f && op + 1 < vm->step_len && p[op + 1] == 0x07);  /* SYSRET */
}

int dbg__sync(struct vm *vm, bool step, unsigned skip, bool force)
{
	struct kvm_guest_debug d;
	bool any_bp = false, idle = catches_idle(vm, step);

	if (ring3__prepare(vm, step))
		return -1;
	memset(&d, 0, sizeof(d));
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++) {
		if (!vm->bp_on[i] || (skip & (1u << i)))
			continue;
		any_bp = true;
		d.arch.debugreg[i] = vm->bp_addr[i];
		/* Ln enables slot i; R/Wn = 00 (execute), LENn = 00 (1 byte). */
		d.arch.debugreg[7] |= 1ULL << (2 * i);
	}
	if (vm->tmp_slot >= 0) {
		any_bp = true;
		d.arch.debugreg[vm->tmp_slot] = vm->tmp_addr;
		d.arch.debugreg[7] |= 1ULL << (2 * vm->tmp_slot);
	}
	/* Ring-3 emulation: the guest's #BP entry (and #DB entry while a
	 * stop's instruction is stepped), left out for the step past it and
	 * when idle (catches_idle). */
	unsigned taken = 0;
	uint64_t rip = vm->run->s.regs.regs.rip;
	vm->r3.bp_dr = vm->r3.db_dr = -1;
	if (vm->r3.want_bp && !(skip && rip == vm->r3.bp_entry) && !idle) {
		vm->r3.bp_dr = arm_internal(vm, &d, &taken, vm->r3.bp_entry, "#BP");
		if (vm->r3.bp_dr < 0)
			return -1;
		any_bp = true;
	}
	if (vm->r3.want_db && !(skip && rip == vm->r3.db_entry) && !idle) {
		vm->r3.db_dr = arm_internal(vm, &d, &taken, vm->r3.db_entry, "#DB");
		if (vm->r3.db_dr < 0)
			return -1;
		any_bp = true;
	}
	if (any_bp || step)
		d.control = KVM_GUESTDBG_ENABLE;
	if (any_bp)
		d.control |= KVM_GUESTDBG_USE_HW_BP;
	if (step)
		d.control |= KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
	if (!force && vm->dbg_valid && !memcmp(&d, &vm->dbg_applied, sizeof(d)))
		return 0;
	if (ioctl(vm->vcpu_fd, KVM_SET_GUEST_DEBUG, &d) < 0)
		return vmm__fail("KVM_SET_GUEST_DEBUG(control 0x%x): %s", d.control, strerror(errno));
	vm->dbg_applied = d;
	vm->dbg_valid = true;
	return 0;
}

int dbg__set_breakpoint(struct vm *vm, int slot, uint64_t gva)
{
	if (slot < 0 || slot >= VM_MAX_BREAKPOINTS)
		return vmm__fail("breakpoint slot %d: must be 0-%d", slot, VM_MAX_BREAKPOINTS - 1);
	if (vm->bp_on[slot] && vm->bp_addr[slot] == gva)
		return 0;
	vm->bp_on[slot] = true;
	vm->bp_addr[slot] = gva;
	ring3__slot_changed(vm, slot);
	return 0;
}

int dbg__clear_breakpoint(struct vm *vm, int slot)
{
	if (slot < 0 || slot >= VM_MAX_BREAKPOINTS)
		return vmm__fail("breakpoint slot %d: must be 0-%d", slot, VM_MAX_BREAKPOINTS - 1);
	if (!vm->bp_on[slot])
		return 0;
	vm->bp_on[slot] = false;
	ring3__slot_changed(vm, slot);
	return 0;
}

uint64_t dbg__hits(const struct vm *vm, int slot)
{
	if (slot < 0 || slot >= VM_MAX_BREAKPOINTS)
		return 0;
	return vm->bp_hits[slot];
}

void dbg__reset_hits(struct vm *vm)
{
	memset(vm->bp_hits, 0, sizeof(vm->bp_hits));
}

bool dbg__step_blind(struct vm *vm)
{
	if (!ring3__cannot_step(vm))
		return false;
	vmm__fail("single-step at 0x%llx: not traceable in ring 3 on this host (this KVM does not "
		  "step 64-bit ring-3 code: it runs until the next kernel entry)",
		  (unsigned long long)vm->run->s.regs.regs.rip);
	return true;
}

int dbg__set_singlestep(struct vm *vm, bool on)
{
	if (vm->singlestep != on) {
		vm->singlestep = on;
		}
	return 0;
}

/* Skips legacy and REX prefixes; returns the opcode's offset. */
size_t dbg__skip_prefixes(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = p[i];
		if (b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e ||
		    b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65 ||
		    (b >= 0x40 && b <= 0x4f))
			i++;
		else
			break;
	}
	return i;
}

/* Single-steps an IRETQ with a breakpoint on its return address instead
 * of TF: stepping IRETQ here executes one more instruction before the
 * trap.  Returns true when the temporary breakpoint is set up. */
bool dbg__step_by_bp(struct vm *vm)
{
	const uint8_t *insn = vm->step_insn;
	size_t op = dbg__skip_prefixes(insn, vm->step_len);
	bool rex_w = false;

	for (size_t i = 0; i < op; i++)
		if ((insn[i] & 0xf8) == 0x48)
			rex_w = true;
	if (op >= vm->step_len || insn[op] != 0xcf || !rex_w)
		return false;
	uint64_t frame[2];           /* RIP, CS */
	if (vm__read_gva(vm, 0, vm->run->s.regs.regs.rsp, frame, sizeof(frame)))
		return false;
	uint64_t target = frame[0];
	/* Back to 64-bit ring 3 on a host whose breakpoints never fire there
	 * (ring3.c): a debug register there would only take one the VMM's
	 * own catches may need; the plain step runs on to the next entry. */
	if (ring3__cannot_stop(vm, (uint16_t)frame[1]))
		return false;
	/* The VMM's own step (past a breakpoint at the IRETQ, or to an
	 * interrupt window): a caller's breakpoint there stops it (and is
	 * reported as what it is). */
	for (int i = 0; vm->internal_step && i < VM_MAX_BREAKPOINTS; i++)
		if (vm->bp_on[i] && vm->bp_addr[i] == target && !(vm->entry_skip & (1u << i)))
			return true;
	for (int i = VM_MAX_BREAKPOINTS - 1; i >= 0; i--) {
		if (!vm->bp_on[i]) {
			vm->tmp_slot = i;
			vm->tmp_addr = target;
			return true;
		}
	}
	return false;         /* all four slots are the caller's: plain step */
}

/* After a step that transferred control through the IDT (an exception
 * the instruction raised, INT n, an event delivered on that entry), the
 * CPU pushed RFLAGS with our TF.  Find that frame near the new RSP by what
 * it must hold (CS and RFLAGS of the stepped instruction, a RIP at or just
 * after it) and clean it. */
static void fixup_frame(struct vm *vm)
{
	const struct kvm_regs *r = &vm->run->s.regs.regs;
	uint64_t w[12];
	const uint64_t ign = RFLAGS_TF | (1ULL << 16) /* RF */;

	if (r->rip >= vm->step_rip && r->rip < vm->step_rip + 16)
		return;                              /* no control transfer */
	if (vm__read_gva(vm, 0, r->rsp, w, sizeof(w)))
		return;
	for (int i = 0; i + 2 < 12; i++) {
		if (w[i] - vm->step_rip > 15 || w[i + 1] != vm->step_cs)
			continue;
		uint64_t fl = w[i + 2];
		if (!(fl & RFLAGS_TF) || (fl & ~ign & 0x3fffff) != (vm->step_rflags & ~ign & 0x3fffff))
			continue;
		fl &= ~RFLAGS_TF;
		vm__write_gva(vm, 0, r->rsp + (i + 2) * 8, &fl, sizeof(fl));
		return;
	}
}

void dbg__fixup_step(struct vm *vm)
{
	struct kvm_regs *r = &vm->run->s.regs.regs;
	const uint8_t *insn = vm->step_insn;
	size_t n = vm->step_len;
	size_t op = dbg__skip_prefixes(insn, n);

	if (op >= n)
		return;
	if (insn[op] == 0x9c) {
		/* pushf/pushfq: the pushed image is at the new RSP (TF is bit 8,
		 * in the low word for either operand size). */
		uint16_t w;
		if (vm__read_gva(vm, 0, r->rsp, &w, sizeof(w)) == 0 && (w & RFLAGS_TF)) {
			w &= ~RFLAGS_TF;
			vm__write_gva(vm, 0, r->rsp, &w, sizeof(w));
		}
	} else if (insn[op] == 0x0f && op + 1 < n && insn[op + 1] == 0x05) {
		/* syscall saved RFLAGS in R11. */
		if (r->r11 & RFLAGS_TF) {
			r->r11 &= ~RFLAGS_TF;
			vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS);
		}
	} else {
		fixup_frame(vm);
	}
}
