/* SPDX-License-Identifier: MIT */
/*
 * vm.c: the machine.  One VM with one memslot of RAM at guest-physical 0
 * (dirty-logged, for snapshots), one vCPU whose kvm_run keeps REGS, SREGS
 * and EVENTS valid after every exit, no in-kernel irqchip (the VMM itself
 * decides when an interrupt is delivered), and guest memory access by
 * physical or virtual address.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "internal.h"

/* Three pages KVM needs for its real-mode TSS on Intel; far above RAM. */
#define TSS_ADDR 0xfffbd000ULL
#define MAX_MEM (1ULL << 30)    /* the boot page tables cover 1 GiB */

/* The MSRs a guest kernel of ours programs; a snapshot carries those of
 * them KVM knows.  EFER and the FS/GS bases are in sregs too, but a
 * single KVM_SET_MSRS keeping them consistent costs nothing extra. */
static const uint32_t snap_msrs[] = {
	0xc0000080, /* EFER */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SFMASK (MSR_SYSCALL_MASK) */
	0xc0000100, /* FS_BASE */
	0xc0000101, /* GS_BASE */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
	0x00000174, /* SYSENTER_CS */
	0x00000175, /* SYSENTER_ESP */
	0x00000176, /* SYSENTER_EIP */
	0x00000277, /* PAT */
	0x000001a0, /* MISC_ENABLE */
	0x000006e0, /* TSC_DEADLINE */
	0x00000048, /* SPEC_CTRL */
};

int vm__parse_size(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s < '0' || *s > '9')
		return vmm__fail("size \"%s\": expected a number with an optional K, M or G suffix",
				 s ? s : "");
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return vmm__fail("size \"%s\": out of range", s);
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end)
		return vmm__fail("size \"%s\": unexpected \"%s\" (use K, M or G)", s, end);
	if (v == 0)
		return vmm__fail("size \"%s\": must not be zero", s);
	if (shift && v > (~0ULL >> shift))
		return vmm__fail("size \"%s\": out of range", s);
	*out = v << shift;
	return 0;
}

static int setup_cpuid(struct vm *vm)
{
	struct kvm_cpuid2 *c = NULL;

	/* KVM says E2BIG until the buffer is large enough. */
	for (int n = 64; n <= 4096; n *= 2) {
		free(c);
		c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return vmm__fail("cpuid: out of memory");
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		if (errno != E2BIG) {
			free(c);
			return vmm__fail("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		}
		c->nent = 0;
	}
	if (!c->nent) {
		free(c);
		return vmm__fail("KVM_GET_SUPPORTED_CPUID: too many entries");
	}
	if (!vm->cfg.guest_xsave) {
		/* No XSAVE: CR4.OSXSAVE can never be set (KVM checks guest
		 * CPUID), so XCR0 keeps its reset value for the VM's life.  The
		 * features that need XSAVE go with it. */
		uint32_t out = 0;
		for (uint32_t i = 0; i < c->nent; i++) {
			struct kvm_cpuid_entry2 *e = &c->entries[i];
			if (e->function == 0xd)
				continue;
			if (e->function == 1)
				e->ecx &= ~((1u << 26) | (1u << 27) | (1u << 28) | (1u << 12) | (1u << 29));
			if (e->function == 7 && e->index == 0) {
				e->ebx &= ~((1u << 5) | (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) |
					    (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
				e->edx &= ~((1u << 22) | (1u << 24) | (1u << 25));
			}
			c->entries[out++] = *e;
		}
		c->nent = out;
	}
	int r = ioctl(vm->vcpu_fd, KVM_SET_CPUID2, c);
	int e = errno;
	free(c);
	if (r < 0)
		return vmm__fail("KVM_SET_CPUID2: %s", strerror(e));
	return 0;
}

/* Keep only the MSRs this host's KVM can save and restore. */
static int setup_msrs(struct vm *vm)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} one;

	vm->nmsrs = 0;
	for (size_t i = 0; i < sizeof(snap_msrs) / sizeof(snap_msrs[0]); i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e[0].index = snap_msrs[i];
		if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) == 1)
			vm->msr_idx[vm->nmsrs++] = snap_msrs[i];
	}
	return 0;
}

struct vm *vm__create(const struct vm_config *cfg)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm) {
		vmm__fail("vm: out of memory");
		return NULL;
	}
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
	kvmstats__init(vm);
	vm->tmp_slot = -1;
	if (cfg)
		vm->cfg = *cfg;
	vm->mem_size = vm->cfg.mem_size ? vm->cfg.mem_size : VM_DEFAULT_MEM_SIZE;
	if (vm->mem_size % (2ULL << 20) || vm->mem_size > MAX_MEM) {
		vmm__fail("memory size %llu: must be a multiple of 2 MiB, at most 1 GiB",
			  (unsigned long long)vm->mem_size);
		goto fail;
	}
	vm->npages = vm->mem_size / PAGE_SIZE;

	vm->kvm_fd = kvm__open();
	if (vm->kvm_fd < 0)
		goto fail;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		vmm__fail("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0) {
		vmm__fail("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	/* Pending exceptions keep their CR2/DR6 payload apart from the
	 * registers until delivery; must be on before the vCPU exists. */
	struct kvm_enable_cap cap = { .cap = KVM_CAP_EXCEPTION_PAYLOAD, .args = { 1 } };
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		vmm__fail("KVM_ENABLE_CAP(KVM_CAP_EXCEPTION_PAYLOAD): %s", strerror(errno));
		goto fail;
	}

	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		vmm__fail("guest RAM: mmap of %llu bytes: %s", (unsigned long long)vm->mem_size,
			  strerror(errno));
		goto fail;
	}
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
		.memory_size = vm->mem_size, .userspace_addr = (uintptr_t)vm->mem,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		vmm__fail("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		goto fail;
	}
	vm->kvm_dirty = calloc(bitmap_words(vm->npages), sizeof(uint64_t));
	vm->host_dirty = calloc(bitmap_words(vm->npages), sizeof(uint64_t));
	if (!vm->kvm_dirty || !vm->host_dirty) {
		vmm__fail("vm: out of memory");
		goto fail;
	}

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0) {
		vmm__fail("KVM_CREATE_VCPU: %s", strerror(errno));
		goto fail;
	}
	int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run)) {
		vmm__fail("KVM_GET_VCPU_MMAP_SIZE: %s", sz < 0 ? strerror(errno) : "too small");
		goto fail;
	}
	vm->run_size = sz;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		vmm__fail("kvm_run: mmap: %s", strerror(errno));
		goto fail;
	}
	if (setup_cpuid(vm) || setup_msrs(vm))
		goto fail;

	int xs = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vm->has_xsave2 = xs > 0;
	vm->xsave_size = xs > (int)sizeof(struct kvm_xsave) ? xs : (int)sizeof(struct kvm_xsave);

	/* Fill the sync_regs area once so it is valid before the first run. */
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &vm->run->s.regs.regs) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_GET_SREGS, &vm->run->s.regs.sregs) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_GET_VCPU_EVENTS, &vm->run->s.regs.events) < 0) {
		vmm__fail("KVM_GET_REGS/SREGS/VCPU_EVENTS: %s", strerror(errno));
		goto fail;
	}
	vm->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
	vm->run->kvm_dirty_regs = 0;
	return vm;
fail:
	vm__destroy(vm);
	return NULL;
}

void vm__destroy(struct vm *vm)
{
	if (!vm)
		return;
	deadline__destroy(vm);
	kvmstats__destroy(vm);
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	free(vm->kvm_dirty);
	free(vm->xsave_tmp);
	free(vm->host_dirty);
	free(vm->console);
	free(vm);
}

uint64_t vm__mem_size(const struct vm *vm)
{
	return vm->mem_size;
}

void *vm__gpa(struct vm *vm, uint64_t gpa, size_t len)
{
	if (gpa > vm->mem_size || len > vm->mem_size - gpa)
		return NULL;
	return vm->mem + gpa;
}

void vm__mark_host_dirty(struct vm *vm, uint64_t gpa, size_t len)
{
	if (!len)
		return;
	for (uint64_t p = gpa >> PAGE_SHIFT; p <= (gpa + len - 1) >> PAGE_SHIFT; p++)
		bitmap_set(vm->host_dirty, p);
}

int vm__write_gpa(struct vm *vm, uint64_t gpa, const void *src, size_t len)
{
	void *dst = vm__gpa(vm, gpa, len);

	if (!dst)
		return vmm__fail("guest write 0x%llx+%zu: not guest RAM (%llu bytes)",
				 (unsigned long long)gpa, len, (unsigned long long)vm->mem_size);
	memcpy(dst, src, len);
	vm__mark_host_dirty(vm, gpa, len);
	return 0;
}

int vm__load_code(struct vm *vm, uint64_t gpa, const void *code, size_t len)
{
	return vm__write_gpa(vm, gpa, code, len);
}

#define PTE_P   (1ULL << 0)
#define PTE_PS  (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL

int vm__gva_to_gpa(struct vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa)
{
	const struct kvm_sregs *sr = &vm->run->s.regs.sregs;

	if (!cr3) {
		if (!(sr->cr0 & (1ULL << 31))) {      /* paging off: physical */
			*gpa = gva;
			return 0;
		}
		if (sr->cr4 & (1ULL << 12))
			return vmm__fail("page walk 0x%llx: 5-level paging is not supported",
					 (unsigned long long)gva);
		cr3 = sr->cr3;
	}
	uint64_t table = cr3 & PTE_ADDR;
	for (int level = 4; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t idx = (gva >> shift) & 511;
		uint64_t *e = vm__gpa(vm, table + idx * 8, 8);
		if (!e)
			return vmm__fail("page walk 0x%llx: level-%d table at 0x%llx is outside RAM",
					 (unsigned long long)gva, level, (unsigned long long)table);
		if (!(*e & PTE_P))
			return vmm__fail("page walk 0x%llx: not present at level %d (entry 0x%llx)",
					 (unsigned long long)gva, level, (unsigned long long)*e);
		if (level == 1 || ((level == 2 || level == 3) && (*e & PTE_PS))) {
			uint64_t mask = (1ULL << shift) - 1;
			*gpa = ((*e & PTE_ADDR) & ~mask) | (gva & mask);
			return 0;
		}
		table = *e & PTE_ADDR;
	}
	return -1; /* not reached */
}

/* Copies page by page: consecutive virtual pages need not be contiguous. */
static int gva_access(struct vm *vm, uint64_t cr3, uint64_t gva, void *buf, size_t len,
		      bool write)
{
	uint8_t *b = buf;

	while (len) {
		uint64_t gpa;
		size_t chunk = PAGE_SIZE - (gva & (PAGE_SIZE - 1));
		if (chunk > len)
			chunk = len;
		if (vm__gva_to_gpa(vm, cr3, gva, &gpa))
			return -1;
		void *p = vm__gpa(vm, gpa, chunk);
		if (!p)
			return vmm__fail("guest %s 0x%llx: maps to 0x%llx, outside RAM",
					 write ? "write" : "read", (unsigned long long)gva,
					 (unsigned long long)gpa);
		if (write) {
			memcpy(p, b, chunk);
			vm__mark_host_dirty(vm, gpa, chunk);
		} else {
			memcpy(b, p, chunk);
		}
		gva += chunk;
		b += chunk;
		len -= chunk;
	}
	return 0;
}

int vm__read_gva(struct vm *vm, uint64_t cr3, uint64_t gva, void *dst, size_t len)
{
	return gva_access(vm, cr3, gva, dst, len, false);
}

int vm__write_gva(struct vm *vm, uint64_t cr3, uint64_t gva, const void *src, size_t len)
{
	return gva_access(vm, cr3, gva, (void *)src, len, true);
}

const char *vm__console(const struct vm *vm, size_t *len)
{
	if (len)
		*len = vm->console_len;
	return vm->console ? vm->console : "";
}

void vm__console_clear(struct vm *vm)
{
	vm->console_len = 0;
	if (vm->console)
		vm->console[0] = 0;
}

uint64_t vm__run_ns(const struct vm *vm)
{
	return vm->run_ns;
}

uint64_t vm__exit_count(const struct vm *vm)
{
	return vm->exits;
}
