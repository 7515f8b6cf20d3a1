/* SPDX-License-Identifier: MIT */
/*
 * inject.c: events.  An IRQ is either held here until the guest can take
 * it (pending; delivered with KVM_INTERRUPT when KVM reports the interrupt
 * window open) or written into the vCPU's event state as already being
 * delivered (forced).  NMIs and exceptions go into kvm_vcpu_events, which
 * sync_regs folds into the next KVM_RUN at no extra cost.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include "internal.h"

#define RFLAGS_IF (1ULL << 9)

void irq__raise(struct vm *vm, uint8_t v)
{
	vm->irr[v / 64] |= 1ULL << (v % 64);
}

void irq__clear(struct vm *vm, uint8_t v)
{
	vm->irr[v / 64] &= ~(1ULL << (v % 64));
}

bool irq__any(const struct vm *vm)
{
	return (vm->irr[0] | vm->irr[1] | vm->irr[2] | vm->irr[3]) != 0;
}

/* Like a local APIC: the highest vector is the highest priority. */
int irq__highest(const struct vm *vm)
{
	for (int w = 3; w >= 0; w--)
		if (vm->irr[w])
			return w * 64 + 63 - __builtin_clzll(vm->irr[w]);
	return -1;
}

void nmi__raise(struct vm *vm)
{
	struct kvm_vcpu_events *ev = &vm->run->s.regs.events;

	ev->nmi.pending = 1;
	ev->flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
	vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
}

static bool exc_has_error_code(unsigned v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static bool event_in_flight(const struct kvm_vcpu_events *ev, char *why, size_t len)
{
	const char *w = NULL;

	if (ev->exception.injected || ev->exception.pending)
		w = "an exception is already pending";
	else if (ev->nmi.injected)
		w = "an NMI is already being delivered";
	else if (ev->interrupt.injected)
		w = "an interrupt is already being delivered";
	if (w && why)
		snprintf(why, len, "%s", w);
	return w != NULL;
}

bool vcpu__can_take(struct vm *vm, const struct vm_event *e, char *why, size_t len)
{
	const struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	const char *w = NULL;

	if (why && len)
		why[0] = 0;
	if (event_in_flight(ev, why, len))
		return false;
	switch (e->kind) {
	case VM_EVENT_IRQ:
		if (!(vm->run->s.regs.regs.rflags & RFLAGS_IF))
			w = "IF=0";
		else if (ev->interrupt.shadow & (KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS))
			w = "STI/MOV SS shadow";
		else if (vm->singlestep)
			w = "single-stepping holds IRQs (KVM_GUESTDBG_BLOCKIRQ)";
		break;
	case VM_EVENT_NMI:
		if (ev->nmi.masked)
			w = "NMI blocked (an NMI handler has not executed IRET yet)";
		else if (ev->nmi.pending)
			w = "an NMI is already pending";
		else if (ev->interrupt.shadow & (KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS))
			w = "STI/MOV SS shadow";
		break;
	case VM_EVENT_EXCEPTION:
		break;
	}
	if (w && why)
		snprintf(why, len, "%s", w);
	return w == NULL;
}

bool vcpu__event_pending(struct vm *vm)
{
	const struct kvm_vcpu_events *ev = &vm->run->s.regs.events;

	return irq__any(vm) || ev->nmi.pending || ev->nmi.injected || ev->exception.pending ||
	       ev->exception.injected || ev->interrupt.injected;
}

static int inject_exception(struct vm *vm, const struct vm_event *e)
{
	struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	unsigned v = e->vector;

	if (v >= 32 || v == 2)
		return vmm__fail("inject: exception vector %u: must be 0-31 and not 2 (use an NMI)", v);
	if (e->has_error_code != exc_has_error_code(v))
		return vmm__fail("inject: exception vector %u %s an error code", v,
				 exc_has_error_code(v) ? "needs" : "takes no");
	if (e->has_payload && v != 1 && v != 14)
		return vmm__fail("inject: exception vector %u: a payload is only for #DB (DR6) "
				 "and #PF (CR2)", v);
	char why[96];
	if (event_in_flight(ev, why, sizeof(why)))
		return vmm__fail("inject: exception vector %u: %s", v, why);

	ev->exception.nr = v;
	ev->exception.has_error_code = e->has_error_code;
	ev->exception.error_code = e->error_code;
	if (!e->force) {
		/* Pending: KVM delivers it at the next entry and only then writes
		 * the payload (CR2 / DR6), as the CPU would when the fault is
		 * recognised (KVM_CAP_EXCEPTION_PAYLOAD). */
		ev->exception.pending = 1;
		ev->exception.injected = 0;
		ev->exception_has_payload = e->has_payload;
		ev->exception_payload = e->has_payload ? e->payload : 0;
		ev->flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
		vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
		return 0;
	}
	/* Forced: already past recognition, so the payload is architectural
	 * state now: CR2 for #PF, DR6 for #DB. */
	ev->exception.pending = 0;
	ev->exception.injected = 1;
	ev->exception_has_payload = 0;
	ev->exception_payload = 0;
	ev->flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
	if (e->has_payload && v == 14) {
		vm->run->s.regs.sregs.cr2 = e->payload;
		vcpu__mark_dirty(vm, KVM_SYNC_X86_SREGS);
	} else if (e->has_payload && v == 1) {
		struct kvm_debugregs dr;
		if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &dr) < 0)
			return vmm__fail("KVM_GET_DEBUGREGS: %s", strerror(errno));
		dr.dr6 = e->payload;
		vcpu__state_touched(vm);
		if (ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &dr) < 0)
			return vmm__fail("KVM_SET_DEBUGREGS(dr6 0x%llx): %s",
					 (unsigned long long)e->payload, strerror(errno));
	}
	vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
	return 0;
}

int vcpu__inject(struct vm *vm, const struct vm_event *e)
{
	struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	char why[96];

	switch (e->kind) {
	case VM_EVENT_EXCEPTION:
		return inject_exception(vm, e);
	case VM_EVENT_IRQ:
		if (!e->force) {
			irq__raise(vm, e->vector);
			return 0;
		}
		if (event_in_flight(ev, why, sizeof(why)))
			return vmm__fail("inject: forced IRQ %u: %s", e->vector, why);
		/* As if the CPU had already accepted it: VM entry delivers it
		 * whatever IF says.  VM entry refuses an external interrupt
		 * inside an STI/MOV SS shadow (SDM 26.3.1.5), so the shadow is
		 * dropped: forced means "before the next instruction". */
		ev->interrupt.injected = 1;
		ev->interrupt.nr = e->vector;
		ev->interrupt.soft = 0;
		ev->interrupt.shadow = 0;
		ev->flags |= KVM_VCPUEVENT_VALID_SHADOW;
		vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
		return 0;
	case VM_EVENT_NMI:
		if (!e->force) {
			if (ev->exception.injected || ev->nmi.injected)
				return vmm__fail("inject: pending NMI: %s",
						 ev->nmi.injected ? "an NMI is already being delivered"
								  : "an exception is being delivered");
			nmi__raise(vm);
			return 0;
		}
		if (event_in_flight(ev, why, sizeof(why)))
			return vmm__fail("inject: forced NMI: %s", why);
		/* VM entry fails when it injects an NMI while NMIs are blocked
		 * or inside a MOV SS (on some CPUs also STI) shadow (SDM
		 * 26.3.1.5), so forcing one clears the blocking: the guest sees
		 * a nested NMI, which is what "forced" asks for.  Delivery then
		 * blocks NMIs again until the handler's IRET. */
		ev->nmi.injected = 1;
		ev->nmi.masked = 0;
		ev->interrupt.shadow = 0;
		ev->flags |= KVM_VCPUEVENT_VALID_SHADOW;
		vcpu__mark_dirty(vm, KVM_SYNC_X86_EVENTS);
		return 0;
	}
	return vmm__fail("inject: unknown event kind %d", e->kind);
}
