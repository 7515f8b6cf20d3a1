/* SPDX-License-Identifier: MIT */
/*
 * sysemu.c: SYSCALL and INT n from ring 3 on hosts that mis-deliver them
 * (QUIRK_SYSCALL, QUIRK_INT80: kvm_pvm).  What that host does, measured
 * with a test guest (tests/guests/sysemu.S, and the probes in quirks.c):
 *
 *  - A 64-bit ring-3 SYSCALL does RCX = next RIP, R11 = RFLAGS, RFLAGS &=
 *    ~IA32_FMASK and RIP = LSTAR, but keeps the user's CS and SS (CPL 3).
 *    A kernel's LSTAR is on a supervisor page, so the fetch there faults:
 *    #PF (error code P|U|I, CR2 = LSTAR) through the guest's IDT, frame
 *    RIP = LSTAR, CS/SS/RSP the user's, RFLAGS the masked value with RF.
 *    A hardware breakpoint at LSTAR does not fire there (64-bit CPL 3).
 *    SYSRET from CPL 0 works.  Compat-mode SYSCALL raises #UD, which is
 *    what the architecture says for the Intel vendor the guest sees.
 *  - INT n (and INT3 in compat mode) from ring 3 raises #UD with RIP at
 *    the instruction, whatever the gate's DPL.  Re-delivered by the VMM as
 *    an injected software interrupt with RIP already past the instruction,
 *    the guest gets exactly the INT n frame (the injection applies no
 *    instruction length here, so RIP is advanced first).
 *
 * So a debug register watches the guest's #PF entry and #UD entry (IDT
 * gates 14 and 6, CPL 0 code: hardware breakpoints fire there).  At the
 * #PF entry, a frame from ring 3 with RIP = CR2 = LSTAR, a fetch fault and
 * `0f 05` just before RCX is a mis-delivered SYSCALL: the vCPU gets the
 * state the SDM's SYSCALL operation gives from the user state (RIP =
 * LSTAR, CS = STAR[47:32] and SS = STAR[47:32] + 8 flat at DPL 0, RFLAGS
 * the masked value without RF, R11 = RFLAGS with RF cleared, RCX and RSP
 * as they are).  At the #UD entry, a frame from ring 3 at `cd ib` (or
 * `cc`) is INT n: the vCPU is rewound to the user state, the gate is
 * checked as the SDM says for INT n (#GP(n*8+2) past the IDT limit, for a
 * gate that is not an interrupt/trap gate, or with DPL < CPL; #NP(n*8+2)
 * when not present), and the interrupt (or that exception, with RIP at
 * the instruction) is injected.  Anything else goes on to the guest.
 *
 * What the broken delivery leaves behind: the frame the CPU pushed (5 or
 * 6 words) stays below the pointer of the stack it went to (TSS RSP0, or
 * the gate's IST stack): that stack is empty whenever ring 3 runs, and
 * nobody reads below its top, as with ring3.c's #BP frames.  CR2 keeps
 * LSTAR after an emulated SYSCALL (the old value is gone when the #PF is
 * delivered): hardware would leave it alone.  A kernel reads CR2 only in
 * its #PF handler, where the CPU has just written it, so no guest can
 * tell.
 *
 * Debug registers: the two catches take free slots after the caller's and
 * ring3.c's.  A caller breakpoint already at the entry serves as the
 * catch.  With no slot free the catch is not armed for that entry: a
 * mis-delivered INT n then reaches the guest's #UD handler (the harness
 * keeps the guest's int80=0 fallback on), a SYSCALL the guest's #PF
 * handler as a fault -- why the emulation is opt-in (docs/vmm.md).  A
 * catch that was not ours is stepped past: the next entry single-steps
 * (vm->step_internal, read by run.c's prepare_entry) with the catch left
 * unarmed at that RIP
 * (sys.past); if an event is delivered on that entry instead, the catch
 * is back at the next exit.
 *
 * Cost: nothing per exit; a guest #PF or #UD costs two exits (the catch,
 * the step past it), an emulated SYSCALL one exit and one KVM_GET_MSRS.
 */
#include <string.h>
#include "internal.h"
#include "quirks.h"

#define RFLAGS_TF   (1ULL << 8)
#define RFLAGS_RF   (1ULL << 16)
#define PF_USER     (1ULL << 2)
#define PF_FETCH    (1ULL << 4)
#define MSR_STAR    0xc0000081
#define MSR_LSTAR   0xc0000082
#define DR6_BS      (1ULL << 14)
#define GATE_INTR   0xe
#define GATE_TRAP   0xf

void sysemu__force(struct vm *vm, bool syscall, bool intn)
{
	vm->sys.checked = true;
	vm->sys.syscall = syscall;
	vm->sys.intn = intn;
}

static bool active(struct vm *vm)
{
	struct sysemu_state *s = &vm->sys;

	if (!s->checked) {
		s->checked = true;
		s->syscall = quirks__state(QUIRK_SYSCALL) == QUIRK_EMULATED;
		s->intn = quirks__state(QUIRK_INT80) == QUIRK_EMULATED;
	}
	return s->syscall || s->intn;
}

bool sysemu__arm(struct vm *vm, struct kvm_guest_debug *d, unsigned skip)
{
	bool armed = false;

	struct sysemu_state *s = &vm->sys;
	__u64 *dr = d->arch.debugreg;
	uint64_t rip = vm->run->s.regs.regs.rip;

	/* Leaving a catch that was not ours: not armed at this RIP for this
	 * entry (stepped past when run.c steps over our slot, see below). */
	bool past = s->past && s->past == rip;
	s->past = 0;
	s->dr[SYSEMU_PF] = s->dr[SYSEMU_UD] = -1;
	if (!active(vm))
		return false;
	/* The gates are read again when the IDT moves (or was not readable
	 * yet: before the guest's LIDT the boot IDT is empty). */
	uint64_t base = vm->run->s.regs.sregs.idt.base;
	if (s->idt_base != base || !s->entry[SYSEMU_PF] || !s->entry[SYSEMU_UD]) {
		s->idt_base = base;
		s->entry[SYSEMU_PF] = s->syscall ? vcpu__gate_handler(vm, 0, 14) : 0;
		s->entry[SYSEMU_UD] = s->intn ? vcpu__gate_handler(vm, 0, 6) : 0;
	}
	for (int k = 0; k < SYSEMU_GATES; k++) {
		uint64_t a = s->entry[k];
		int slot = -1;

		if (!a || ((skip || past) && rip == a))
			continue;
		for (int i = 0; i < VM_MAX_BREAKPOINTS && slot < 0; i++)
			if ((dr[7] & (1ULL << (2 * i))) && dr[i] == a)
				slot = i;       /* already watched (the caller's) */
		for (int i = VM_MAX_BREAKPOINTS - 1; i >= 0 && slot < 0; i--)
			if (!(dr[7] & (1ULL << (2 * i))))
				slot = i;
		/* No slot free: the catch is not armed.  (Standing in for a
		 * caller's breakpoint just past the entry would miss the
		 * arrivals there that do not pass the entry -- an IRET back
		 * into the stub -- and the harness judges those.) */
		if (slot < 0)
			continue;
		dr[slot] = a;
		dr[7] |= 1ULL << (2 * slot);
		s->dr[k] = slot;
		armed = true;
	}
	return armed;
}

/* The vCPU's state as the SDM's SYSCALL leaves it, if the #PF frame at
 * RSP is a mis-delivered one.  True when done. */
static bool catch_syscall(struct vm *vm)
{
	struct kvm_regs *r = &vm->run->s.regs.regs;
	struct kvm_sregs *sr = &vm->run->s.regs.sregs;
	uint64_t f[6];          /* error code, RIP, CS, RFLAGS, RSP, SS */
	uint8_t insn[2];

	if (vm__read_gva(vm, 0, r->rsp, f, sizeof(f)) || (f[2] & 3) != 3 ||
	    (f[0] & (PF_USER | PF_FETCH)) != (PF_USER | PF_FETCH) || f[1] != sr->cr2 ||
	    vm__read_gva(vm, 0, r->rcx - 2, insn, 2) || insn[0] != 0x0f || insn[1] != 0x05)
		return false;
	/* Only now the MSRs (one ioctl): a user fetch fault at RCX-after-a-
	 * SYSCALL is rare enough. */
	static const uint32_t idx[2] = { MSR_STAR, MSR_LSTAR };
	uint64_t msr[2];
	if (vcpu__get_msrs(vm, idx, msr, 2) || f[1] != msr[1])
		return false;
	/* Flat segments at DPL 0, as SYSCALL loads them (not from the GDT). */
	uint16_t sel = (uint16_t)(msr[0] >> 32) & 0xfffc;
	struct kvm_segment cs = {
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = 11, .present = 1,
		.dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment ss = {
		.base = 0, .limit = 0xffffffff, .selector = (uint16_t)(sel + 8), .type = 3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	sr->cs = cs;
	sr->ss = ss;
	r->rip = msr[1];
	r->rsp = f[4];
	/* The frame's RFLAGS is the masked value plus the fault's RF. */
	r->rflags = f[3] & ~RFLAGS_RF;
	r->r11 &= ~RFLAGS_RF;
	/* KVM's single-step TF ran in ring 3 and landed in R11: the user's
	 * TF is what the step started with. */
	if (vm->singlestep || vm->internal_step)
		r->r11 = (r->r11 & ~RFLAGS_TF) | (vm->step_rflags & RFLAGS_TF);
	vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	vm->sys.syscalls++;
	return true;
}

/* The user state of the #UD frame at RSP with RIP `rip` and RFLAGS
 * `rflags` (GPRs were not touched by the delivery). */
static bool rewind_user(struct vm *vm, const uint64_t *f, uint64_t rip, uint64_t rflags)
{
	return vcpu__enter_frame(vm, rip, (uint16_t)f[1], rflags, f[3], (uint16_t)f[4]) == 0;
}

/* INT n / INT3 behind a ring-3 #UD: delivered the SDM way.  True when
 * done. */
static bool catch_int(struct vm *vm)
{
	struct kvm_regs *r = &vm->run->s.regs.regs;
	struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	uint64_t f[5];          /* RIP, CS, RFLAGS, RSP, SS */
	uint8_t insn[15];
	size_t op, len;
	unsigned vec;

	if (vm__read_gva(vm, 0, r->rsp, f, sizeof(f)) || (f[1] & 3) != 3)
		return false;
	/* Up to 15 bytes, as far as they are readable (the page may end). */
	size_t n = 0;
	while (n < sizeof(insn) && vm__read_gva(vm, 0, f[0] + n, &insn[n], 1) == 0)
		n++;
	op = dbg__skip_prefixes(insn, n);
	if (op < n && insn[op] == 0xcc) {
		vec = 3;
		len = op + 1;
	} else if (op + 1 < n && insn[op] == 0xcd) {
		vec = insn[op + 1];
		len = op + 2;
	} else {
		return false;
	}
	struct kvm_segment ucs;
	if (vcpu__segment(vm, (uint16_t)f[1], &ucs))
		return false;
	bool compat = !ucs.l;
	/* The gate, checked as INT n does (SDM: INT n, IA-32e mode). */
	struct idt_gate g;
	const struct kvm_dtable *idt = &vm->run->s.regs.sregs.idt;
	uint32_t err = (vec << 3) | 2;        /* IDT bit: the gate of vector n */
	int fault = -1;
	if ((uint64_t)vec * 16 + 15 > idt->limit || vcpu__idt_gate(vm, 0, vec, &g))
		fault = 13;
	else if ((g.type != GATE_INTR && g.type != GATE_TRAP) || g.dpl < 3)
		fault = 13;
	else if (!g.present)
		fault = 11;
	/* A stop of ring3.c being stepped over this very instruction: it
	 * has run once now, without a #DB (delivery clears TF), so the step
	 * is done and its TF must not reach the frame. */
	uint64_t fl = f[2];
	struct ring3_state *r3 = &vm->r3;
	if (r3->step && r3->step_addr == f[0] && !r3->step_user_tf) {
		fl &= ~RFLAGS_TF;
		r3->step = false;
	}
	if (fault >= 0) {
		/* A fault: RIP at the instruction, RF in the image as the #UD
		 * frame has it. */
		if (!rewind_user(vm, f, f[0], fl))
			return false;
		memset(&ev->exception, 0, sizeof(ev->exception));
		ev->exception.injected = 1;
		ev->exception.nr = (uint8_t)fault;
		ev->exception.has_error_code = 1;
		ev->exception.error_code = err;
	} else {
		/* A software interrupt: the frame's RIP is the next one (the
		 * injection adds no length here); RF clear, as at any
		 * instruction boundary in ring 3. */
		uint64_t next = f[0] + len;
		if (compat)
			next = (uint32_t)next;
		if (!rewind_user(vm, f, next, fl & ~RFLAGS_RF))
			return false;
		ev->interrupt.injected = 1;
		ev->interrupt.nr = (uint8_t)vec;
		ev->interrupt.soft = 1;
	}
	vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
	vm->sys.ints++;
	return true;
}

int sysemu__debug_exit(struct vm *vm, struct vm_exit *e)
{
	struct sysemu_state *s = &vm->sys;
	struct kvm_debug_exit_arch *d = &vm->run->debug.arch;
	uint64_t rip = vm->run->s.regs.regs.rip;
	unsigned ours = 0;
	bool done = false;

	if (!s->syscall && !s->intn)
		return -1;
	if (rip == s->entry[SYSEMU_PF] && s->syscall) {
		done = catch_syscall(vm);
		if (s->dr[SYSEMU_PF] >= 0)
			ours |= 1u << s->dr[SYSEMU_PF];
	} else if (rip == s->entry[SYSEMU_UD] && s->intn) {
		done = catch_int(vm);
		if (s->dr[SYSEMU_UD] >= 0)
			ours |= 1u << s->dr[SYSEMU_UD];
	} else {
		return -1;
	}
	if (done) {
		/* The entry was never reached architecturally: no caller hit
		 * there.  A caller's step ends where the instruction took
		 * the vCPU (LSTAR; an injected interrupt is delivered and
		 * stepped on the next entry). */
		if (vm->singlestep && !vm->internal_step && !vm->run->s.regs.events.interrupt.injected &&
		    !vm->run->s.regs.events.exception.injected) {
			e->kind = VM_EXIT_SINGLESTEP;
			e->rip = e->debug.pc = vm->run->s.regs.regs.rip;
			e->debug.dr6 = DR6_BS;
			return 0;
		}
		return 1;
	}
	/* Not ours: the guest takes its own #PF/#UD.  Our slot (possibly
	 * standing in for a caller's just past the entry) is stepped past;
	 * anything else in DR6 is handled as usual. */
	ours &= (unsigned)d->dr6 & 0xf;
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		if ((ours & (1u << i)) && vm->bp_on[i] && vm->bp_addr[i] == rip)
			ours &= ~(1u << i);        /* the caller's own breakpoint */
	if (!ours)
		return -1;
	d->dr6 &= ~(uint64_t)ours;
	e->debug.dr6 = d->dr6;
	if ((d->dr6 & 0xf) || (d->dr6 & DR6_BS))
		return -1;
	vm->step_internal |= ours;
	s->past = rip;
	return 1;
}
