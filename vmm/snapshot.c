/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: the whole machine.  A snapshot is the vCPU (GPRs, sregs,
 * events, debug registers, XSAVE/XCRs, the MSRs the guest uses), the VMM's
 * own machine state (held IRQs) and a full copy of RAM.  Restoring copies
 * back only the pages written since memory last matched the snapshot: the
 * KVM dirty log (whose retrieval also re-arms it) plus the pages the host
 * wrote.  GPRs, sregs and events ride along with the next KVM_RUN through
 * sync_regs; MSRs, XSAVE, XCRs and debug registers cost one ioctl each,
 * skipped only when nothing can have changed them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include "internal.h"

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

struct vm_snapshot {
	uint64_t id;
	uint64_t mem_size;
	uint8_t *mem;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
	struct kvm_xcrs xcrs;
	struct kvm_xsave *xsave;
	struct kvm_msrs *msrs;        /* ready for KVM_SET_MSRS as it is */
	uint64_t irr[4];
	unsigned step_over, step_internal;
	/* A clone (snap__clone) moves along runs: `base` is what it was made
	 * from, `diff` the pages where its memory may differ from base's. */
	const struct vm_snapshot *base;
	uint64_t *diff;
};

static uint64_t next_snap_id = 1;

/* Throws the dirty log away: from now on it counts writes after this point. */
static int reset_dirty_log(struct vm *vm)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = vm->kvm_dirty };

	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return vmm__fail("KVM_GET_DIRTY_LOG: %s", strerror(errno));
	memset(vm->host_dirty, 0, bitmap_words(vm->npages) * sizeof(uint64_t));
	return 0;
}

void snap__free(struct vm_snapshot *s)
{
	if (!s)
		return;
	free(s->mem);
	free(s->xsave);
	free(s->msrs);
	free(s->diff);
	free(s);
}

static size_t msrs_size(const struct vm *vm)
{
	return sizeof(struct kvm_msrs) + vm->nmsrs * sizeof(struct kvm_msr_entry);
}

/* A snapshot's buffers, empty; `diff` only for clones.  NULL with
 * vmm__error() on failure. */
static struct vm_snapshot *snap_alloc(struct vm *vm, bool diff)
{
	struct vm_snapshot *s = calloc(1, sizeof(*s));

	if (s) {
		s->mem_size = vm->mem_size;
		s->mem = malloc(vm->mem_size);
		s->xsave = calloc(1, vm->xsave_size);
		s->msrs = calloc(1, msrs_size(vm));
		s->diff = diff ? calloc(bitmap_words(vm->npages), sizeof(uint64_t)) : NULL;
	}
	if (!s || !s->mem || !s->xsave || !s->msrs || (diff && !s->diff)) {
		vmm__fail("snapshot: out of memory (%llu MiB of RAM)",
			  (unsigned long long)(vm->mem_size >> 20));
		snap__free(s);
		return NULL;
	}
	s->msrs->nmsrs = vm->nmsrs;
	for (int i = 0; i < vm->nmsrs; i++)
		s->msrs->entries[i].index = vm->msr_idx[i];
	return s;
}

/* The vCPU as the next entry will use it, into `s`: the sync area (with
 * any change not yet folded in by KVM_RUN), the VMM's held IRQs and
 * step-overs, and -- unless nothing ran since the vCPU last matched `s` --
 * debug registers, XSAVE, XCRs and MSRs (one GET ioctl each). */
static int capture_vcpu(struct vm *vm, struct vm_snapshot *s)
{
	s->regs = vm->run->s.regs.regs;
	s->sregs = vm->run->s.regs.sregs;
	s->events = vm->run->s.regs.events;
	memcpy(s->irr, vm->irr, sizeof(s->irr));
	s->step_over = vm->step_over;
	s->step_internal = vm->step_internal;
	if (s->id && vm->vcpu_snap_id == s->id)
		return 0;
	if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &s->dregs) < 0)
		return vmm__fail("KVM_GET_DEBUGREGS: %s", strerror(errno));
	if (ioctl(vm->vcpu_fd, vm->has_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave) < 0)
		return vmm__fail("%s: %s", vm->has_xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE",
				 strerror(errno));
	if (vm->cfg.guest_xsave && ioctl(vm->vcpu_fd, KVM_GET_XCRS, &s->xcrs) < 0)
		return vmm__fail("KVM_GET_XCRS: %s", strerror(errno));
	uint64_t msr[VM_MAX_SNAP_MSRS];
	if (vcpu__get_msrs(vm, vm->msr_idx, msr, vm->nmsrs))
		return -1;
	for (int i = 0; i < vm->nmsrs; i++)
		s->msrs->entries[i].data = msr[i];
	return 0;
}

/* Memory and vCPU match `s` now. */
static void matched(struct vm *vm, const struct vm_snapshot *s)
{
	vm->mem_snap_id = s->id;
	vm->mem_snap = s;
	vm->vcpu_snap_id = s->id;
}

struct vm_snapshot *snap__take(struct vm *vm)
{
	struct vm_snapshot *s = snap_alloc(vm, false);

	if (!s)
		return NULL;
	if (capture_vcpu(vm, s))
		goto fail;
	memcpy(s->mem, vm->mem, vm->mem_size);
	if (reset_dirty_log(vm))
		goto fail;
	s->id = next_snap_id++;
	matched(vm, s);
	return s;
fail:
	snap__free(s);
	return NULL;
}

/* Folds the KVM dirty log into host_dirty: from then on host_dirty holds
 * every page written since memory last matched vm->mem_snap. */
static int collect_dirty(struct vm *vm)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = vm->kvm_dirty };

	if (vm->dirty_collected)
		return 0;                     /* the guest has not run since */
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return vmm__fail("KVM_GET_DIRTY_LOG: %s", strerror(errno));
	size_t words = bitmap_words(vm->npages);
	for (size_t w = 0; w < words; w++)
		vm->host_dirty[w] |= vm->kvm_dirty[w];
	vm->dirty_collected = true;
	return 0;
}

/* The pages where memory may differ from `s` besides those written since
 * it last matched vm->mem_snap: none if that is `s`; a clone's diff if
 * one of the two is the other's base.  NULL if unrelated (compare all). */
static const uint64_t no_pages_marker;
static const uint64_t *extra_pages(const struct vm *vm, const struct vm_snapshot *s)
{
	const struct vm_snapshot *m = vm->mem_snap;

	if (!m || vm->mem_snap_id != m->id)
		return NULL;
	if (m == s)
		return &no_pages_marker;
	if (m->base == s)
		return m->diff;
	if (s->base == m)
		return s->diff;
	return NULL;
}

/* Memory matches vm->mem_snap but for the pages written since and those
 * `extra` names: copy exactly those back from `s`. */
static int restore_dirty(struct vm *vm, const struct vm_snapshot *s, const uint64_t *extra,
			 uint64_t *count)
{
	if (collect_dirty(vm))
		return -1;
	size_t words = bitmap_words(vm->npages);
	uint64_t n = 0;
	if (extra == &no_pages_marker)
		extra = NULL;
	for (size_t w = 0; w < words; w++) {
		uint64_t bits = vm->host_dirty[w] | (extra ? extra[w] : 0);
		if (!bits)
			continue;
		vm->host_dirty[w] = 0;
		while (bits) {
			uint64_t p = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			memcpy(vm->mem + p * PAGE_SIZE, s->mem + p * PAGE_SIZE, PAGE_SIZE);
			n++;
		}
	}
	*count = n;
	return 0;
}

/* Memory last matched another snapshot (or none): compare every page. */
static int restore_full(struct vm *vm, const struct vm_snapshot *s, uint64_t *count)
{
	uint64_t n = 0;

	if (reset_dirty_log(vm))
		return -1;
	for (uint64_t p = 0; p < vm->npages; p++) {
		uint8_t *d = vm->mem + p * PAGE_SIZE;
		const uint8_t *o = s->mem + p * PAGE_SIZE;
		if (memcmp(d, o, PAGE_SIZE)) {
			memcpy(d, o, PAGE_SIZE);
			n++;
		}
	}
	*count = n;
	return 0;
}

int snap__restore(struct vm *vm, const struct vm_snapshot *s)
{
	struct snap_restore_cost *c = &vm->last_cost;
	uint64_t pages = 0;

	if (!s || s->mem_size != vm->mem_size)
		return vmm__fail("snapshot restore: snapshot is of a different VM (%llu vs %llu bytes of RAM)",
				 s ? (unsigned long long)s->mem_size : 0ULL,
				 (unsigned long long)vm->mem_size);
	memset(c, 0, sizeof(*c));
	uint64_t t0 = now_ns();
	const uint64_t *extra = extra_pages(vm, s);
	c->full_compare = !extra;
	if (c->full_compare ? restore_full(vm, s, &pages) : restore_dirty(vm, s, extra, &pages))
		return -1;
	vm->mem_snap_id = s->id;
	vm->mem_snap = s;
	c->pages = pages;
	uint64_t t1 = now_ns();
	c->mem_ns = t1 - t0;

	/* The vCPU state outside sync_regs: one ioctl each (about 9 us each on
	 * kvm_pvm whatever they carry: the cost is KVM's vcpu_load/put, see
	 * docs/vmm.md), except what is provably unchanged.  (1) If nothing
	 * ran or wrote it since the VM last matched this snapshot
	 * (vcpu__state_touched), nothing can differ.  (2) XCR0 cannot change
	 * when the guest's CPUID has no XSAVE (vm_config.guest_xsave off).
	 * Nothing else can be proven without an exit we would see:
	 * KERNEL_GS_BASE changes with SWAPGS (and GS.base does not tell how
	 * often: a GS selector load between two SWAPGS breaks any deduction),
	 * FPU/SSE state with any SSE instruction, DR0-7 with MOV DR and DR6
	 * with every #DB the guest takes, none of which exits to userspace. */
	if (vm->vcpu_snap_id != s->id) {
		c->vcpu_ioctls++;
		vm->msr_cache_ok = false;
		if (ioctl(vm->vcpu_fd, KVM_SET_MSRS, s->msrs) != (int)s->msrs->nmsrs)
			return vmm__fail("KVM_SET_MSRS (snapshot restore): %s", strerror(errno));
		/* What was just written is what a read would return. */
		for (uint32_t i = 0; i < s->msrs->nmsrs && (int)i < VM_MAX_SNAP_MSRS; i++)
			vm->msr_cache[i] = s->msrs->entries[i].data;
		vm->msr_cache_ok = (int)s->msrs->nmsrs == vm->nmsrs;
		c->vcpu_ioctls++;
		if (ioctl(vm->vcpu_fd, KVM_SET_XSAVE, s->xsave) < 0)
			return vmm__fail("KVM_SET_XSAVE (snapshot restore): %s", strerror(errno));
		if (vm->cfg.guest_xsave) {
			c->vcpu_ioctls++;
			if (ioctl(vm->vcpu_fd, KVM_SET_XCRS, &s->xcrs) < 0)
				return vmm__fail("KVM_SET_XCRS (snapshot restore): %s", strerror(errno));
		}
		c->vcpu_ioctls++;
		if (ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &s->dregs) < 0)
			return vmm__fail("KVM_SET_DEBUGREGS (snapshot restore): %s", strerror(errno));
		c->vcpu_ns = now_ns() - t1;
	}
	vm->vcpu_snap_id = s->id;

	/* GPRs, sregs and events: folded into the next KVM_RUN.  Events are
	 * written whole, pending NMI, shadow and exception payload included,
	 * so an event in flight at the snapshot is in flight again. */
	struct kvm_sync_regs *sr = &vm->run->s.regs;
	sr->regs = s->regs;
	sr->sregs = s->sregs;
	sr->events = s->events;
	sr->events.flags = (s->events.flags & KVM_VCPUEVENT_VALID_SMM) |
			   KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
			   KVM_VCPUEVENT_VALID_PAYLOAD;
	vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS);
	memcpy(vm->irr, s->irr, sizeof(vm->irr));
	vm->step_over = s->step_over;
	vm->step_internal = s->step_internal;
	/* What KVM said at the last exit no longer describes this state. */
	vm->run->ready_for_interrupt_injection = 0;
	return 0;
}

struct vm_snapshot *snap__clone(struct vm *vm, const struct vm_snapshot *base)
{
	struct vm_snapshot *s = snap_alloc(vm, true);

	if (!s)
		return NULL;
	memcpy(s->mem, base->mem, base->mem_size);
	memcpy(s->xsave, base->xsave, vm->xsave_size);
	memcpy(s->msrs, base->msrs, msrs_size(vm));
	s->regs = base->regs;
	s->sregs = base->sregs;
	s->events = base->events;
	s->dregs = base->dregs;
	s->xcrs = base->xcrs;
	memcpy(s->irr, base->irr, sizeof(s->irr));
	s->step_over = base->step_over;
	s->step_internal = base->step_internal;
	s->base = base;
	s->id = next_snap_id++;
	return s;
}

int snap__update(struct vm *vm, struct vm_snapshot *s)
{
	size_t words = bitmap_words(vm->npages);
	const uint64_t *extra = extra_pages(vm, s);

	if (!s->base)
		return vmm__fail("snap__update: not a clone (snap__clone)");
	if (collect_dirty(vm))
		return -1;
	if (!extra) {
		/* Unrelated to what memory last matched: take it all. */
		memcpy(s->mem, vm->mem, vm->mem_size);
		memset(s->diff, 0xff, words * sizeof(uint64_t));
	} else {
		bool from_s = extra == &no_pages_marker;
		/* Memory matched `s` (pages written since join its diff) or
		 * its base (then s now differs from base exactly where
		 * memory was written since). */
		uint64_t *copy = vm->kvm_dirty;   /* scratch: the log is folded in */
		for (size_t w = 0; w < words; w++)
			copy[w] = vm->host_dirty[w] | (from_s ? 0 : s->diff[w]);
		for (size_t w = 0; w < words; w++) {
			uint64_t bits = copy[w];
			s->diff[w] = from_s ? (s->diff[w] | vm->host_dirty[w]) : vm->host_dirty[w];
			while (bits) {
				uint64_t p = w * 64 + __builtin_ctzll(bits);
				bits &= bits - 1;
				memcpy(s->mem + p * PAGE_SIZE, vm->mem + p * PAGE_SIZE, PAGE_SIZE);
			}
		}
	}
	memset(vm->host_dirty, 0, words * sizeof(uint64_t));
	if (capture_vcpu(vm, s))
		return -1;
	matched(vm, s);
	return 0;
}

int snap__changed_pages(struct vm *vm, const struct vm_snapshot *s,
			int (*fn)(void *arg, uint64_t gpa, const uint8_t *now, const uint8_t *then),
			void *arg)
{
	if (vm->mem_snap_id != s->id)
		return vmm__fail("snap__changed_pages: memory does not derive from this snapshot");
	if (collect_dirty(vm))
		return -1;
	size_t words = bitmap_words(vm->npages);
	for (size_t w = 0; w < words; w++) {
		uint64_t bits = vm->host_dirty[w];
		while (bits) {
			uint64_t p = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			const uint8_t *now = vm->mem + p * PAGE_SIZE, *then = s->mem + p * PAGE_SIZE;
			if (!memcmp(now, then, PAGE_SIZE))
				continue;
			/* The INT3 bytes ring3.c plants are ours, not the guest's:
			 * compare the guest's bytes under them. */
			static uint8_t now_g[PAGE_SIZE], then_g[PAGE_SIZE];
			bool planted = false;
			for (int i = 0; i < RING3_PATCHES; i++) {
				const struct ring3_patch *q = &vm->r3.patch[i];
				if (!q->used || q->gpa / PAGE_SIZE != p)
					continue;
				if (!planted) {
					memcpy(now_g, now, PAGE_SIZE);
					memcpy(then_g, then, PAGE_SIZE);
					now = now_g;
					then = then_g;
					planted = true;
				}
				now_g[q->gpa % PAGE_SIZE] = then_g[q->gpa % PAGE_SIZE] = q->orig;
			}
			if (planted && !memcmp(now, then, PAGE_SIZE))
				continue;
			int r = fn(arg, p * PAGE_SIZE, now, then);
			if (r)
				return r;
		}
	}
	return 0;
}

/* Equal as the CPU would use them.  A not-present segment is unusable
 * whatever the flag says: KVM reports the null SS an interrupt delivery
 * loads in 64-bit mode as unusable, the same one restored from a snapshot
 * as usable but not present. */
static bool seg_eq(const struct kvm_segment *a, const struct kvm_segment *b)
{
	bool unusable_a = a->unusable || !a->present, unusable_b = b->unusable || !b->present;

	return a->base == b->base && a->limit == b->limit && a->selector == b->selector &&
	       a->type == b->type && a->present == b->present && a->dpl == b->dpl &&
	       a->db == b->db && a->s == b->s && a->l == b->l && a->g == b->g &&
	       a->avl == b->avl && unusable_a == unusable_b;
}

int snap__vcpu_compare(struct vm *vm, const struct vm_snapshot *s, char *why, size_t len)
{
	const struct kvm_sync_regs *sr = &vm->run->s.regs;
	struct kvm_regs r = sr->regs, sr0 = s->regs;
	const struct kvm_sregs *a = &sr->sregs, *b = &s->sregs;
	const struct kvm_vcpu_events *e = &sr->events, *f = &s->events;

	r.rflags &= ~(1ULL << 16);
	sr0.rflags &= ~(1ULL << 16);
	if (memcmp(&r, &sr0, sizeof(r))) {
		snprintf(why, len, "general registers differ");
		return 1;
	}
	const struct { const char *name; const struct kvm_segment *x, *y; } segs[] = {
		{ "cs", &a->cs, &b->cs }, { "ds", &a->ds, &b->ds }, { "es", &a->es, &b->es },
		{ "fs", &a->fs, &b->fs }, { "gs", &a->gs, &b->gs }, { "ss", &a->ss, &b->ss },
		{ "tr", &a->tr, &b->tr }, { "ldt", &a->ldt, &b->ldt },
	};
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		if (!seg_eq(segs[i].x, segs[i].y)) {
			const struct kvm_segment *x = segs[i].x, *y = segs[i].y;
			snprintf(why, len, "%s differs (selector 0x%x base 0x%llx limit 0x%x type %u "
				 "s%u dpl%u p%u db%u l%u g%u u%u, was 0x%x 0x%llx 0x%x %u s%u dpl%u p%u "
				 "db%u l%u g%u u%u)", segs[i].name, x->selector,
				 (unsigned long long)x->base, x->limit, x->type, x->s, x->dpl,
				 x->present, x->db, x->l, x->g, x->unusable, y->selector,
				 (unsigned long long)y->base, y->limit, y->type, y->s, y->dpl,
				 y->present, y->db, y->l, y->g, y->unusable);
			return 1;
		}
	if (a->gdt.base != b->gdt.base || a->gdt.limit != b->gdt.limit ||
	    a->idt.base != b->idt.base || a->idt.limit != b->idt.limit ||
	    a->cr0 != b->cr0 || a->cr3 != b->cr3 || a->cr4 != b->cr4 || a->cr8 != b->cr8 ||
	    a->efer != b->efer || a->apic_base != b->apic_base ||
	    memcmp(a->interrupt_bitmap, b->interrupt_bitmap, sizeof(a->interrupt_bitmap))) {
		snprintf(why, len, "control registers or descriptor tables differ (CR3 0x%llx, was "
			 "0x%llx)", (unsigned long long)a->cr3, (unsigned long long)b->cr3);
		return 1;
	}
	if (e->exception.injected != f->exception.injected ||
	    e->exception.pending != f->exception.pending ||
	    e->interrupt.injected != f->interrupt.injected ||
	    (e->interrupt.injected && e->interrupt.nr != f->interrupt.nr) ||
	    e->interrupt.shadow != f->interrupt.shadow || e->nmi.injected != f->nmi.injected ||
	    e->nmi.pending != f->nmi.pending || e->nmi.masked != f->nmi.masked) {
		snprintf(why, len, "pending events, NMI blocking or the interrupt shadow differ");
		return 1;
	}
	if (memcmp(vm->irr, s->irr, sizeof(vm->irr))) {
		snprintf(why, len, "held IRQs differ");
		return 1;
	}
	if (vm->vcpu_snap_id == s->id)
		return 0;

	struct kvm_debugregs dr;
	if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &dr) < 0)
		return vmm__fail("KVM_GET_DEBUGREGS: %s", strerror(errno));
	if (memcmp(dr.db, s->dregs.db, sizeof(dr.db)) || dr.dr6 != s->dregs.dr6 ||
	    dr.dr7 != s->dregs.dr7) {
		snprintf(why, len, "debug registers differ");
		return 1;
	}
	uint64_t msr[VM_MAX_SNAP_MSRS];
	if (vcpu__get_msrs(vm, vm->msr_idx, msr, vm->nmsrs))
		return -1;
	for (int i = 0; i < vm->nmsrs; i++)
		if (msr[i] != s->msrs->entries[i].data) {
			snprintf(why, len, "MSR 0x%x differs", vm->msr_idx[i]);
			return 1;
		}
	/* One buffer per VM: this runs at every converging case. */
	if (!vm->xsave_tmp && !(vm->xsave_tmp = calloc(1, vm->xsave_size)))
		return vmm__fail("out of memory");
	if (ioctl(vm->vcpu_fd, vm->has_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, vm->xsave_tmp) < 0)
		return vmm__fail("KVM_GET_XSAVE: %s", strerror(errno));
	if (memcmp(vm->xsave_tmp, s->xsave, vm->xsave_size)) {
		snprintf(why, len, "FPU/SSE (XSAVE) state differs");
		return 1;
	}
	if (vm->cfg.guest_xsave) {
		struct kvm_xcrs x;
		if (ioctl(vm->vcpu_fd, KVM_GET_XCRS, &x) < 0)
			return vmm__fail("KVM_GET_XCRS: %s", strerror(errno));
		if (x.nr_xcrs != s->xcrs.nr_xcrs ||
		    memcmp(x.xcrs, s->xcrs.xcrs, x.nr_xcrs * sizeof(x.xcrs[0]))) {
			snprintf(why, len, "XCRs differ");
			return 1;
		}
	}
	vm->vcpu_snap_id = s->id;
	return 0;
}

bool snap__msr(const struct vm_snapshot *s, uint32_t idx, uint64_t *val)
{
	for (uint32_t i = 0; i < s->msrs->nmsrs; i++)
		if (s->msrs->entries[i].index == idx) {
			*val = s->msrs->entries[i].data;
			return true;
		}
	return false;
}

uint64_t snap__last_restored_pages(const struct vm *vm)
{
	return vm->last_cost.pages;
}

void snap__last_restore_cost(const struct vm *vm, struct snap_restore_cost *c)
{
	*c = vm->last_cost;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV_PRIME;
	return h;
}

/* Memory is hashed a 64-bit word at a time (FNV-1a over words): the same
 * properties for our use, eight times fewer multiplications. */
static uint64_t fnv_words(uint64_t h, const uint64_t *p, size_t nwords)
{
	for (size_t i = 0; i < nwords; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

static uint64_t fnv_seg(uint64_t h, const struct kvm_segment *s)
{
	uint64_t v[3] = { s->base, s->limit | (uint64_t)s->selector << 32,
			  s->type | s->present << 8 | s->dpl << 9 | s->db << 11 | s->s << 12 |
			  s->l << 13 | s->g << 14 | s->avl << 15 | (uint64_t)s->unusable << 16 };
	return fnv(h, v, sizeof(v));
}

uint64_t vm__digest(struct vm *vm)
{
	const struct kvm_sregs *sr = &vm->run->s.regs.sregs;
	const struct kvm_vcpu_events *ev = &vm->run->s.regs.events;
	uint64_t h = FNV_OFFSET;

	h = fnv(h, &vm->run->s.regs.regs, sizeof(struct kvm_regs));
	const struct kvm_segment *segs[] = { &sr->cs, &sr->ds, &sr->es, &sr->fs, &sr->gs,
					     &sr->ss, &sr->tr, &sr->ldt };
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		h = fnv_seg(h, segs[i]);
	uint64_t cr[] = { sr->cr0, sr->cr2, sr->cr3, sr->cr4, sr->cr8, sr->efer,
			  sr->gdt.base, sr->gdt.limit, sr->idt.base, sr->idt.limit };
	h = fnv(h, cr, sizeof(cr));
	uint64_t evs[] = {
		ev->exception.injected | ev->exception.pending << 1 |
			(uint64_t)ev->exception.nr << 8 | (uint64_t)ev->exception.has_error_code << 16 |
			(uint64_t)ev->exception.error_code << 32,
		ev->interrupt.injected | (uint64_t)ev->interrupt.nr << 8 |
			(uint64_t)ev->interrupt.soft << 16 | (uint64_t)ev->interrupt.shadow << 24,
		ev->nmi.injected | ev->nmi.pending << 8 | ev->nmi.masked << 16,
		ev->exception_has_payload, ev->exception_payload,
	};
	h = fnv(h, evs, sizeof(evs));
	uint64_t msr[VM_MAX_SNAP_MSRS];
	if (vcpu__get_msrs(vm, vm->msr_idx, msr, vm->nmsrs) == 0)
		h = fnv(h, msr, vm->nmsrs * sizeof(uint64_t));
	/* Debug registers and FPU/SSE state: what a restore writes back with
	 * its own ioctls, so what a bit-identical restore must prove too. */
	struct kvm_debugregs dr;
	if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &dr) == 0) {
		uint64_t d[6] = { dr.db[0], dr.db[1], dr.db[2], dr.db[3], dr.dr6, dr.dr7 };
		h = fnv(h, d, sizeof(d));
	}
	struct kvm_xsave *xs = calloc(1, vm->xsave_size);
	if (xs && ioctl(vm->vcpu_fd, vm->has_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xs) == 0)
		h = fnv_words(h, (const uint64_t *)xs, vm->xsave_size / 8);
	free(xs);
	struct kvm_xcrs xcrs;
	if (vm->cfg.guest_xsave && ioctl(vm->vcpu_fd, KVM_GET_XCRS, &xcrs) == 0)
		for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
			h = fnv(h, &xcrs.xcrs[i].value, sizeof(xcrs.xcrs[i].value));
	h = fnv(h, vm->irr, sizeof(vm->irr));
	return fnv_words(h, (const uint64_t *)vm->mem, vm->mem_size / 8);
}
