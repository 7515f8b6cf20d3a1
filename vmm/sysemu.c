/* SPDX-License-Identifier: MIT */
/*
 * sysemu.c: SYSCALL and INT n from 64-bit ring 3 on hosts that mis-deliver
 * them (QUIRK_SYSCALL, QUIRK_INT80: kvm_pvm).  What that host does,
 * measured with the quirk probes (quirks.c) and a test guest
 * (tests/guests/sysemu.S):
 *
 *  - A 64-bit ring-3 SYSCALL does RCX = next RIP, R11 = RFLAGS, RFLAGS &=
 *    ~IA32_FMASK and RIP = LSTAR, but keeps the user's CS and SS (CPL 3).
 *    A kernel's LSTAR is on a supervisor page, so the fetch there faults:
 *    #PF through the guest's IDT, the kernel sees a user fault at LSTAR.
 *    SYSRET from CPL 0 works.  Compat-mode SYSCALL raises #UD, which is
 *    what the architecture says for the Intel vendor the guest sees.
 *  - INT n from ring 3 raises #UD at the instruction, whatever the gate.
 *
 * So the VMM runs them itself, at their sites: the caller names the user
 * addresses of the SYSCALL and INT n instructions of the guest's 64-bit
 * user code (vm__sysemu_sites; a guest lists them for its harness), and
 * each gets an INT3 the way ring3.c plants its breakpoints (through guest
 * memory, the guest's byte kept and shown to snapshot comparisons).  The
 * INT3 traps to the guest's #BP entry, where ring3.c's debug register
 * catches it and rewinds the vCPU to the user state at the site; then:
 *
 *  - `0f 05`: the vCPU gets what the SDM's SYSCALL gives from that state
 *    (RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~FMASK, CS = STAR[47:32]
 *    and SS = STAR[47:32] + 8 as flat DPL-0 segments with fixed caches,
 *    RIP = LSTAR; #UD instead if EFER.SCE is clear).  With the user's TF
 *    set, the single-step trap of the SYSCALL itself comes next, as on
 *    hardware: a #DB (DR6.BS) at LSTAR's first instruction, at CPL 0 on
 *    the user's RSP and GS -- the state of bug #8 of x86-entry-bugs.md
 *    (XSA-204 was an emulator that forgot it);
 *  - `cd ib`: the gate is checked as INT n does (#GP(n*8+2) past the IDT
 *    limit, for a gate that is not an interrupt/trap gate, or with DPL <
 *    3; #NP(n*8+2) when not present) and the interrupt is injected as a
 *    software interrupt with RIP past the instruction (the injection adds
 *    no length on this host), or that exception with RIP at it.
 *
 * Why sites and not a catch at the #PF/#UD entries (the first version):
 * those catches took two more debug registers, which the harness also
 * needs; with none free a SYSCALL went to the guest as a fault, so
 * whether one was emulated depended on how many breakpoints the caller
 * had armed -- a sweep's plan and its cases saw different guest paths.
 * Sites need only ring3.c's #BP-entry register, and always work (the
 * entry fails with one line if no register is left for it).  Neither an
 * INT3 in ring-0 code (this host fails to emulate it) nor
 * KVM_GUESTDBG_USE_SW_BP (ring-3 INT3 still goes to the guest) gives a
 * catch without a debug register here: measured.
 *
 * Limits: compat-mode code cannot have sites (an INT3 there raises #UD
 * on this host; its INT n stay with the guest's own #UD fallback); a
 * site the caller did not name runs as the host does it.  Cost: an
 * emulated SYSCALL or INT n is one exit (plus one KVM_GET_MSRS for
 * SYSCALL).
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "quirks.h"

#define RFLAGS_TF   (1ULL << 8)
#define RFLAGS_RF   (1ULL << 16)
#define MSR_STAR    0xc0000081
#define MSR_LSTAR   0xc0000082
#define MSR_FMASK   0xc0000084
#define EFER_SCE    (1ULL << 0)
#define GATE_INTR   0xe
#define GATE_TRAP   0xf
#define DR6_BS      (1ULL << 14)

void sysemu__force(struct vm *vm, bool syscall, bool intn)
{
	vm->sys.checked = true;
	vm->sys.syscall = syscall;
	vm->sys.intn = intn;
}

bool sysemu__active(struct vm *vm)
{
	struct sysemu_state *s = &vm->sys;

	if (!s->checked) {
		s->checked = true;
		s->syscall = quirks__state(QUIRK_SYSCALL) == QUIRK_EMULATED;
		s->intn = quirks__state(QUIRK_INT80) == QUIRK_EMULATED;
	}
	return s->syscall || s->intn;
}

int vm__sysemu_sites(struct vm *vm, const uint64_t *gva, size_t n)
{
	struct sysemu_state *s = &vm->sys;

	if (n > SYSEMU_MAX_SITES)
		return vmm__fail("%zu SYSCALL/INT n sites: at most %d", n, SYSEMU_MAX_SITES);
	for (size_t i = 0; i < n; i++)
		if (gva[i] >= USER_HALF_END)
			return vmm__fail("SYSCALL/INT n site 0x%llx: not a user address",
					 (unsigned long long)gva[i]);
	memcpy(s->site, gva, n * sizeof(*gva));
	s->nsites = n;
	/* ring3.c plants the new list at the next entry. */
	for (int i = 0; i < RING3_PATCHES; i++)
		vm->r3.patch[i].site = false;
	vm->r3.sites_planted = false;
	vm->r3.sites_cr3 = ~0ULL;
	if (n && sysemu__active(vm))
		vm->r3.active = true;
	return 0;
}

/* SYSCALL from the user state at RIP, as the SDM's operation gives it. */
static int emulate_syscall(struct vm *vm, uint64_t next)
{
	struct kvm_regs *r = &vm->run->s.regs.regs;
	struct kvm_sregs *sr = &vm->run->s.regs.sregs;
	static const uint32_t idx[3] = { MSR_STAR, MSR_LSTAR, MSR_FMASK };
	uint64_t msr[3];

	if (!(sr->efer & EFER_SCE)) {
		struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
		memset(&ev->exception, 0, sizeof(ev->exception));
		ev->exception.injected = 1;
		ev->exception.nr = 6;
		vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
		return 0;
	}
	if (vcpu__get_msrs(vm, idx, msr, 3))
		return -1;
	uint16_t sel = (uint16_t)(msr[0] >> 32) & 0xfffc;
	struct kvm_segment cs = {
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = 11, .present = 1,
		.dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment ss = {
		.base = 0, .limit = 0xffffffff, .selector = (uint16_t)(sel + 8), .type = 3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	bool tf = r->rflags & RFLAGS_TF;
	r->rcx = next;
	r->r11 = r->rflags & ~RFLAGS_RF;
	r->rflags = (r->rflags & ~msr[2] & ~RFLAGS_RF) | 2;
	r->rip = msr[1];
	sr->cs = cs;
	sr->ss = ss;
	vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	vm->sys.syscalls++;
	if (tf) {
		/* TF was set when the SYSCALL began: its single-step trap,
		 * recognised after it, before LSTAR's first instruction. */
		struct vm_event db = { .kind = VM_EVENT_EXCEPTION, .vector = 1,
				       .has_payload = true, .payload = DR6_BS };
		return vcpu__inject(vm, &db);
	}
	return 0;
}

/* INT n from the user state at RIP (`len` bytes): the gate checked as the
 * SDM's INT n does, then the interrupt or the fault injected. */
static int emulate_int(struct vm *vm, unsigned vec, uint64_t next)
{
	struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	const struct kvm_dtable *idt = &vm->run->s.regs.sregs.idt;
	struct idt_gate g;
	int fault = -1;

	if ((uint64_t)vec * 16 + 15 > idt->limit || vcpu__idt_gate(vm, 0, vec, &g))
		fault = 13;
	else if ((g.type != GATE_INTR && g.type != GATE_TRAP) || g.dpl < 3)
		fault = 13;
	else if (!g.present)
		fault = 11;
	if (fault >= 0) {
		memset(&ev->exception, 0, sizeof(ev->exception));
		ev->exception.injected = 1;
		ev->exception.nr = (uint8_t)fault;
		ev->exception.has_error_code = 1;
		ev->exception.error_code = (vec << 3) | 2;  /* IDT bit: the gate of n */
	} else {
		vm->run->s.regs.regs.rip = next;
		vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS);
		ev->interrupt.injected = 1;
		ev->interrupt.nr = (uint8_t)vec;
		ev->interrupt.soft = 1;
	}
	vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
	vm->sys.ints++;
	return 0;
}

int sysemu__run_site(struct vm *vm, uint64_t gva, uint8_t orig)
{
	uint8_t insn[15];
	size_t n = 0;

	/* The instruction as the guest has it: its first byte under our INT3. */
	insn[n++] = orig;
	while (n < sizeof(insn) && vm__read_gva(vm, 0, gva + n, &insn[n], 1) == 0)
		n++;
	size_t op = dbg__skip_prefixes(insn, n);
	if (op + 1 < n && insn[op] == 0x0f && insn[op + 1] == 0x05 && vm->sys.syscall)
		return emulate_syscall(vm, gva + op + 2);
	if (op + 1 < n && insn[op] == 0xcd && vm->sys.intn)
		return emulate_int(vm, insn[op + 1], gva + op + 2);
	return vmm__fail("SYSCALL/INT n site 0x%llx holds %02x %02x, neither SYSCALL nor INT n",
			 (unsigned long long)gva, insn[0], n > 1 ? insn[1] : 0);
}

void vm__sysemu_report(struct vm *vm, bool on)
{
	vm->sys.report = on;
}

bool sysemu__report(struct vm *vm, uint64_t gva, struct vm_exit *e)
{
	const struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	bool delivering = ev->interrupt.injected || ev->exception.injected ||
			  ev->exception.pending;

	if (vm->sys.report) {
		e->kind = VM_EXIT_SYSEMU;
		e->rip = vm->run->s.regs.regs.rip;
		e->sysemu.site = gva;
		e->sysemu.vector = ev->interrupt.injected ? ev->interrupt.nr :
				   ev->exception.injected ? ev->exception.nr : -1;
		return true;
	}
	/* A caller's single step over the site ends where the instruction
	 * took the vCPU (LSTAR; an injected interrupt or fault is delivered
	 * and stepped on the next entry). */
	if (!vm->singlestep || vm->internal_step || delivering)
		return false;
	e->kind = VM_EXIT_SINGLESTEP;
	e->rip = e->debug.pc = vm->run->s.regs.regs.rip;
	e->debug.dr6 = DR6_BS;
	return true;
}
