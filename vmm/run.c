/* SPDX-License-Identifier: MIT */
/*
 * run.c: the run loop.  Enters the guest with KVM_RUN and dispatches every
 * exit: console bytes and the VMM's own hypercalls are consumed here, held
 * interrupts are delivered when KVM says the guest can take one, and
 * everything the caller must judge comes back as a struct vm_exit.  The
 * common case costs exactly one ioctl (KVM_RUN) per exit.  Two bounds
 * make a hang a result: the exit budget (max_exits) and the wall-clock
 * deadline (deadline.c), whose signal ends a KVM_RUN that never exits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <kinject/abi.h>
#include "internal.h"

#define RFLAGS_IF (1ULL << 9)
#define DR6_BS (1ULL << 14)

const char *vm_exit__name(enum vm_exit_kind k)
{
	static const char *const names[] = {
		[VM_EXIT_HCALL] = "hypercall",
		[VM_EXIT_HLT] = "hlt",
		[VM_EXIT_SHUTDOWN] = "shutdown (triple fault)",
		[VM_EXIT_BREAKPOINT] = "breakpoint",
		[VM_EXIT_SINGLESTEP] = "single-step",
		[VM_EXIT_FAIL_ENTRY] = "VM entry failure",
		[VM_EXIT_INTERNAL_ERROR] = "KVM internal error",
		[VM_EXIT_BUDGET] = "exit budget exhausted",
		[VM_EXIT_UNEXPECTED] = "unexpected exit",
		[VM_EXIT_SYSEMU] = "SYSCALL/INT n run by the VMM",
	};
	if ((unsigned)k < sizeof(names) / sizeof(names[0]) && names[k])
		return names[k];
	return "?";
}

static int console_out(struct vm *vm, const uint8_t *p, size_t n)
{
	if (vm->console_len + n + 1 > vm->console_cap) {
		size_t cap = vm->console_cap ? vm->console_cap : 4096;
		while (cap < vm->console_len + n + 1)
			cap *= 2;
		char *c = realloc(vm->console, cap);
		if (!c)
			return vmm__fail("console buffer: out of memory (%zu bytes)", cap);
		vm->console = c;
		vm->console_cap = cap;
	}
	memcpy(vm->console + vm->console_len, p, n);
	vm->console_len += n;
	vm->console[vm->console_len] = 0;
	if (vm->cfg.console) {
		fwrite(p, 1, n, vm->cfg.console);
		if (memchr(p, '\n', n))
			fflush(vm->cfg.console);
	}
	return 0;
}

/* The guest can take an external interrupt at this boundary. */
static bool irq_window_open(struct vm *vm)
{
	const struct kvm_vcpu_events *ev = &vm->run->s.regs.events;

	return (vm->run->s.regs.regs.rflags & RFLAGS_IF) &&
	       !(ev->interrupt.shadow & (KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS)) &&
	       !vcpu__event_due(ev);
}

/* Everything the next entry needs that is not already in kvm_run. */
static int prepare_entry(struct vm *vm)
{
	struct kvm_run *run = vm->run;
	struct kvm_vcpu_events *ev = &run->s.regs.events;
	bool user_step = vm->singlestep;

	/* A held IRQ goes in as soon as the guest can take it, folded into
	 * this entry as the interrupt being delivered: what KVM_INTERRUPT does
	 * without an in-kernel irqchip, minus an ioctl, and judged on the
	 * state this entry will really use (sync_regs may hold changes KVM's
	 * ready_for_interrupt_injection has not seen).  While the caller
	 * single-steps, IRQs stay held (KVM_GUESTDBG_BLOCKIRQ semantics). */
	if (irq__any(vm) && !user_step && irq_window_open(vm)) {
		int v = irq__highest(vm);
		ev->interrupt.injected = 1;
		ev->interrupt.nr = v;
		ev->interrupt.soft = 0;
		irq__clear(vm, v);
		vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
	}
	/* An event delivered on this entry comes before the instruction at the
	 * breakpoint; if that breakpoint is hit again on return, that is a new
	 * hit, as on hardware.  Never single-step across a delivery: the CPU
	 * would push our TF into the guest's frame. */
	bool due = vcpu__event_due(ev);
	unsigned skip = 0, internal = due ? 0 : vm->step_internal;
	/* Only a caller's slot still armed at this very RIP needs stepping
	 * over: one cleared or moved since it hit costs no extra entry. */
	for (int i = 0; i < VM_MAX_BREAKPOINTS && !due; i++)
		if ((vm->step_over & (1u << i)) && vm->bp_on[i] &&
		    vm->bp_addr[i] == run->s.regs.regs.rip)
			skip |= 1u << i;
	vm->step_over = vm->step_internal = 0;
	vm->entry_skip = skip;
	vm->entry_skip_internal = internal;
	skip |= internal;
	vm->entry_rip = run->s.regs.regs.rip;
	/* Waiting for a window: single-step until the guest opens it, so the
	 * event arrives at the exact boundary (interrupt-window exits are not
	 * precise on every KVM backend; single steps are). */
	bool window = !due && !user_step && (irq__any(vm) || (ev->nmi.pending && ev->nmi.masked));
	bool step = user_step || skip || window;
	bool force = false;

	vm->internal_step = step && !user_step;
	if (step) {
		/* KVM keeps TF set only while RIP is where SET_GUEST_DEBUG saw it:
		 * a register write through sync_regs would silently drop the
		 * step.  Write the registers first, then re-arm the step. */
		if (run->kvm_dirty_regs & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) {
			if (vcpu__flush_sync(vm, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS))
				return -1;
			force = true;
		}
		/* Remember what is being stepped, to hide TF if it stores RFLAGS. */
		const struct kvm_regs *r = &run->s.regs.regs;
		vm->step_rip = r->rip;
		vm->step_rsp = r->rsp;
		vm->step_rflags = r->rflags;
		vm->step_cs = run->s.regs.sregs.cs.selector;
		vm->step_len = 0;
		uint64_t gpa;
		if (vm__gva_to_gpa(vm, 0, r->rip, &gpa) == 0) {
			size_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
			n = n < sizeof(vm->step_insn) ? n : sizeof(vm->step_insn);
			const void *p = vm__gpa(vm, gpa, n);
			if (p) {
				memcpy(vm->step_insn, p, n);
				vm->step_len = n;
			}
		}
	}
	vm->tmp_slot = -1;
	if (step && dbg__step_by_bp(vm))
		step = false;
	if (dbg__sync(vm, step, skip, force))
		return -1;
	run->request_interrupt_window = 0;
	return 0;
}

static void fail_entry_reason(struct vm *vm, struct vm_exit *e)
{
	uint64_t r = vm->run->fail_entry.hardware_entry_failure_reason;
	const char *what = "";

	switch (r & 0xffff) {
	case 33: what = " (invalid guest state)"; break;
	case 34: what = " (MSR loading)"; break;
	case 41: what = " (machine-check event)"; break;
	}
	snprintf(e->reason, sizeof(e->reason),
		 "VM entry failed: hardware_entry_failure_reason 0x%llx%s at rip 0x%llx",
		 (unsigned long long)r, what, (unsigned long long)e->rip);
}

static void internal_error_reason(struct vm *vm, struct vm_exit *e)
{
	struct kvm_run *run = vm->run;
	const char *what = "";

	switch (run->internal.suberror) {
	case KVM_INTERNAL_ERROR_EMULATION: what = "emulation failure"; break;
	case KVM_INTERNAL_ERROR_SIMUL_EX: what = "exception while delivering an exception"; break;
	case KVM_INTERNAL_ERROR_DELIVERY_EV: what = "exit during event delivery"; break;
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: what = "unexpected exit reason"; break;
	default: what = "unknown"; break;
	}
	int n = snprintf(e->reason, sizeof(e->reason), "KVM internal error: suberror %u (%s) at rip 0x%llx",
			 run->internal.suberror, what, (unsigned long long)e->rip);
	for (unsigned i = 0; i < run->internal.ndata && i < 3 && n < (int)sizeof(e->reason); i++)
		n += snprintf(e->reason + n, sizeof(e->reason) - n, " data[%u]=0x%llx", i,
			      (unsigned long long)run->internal.data[i]);
}

/* Returns 1 when the exit is consumed here and the loop goes on, 0 when
 * the caller sees it, -1 on a host-side failure. */
static int handle_io(struct vm *vm, struct vm_exit *e)
{
	struct kvm_run *run = vm->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	const struct kvm_regs *r = &run->s.regs.regs;

	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KINJECT_PORT_CONSOLE)
		return console_out(vm, data, (size_t)run->io.size * run->io.count) ? -1 : 1;
	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KINJECT_PORT_HCALL) {
		uint32_t nr = (uint32_t)r->rax;
		switch (nr) {
		case KINJECT_HC_RAISE_IRQ:
			if (r->rdi > 255) {
				e->kind = VM_EXIT_UNEXPECTED;
				snprintf(e->reason, sizeof(e->reason),
					 "KINJECT_HC_RAISE_IRQ with vector %llu (not 0-255) at rip 0x%llx",
					 (unsigned long long)r->rdi, (unsigned long long)e->rip);
				return 0;
			}
			irq__raise(vm, (uint8_t)r->rdi);
			return 1;
		case KINJECT_HC_RAISE_NMI:
			nmi__raise(vm);
			return 1;
		}
		e->kind = VM_EXIT_HCALL;
		e->hcall.nr = nr;
		e->hcall.args[0] = r->rdi;
		e->hcall.args[1] = r->rsi;
		e->hcall.args[2] = r->rdx;
		e->hcall.args[3] = r->rcx;
		return 0;
	}
	e->kind = VM_EXIT_UNEXPECTED;
	snprintf(e->reason, sizeof(e->reason), "I/O %s of %u byte(s) on port 0x%x (no device) at rip 0x%llx",
		 run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.size, run->io.port,
		 (unsigned long long)e->rip);
	return 0;
}

static int handle_debug(struct vm *vm, struct vm_exit *e)
{
	struct kvm_debug_exit_arch *d = &vm->run->debug.arch;

	e->debug.dr6 = d->dr6;
	e->debug.pc = d->pc;
	e->debug.slot = -1;
	if (d->exception != 1) {
		e->kind = VM_EXIT_UNEXPECTED;
		snprintf(e->reason, sizeof(e->reason), "debug exit with exception %u at 0x%llx",
			 d->exception, (unsigned long long)d->pc);
		return 0;
	}
	bool tmp = vm->tmp_slot >= 0 && (d->dr6 & (1ULL << vm->tmp_slot));
	vm->tmp_slot = -1;
	if (tmp || (d->dr6 & DR6_BS)) {
		dbg__fixup_step(vm);
		if (vm->internal_step)
			return 1;           /* our own step: not the caller's business */
		e->kind = VM_EXIT_SINGLESTEP;
		return 0;
	}
	int r3 = ring3__debug_exit(vm, e);     /* emulated ring-3 breakpoints */
	if (r3 >= 0)
		return r3;
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++) {
		if (vm->bp_on[i] && (d->dr6 & (1ULL << i))) {
			if (e->debug.slot < 0)
				e->debug.slot = i;
			vm->bp_hits[i]++;
			vm->step_over |= 1u << i;   /* the next entry steps past it */
		}
	}
	if (e->debug.slot >= 0) {
		e->kind = VM_EXIT_BREAKPOINT;
		return 0;
	}
	e->kind = VM_EXIT_UNEXPECTED;
	snprintf(e->reason, sizeof(e->reason), "debug exit with DR6 0x%llx matching no breakpoint at 0x%llx",
		 (unsigned long long)d->dr6, (unsigned long long)d->pc);
	return 0;
}

static bool wake_from_hlt(struct vm *vm)
{
	const struct kvm_vcpu_events *ev = &vm->run->s.regs.events;

	if (ev->nmi.pending || ev->exception.pending || ev->exception.injected ||
	    ev->interrupt.injected)
		return true;
	return irq__any(vm) && (vm->run->s.regs.regs.rflags & RFLAGS_IF) && !vm->singlestep;
}

static void deadline_reason(struct vm *vm, struct vm_exit *e)
{
	uint64_t n = vm->exits - vm->deadline_exits;

	e->kind = VM_EXIT_BUDGET;
	e->rip = vm->run->s.regs.regs.rip;
	if (!n)
		snprintf(e->reason, sizeof(e->reason),
			 "deadline: no KVM exit for %llu ms (the guest runs without exiting), rip 0x%llx",
			 (unsigned long long)vm->deadline_ms, (unsigned long long)e->rip);
	else
		snprintf(e->reason, sizeof(e->reason),
			 "deadline: no result within %llu ms (%llu KVM exits in that time), rip 0x%llx",
			 (unsigned long long)vm->deadline_ms, (unsigned long long)n,
			 (unsigned long long)e->rip);
}

static int run_loop(struct vm *vm, struct vm_exit *e, uint64_t max_exits)
{
	struct kvm_run *run = vm->run;
	uint64_t taken = 0;
	/* The clock is read when the run starts and after a signal only. */
	bool check_deadline = true;

	for (;;) {
		if (max_exits && taken >= max_exits) {
			e->kind = VM_EXIT_BUDGET;
			e->rip = run->s.regs.regs.rip;
			snprintf(e->reason, sizeof(e->reason), "%llu exits without a result, rip 0x%llx",
				 (unsigned long long)taken, (unsigned long long)e->rip);
			return 0;
		}
		if (check_deadline && deadline__passed(vm)) {
			deadline_reason(vm, e);
			return 0;
		}
		check_deadline = false;
		if (prepare_entry(vm))
			return -1;
		vcpu__state_touched(vm);
		vm->dirty_collected = false;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rr = ioctl(vm->vcpu_fd, KVM_RUN, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		vm->run_ns += (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ULL + (uint64_t)t1.tv_nsec -
			      (uint64_t)t0.tv_nsec;
		if (rr < 0) {
			if (errno != EINTR && errno != EAGAIN)
				return vmm__fail("KVM_RUN: %s (rip 0x%llx)", strerror(errno),
						 (unsigned long long)run->s.regs.regs.rip);
			/* A signal (ours, the deadline's, or the caller's): the
			 * guest may not have run at all.  Reset immediate_exit
			 * before reading the clock (a deadline signal after the
			 * reset is then seen by the clock or by the next
			 * KVM_RUN), and give back the breakpoints this entry
			 * was to step over if it did not get past them. */
			run->immediate_exit = 0;
			if (run->s.regs.regs.rip == vm->entry_rip) {
				vm->step_over |= vm->entry_skip;
				vm->step_internal |= vm->entry_skip_internal;
			}
			check_deadline = true;
			continue;
		}
		vm->exits++;
		taken++;
		e->rip = run->s.regs.regs.rip;

		int r;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			r = handle_io(vm, e);
			/* A stepped instruction that exited for I/O is complete; no
			 * separate step exit follows, so this is the step. */
			if (r == 1 && vm->singlestep) {
				e->kind = VM_EXIT_SINGLESTEP;
				e->debug.dr6 = DR6_BS;
				r = 0;
			}
			break;
		case KVM_EXIT_IRQ_WINDOW_OPEN:
		case KVM_EXIT_INTR:
			r = 1;
			break;
		case KVM_EXIT_HLT:
			if (wake_from_hlt(vm)) {
				r = 1;
				break;
			}
			e->kind = VM_EXIT_HLT;
			r = 0;
			break;
		case KVM_EXIT_SHUTDOWN:
			e->kind = VM_EXIT_SHUTDOWN;
			snprintf(e->reason, sizeof(e->reason), "triple fault (shutdown) near rip 0x%llx",
				 (unsigned long long)e->rip);
			r = 0;
			break;
		case KVM_EXIT_DEBUG:
			r = handle_debug(vm, e);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			e->kind = VM_EXIT_FAIL_ENTRY;
			fail_entry_reason(vm, e);
			r = 0;
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			e->kind = VM_EXIT_INTERNAL_ERROR;
			internal_error_reason(vm, e);
			r = 0;
			break;
		case KVM_EXIT_MMIO:
			e->kind = VM_EXIT_UNEXPECTED;
			snprintf(e->reason, sizeof(e->reason),
				 "MMIO %s of %u byte(s) at physical 0x%llx (not RAM, no device) at rip 0x%llx",
				 run->mmio.is_write ? "write" : "read", run->mmio.len,
				 (unsigned long long)run->mmio.phys_addr, (unsigned long long)e->rip);
			r = 0;
			break;
		default:
			e->kind = VM_EXIT_UNEXPECTED;
			snprintf(e->reason, sizeof(e->reason), "unhandled KVM exit reason %u at rip 0x%llx",
				 run->exit_reason, (unsigned long long)e->rip);
			r = 0;
			break;
		}
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
	}
}

int vcpu__run(struct vm *vm, struct vm_exit *e, uint64_t max_exits)
{
	memset(e, 0, sizeof(*e));
	e->debug.slot = -1;
	if (deadline__begin(vm))
		return -1;
	int r = run_loop(vm, e, max_exits);
	deadline__end(vm);
	return r;
}
