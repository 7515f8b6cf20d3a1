/* SPDX-License-Identifier: MIT */
/*
 * vcpu.c: register state.  REGS, SREGS and EVENTS live in kvm_run's
 * sync_regs, valid after every exit; a change is written there and folded
 * into the next KVM_RUN.  MSRs go through KVM_GET/SET_MSRS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "internal.h"

struct kvm_regs *vcpu__regs(struct vm *vm)
{
	return &vm->run->s.regs.regs;
}

struct kvm_sregs *vcpu__sregs(struct vm *vm)
{
	return &vm->run->s.regs.sregs;
}

struct kvm_vcpu_events *vcpu__events(struct vm *vm)
{
	return &vm->run->s.regs.events;
}

void vcpu__mark_dirty(struct vm *vm, uint64_t sync_fields)
{
	/* KVM's register write drops a pending exception; writing EVENTS
	 * (applied after REGS) in the same entry puts it back. */
	if (sync_fields & KVM_SYNC_X86_REGS)
		sync_fields |= KVM_SYNC_X86_EVENTS;
	vm->run->kvm_dirty_regs |= sync_fields;
}

int vcpu__flush_sync(struct vm *vm, uint64_t fields)
{
	struct kvm_sync_regs *s = &vm->run->s.regs;

	fields &= vm->run->kvm_dirty_regs;
	if ((fields & KVM_SYNC_X86_REGS) && ioctl(vm->vcpu_fd, KVM_SET_REGS, &s->regs) < 0)
		return vmm__fail("KVM_SET_REGS: %s", strerror(errno));
	if ((fields & KVM_SYNC_X86_SREGS) && ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s->sregs) < 0)
		return vmm__fail("KVM_SET_SREGS: %s", strerror(errno));
	if ((fields & KVM_SYNC_X86_EVENTS) &&
	    ioctl(vm->vcpu_fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
		return vmm__fail("KVM_SET_VCPU_EVENTS: %s", strerror(errno));
	vm->run->kvm_dirty_regs &= ~fields;
	return 0;
}

static struct kvm_msrs *msr_buf(int n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));

	if (m)
		m->nmsrs = n;
	return m;
}

/* Serves the snapshot MSRs from one KVM_GET_MSRS per stop (msr_cache). */
static bool msrs_cached(struct vm *vm, const uint32_t *idx, uint64_t *val, int n)
{
	int pos[VM_MAX_SNAP_MSRS];

	if (n > VM_MAX_SNAP_MSRS || !vm->nmsrs)
		return false;
	for (int i = 0; i < n; i++) {
		pos[i] = -1;
		for (int j = 0; j < vm->nmsrs; j++)
			if (vm->msr_idx[j] == idx[i])
				pos[i] = j;
		if (pos[i] < 0)
			return false;
	}
	if (!vm->msr_cache_ok) {
		struct kvm_msrs *m = msr_buf(vm->nmsrs);
		if (!m)
			return false;
		for (int j = 0; j < vm->nmsrs; j++)
			m->entries[j].index = vm->msr_idx[j];
		int r = ioctl(vm->vcpu_fd, KVM_GET_MSRS, m);
		for (int j = 0; r == vm->nmsrs && j < vm->nmsrs; j++)
			vm->msr_cache[j] = m->entries[j].data;
		free(m);
		if (r != vm->nmsrs)
			return false;
		vm->msr_cache_ok = true;
	}
	for (int i = 0; i < n; i++)
		val[i] = vm->msr_cache[pos[i]];
	return true;
}

int vcpu__get_msrs(struct vm *vm, const uint32_t *idx, uint64_t *val, int n)
{
	if (msrs_cached(vm, idx, val, n))
		return 0;

	struct kvm_msrs *m = msr_buf(n);

	if (!m)
		return vmm__fail("KVM_GET_MSRS: out of memory");
	for (int i = 0; i < n; i++)
		m->entries[i].index = idx[i];
	int r = ioctl(vm->vcpu_fd, KVM_GET_MSRS, m);
	if (r == n)
		for (int i = 0; i < n; i++)
			val[i] = m->entries[i].data;
	free(m);
	if (r < 0)
		return vmm__fail("KVM_GET_MSRS: %s", strerror(errno));
	if (r != n)
		return vmm__fail("KVM_GET_MSRS: MSR 0x%x not readable", idx[r]);
	return 0;
}

int vcpu__set_msrs(struct vm *vm, const uint32_t *idx, const uint64_t *val, int n)
{
	vm->msr_cache_ok = false;
	struct kvm_msrs *m = msr_buf(n);

	if (!m)
		return vmm__fail("KVM_SET_MSRS: out of memory");
	for (int i = 0; i < n; i++) {
		m->entries[i].index = idx[i];
		m->entries[i].data = val[i];
	}
	vcpu__state_touched(vm);
	int r = ioctl(vm->vcpu_fd, KVM_SET_MSRS, m);
	free(m);
	if (r < 0)
		return vmm__fail("KVM_SET_MSRS: %s", strerror(errno));
	if (r != n)
		return vmm__fail("KVM_SET_MSRS: MSR 0x%x rejected value 0x%llx", idx[r],
				 (unsigned long long)val[r]);
	return 0;
}

int vcpu__cpl(struct vm *vm)
{
	return vm->run->s.regs.sregs.ss.dpl;
}

void idt_gate__decode(const uint8_t raw[16], struct idt_gate *g)
{
	g->offset = (uint64_t)raw[0] | (uint64_t)raw[1] << 8 | (uint64_t)raw[6] << 16 |
		    (uint64_t)raw[7] << 24 | (uint64_t)raw[8] << 32 | (uint64_t)raw[9] << 40 |
		    (uint64_t)raw[10] << 48 | (uint64_t)raw[11] << 56;
	g->selector = raw[2] | raw[3] << 8;
	g->ist = raw[4] & 7;
	g->type = raw[5] & 0xf;
	g->dpl = (raw[5] >> 5) & 3;
	g->present = raw[5] & 0x80;
}

int vcpu__idt_gate(struct vm *vm, uint64_t cr3, unsigned vector, struct idt_gate *g)
{
	const struct kvm_sregs *s = &vm->run->s.regs.sregs;
	uint8_t raw[16];

	if ((uint64_t)vector * 16 + 15 > s->idt.limit)
		return vmm__fail("IDT vector %u: past the IDT limit 0x%x", vector, s->idt.limit);
	if (vm__read_gva(vm, cr3, s->idt.base + (uint64_t)vector * 16, raw, sizeof(raw)))
		return -1;
	idt_gate__decode(raw, g);
	return 0;
}

uint64_t vcpu__gate_handler(struct vm *vm, uint64_t cr3, unsigned vector)
{
	struct idt_gate g;

	return vcpu__idt_gate(vm, cr3, vector, &g) == 0 && g.present ? g.offset : 0;
}

int vcpu__enter_frame(struct vm *vm, uint64_t rip, uint16_t cs, uint64_t rflags, uint64_t rsp,
		      uint16_t ss)
{
	struct kvm_regs *r = &vm->run->s.regs.regs;
	struct kvm_sregs *s = &vm->run->s.regs.sregs;
	struct kvm_segment c, t;

	if (vcpu__segment(vm, cs, &c) || vcpu__segment(vm, ss, &t))
		return -1;
	s->cs = c;
	s->ss = t;
	r->rip = rip;
	r->rsp = rsp;
	r->rflags = rflags;
	vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	return 0;
}

int vcpu__segment(struct vm *vm, uint16_t sel, struct kvm_segment *seg)
{
	const struct kvm_sregs *s = &vm->run->s.regs.sregs;
	const struct kvm_dtable *t = &s->gdt;
	uint64_t base = t->base, limit = t->limit, d;

	if (sel & 4) {
		base = s->ldt.base;
		limit = s->ldt.limit;
	}
	if ((uint64_t)(sel | 7) > limit || vm__read_gva(vm, 0, base + (sel & ~7u), &d, sizeof(d)))
		return vmm__fail("descriptor of selector 0x%x unreadable", sel);
	memset(seg, 0, sizeof(*seg));
	seg->selector = sel;
	seg->base = ((d >> 16) & 0xffffff) | ((d >> 56) & 0xff) << 24;
	seg->limit = (uint32_t)((d & 0xffff) | ((d >> 48) & 0xf) << 16);
	seg->g = (d >> 55) & 1;
	if (seg->g)
		seg->limit = (seg->limit << 12) | 0xfff;
	/* Without the accessed bit, as this KVM shows user segments. */
	seg->type = (d >> 40) & 0xe;
	seg->s = (d >> 44) & 1;
	seg->dpl = (d >> 45) & 3;
	seg->present = (d >> 47) & 1;
	seg->avl = (d >> 52) & 1;
	seg->l = (d >> 53) & 1;
	seg->db = (d >> 54) & 1;
	if (!seg->present || !seg->s)
		return vmm__fail("selector 0x%x is not a present code/data segment", sel);
	return 0;
}
