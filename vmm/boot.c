/* SPDX-License-Identifier: MIT */
/*
 * boot.c: straight into long mode.  Builds the scaffolding the boot
 * protocol in guest/include/kinject/abi.h promises (page tables mapping RAM
 * identity and at KINJECT_KERNEL_VBASE with 2 MiB pages, a flat GDT, the
 * boot-info block) and sets the registers so the first instruction the
 * guest runs is e_entry, already in 64-bit mode.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <kinject/abi.h>
#include "internal.h"

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

#define PT_P  (1ULL << 0)
#define PT_RW (1ULL << 1)
#define PT_PS (1ULL << 7)

#define BOOT_PML4  (KINJECT_BOOT_PGTABLE + 0x0000)
#define BOOT_PDPT0 (KINJECT_BOOT_PGTABLE + 0x1000)
#define BOOT_PDPTH (KINJECT_BOOT_PGTABLE + 0x2000)
#define BOOT_PD    (KINJECT_BOOT_PGTABLE + 0x3000)
/* A zeroed 64-bit TSS next to the GDT: VM entry wants a usable TR. */
#define BOOT_TSS   (KINJECT_BOOT_GDT + 0x100)

static int build_page_tables(struct vm *vm)
{
	uint64_t pml4[512] = { 0 }, pdpt0[512] = { 0 }, pdpth[512] = { 0 }, pd[512] = { 0 };
	const uint64_t vbase = KINJECT_KERNEL_VBASE;

	for (uint64_t i = 0; i < vm->mem_size >> 21; i++)
		pd[i] = (i << 21) | PT_P | PT_RW | PT_PS;
	/* One PD serves both views: identity (PML4[0], PDPT[0]) and the
	 * kernel's -2 GiB window (PML4[511], PDPT[510]). */
	pdpt0[0] = BOOT_PD | PT_P | PT_RW;
	pdpth[(vbase >> 30) & 511] = BOOT_PD | PT_P | PT_RW;
	pml4[0] = BOOT_PDPT0 | PT_P | PT_RW;
	pml4[(vbase >> 39) & 511] = BOOT_PDPTH | PT_P | PT_RW;
	return vm__write_gpa(vm, BOOT_PML4, pml4, sizeof(pml4)) ||
	       vm__write_gpa(vm, BOOT_PDPT0, pdpt0, sizeof(pdpt0)) ||
	       vm__write_gpa(vm, BOOT_PDPTH, pdpth, sizeof(pdpth)) ||
	       vm__write_gpa(vm, BOOT_PD, pd, sizeof(pd)) ? -1 : 0;
}

static int build_gdt(struct vm *vm)
{
	uint64_t gdt[5] = {
		0,
		0x00af9a000000ffffULL,    /* 0x08: 64-bit code, DPL0 */
		0x00cf92000000ffffULL,    /* 0x10: flat data, DPL0 */
		0, 0,                     /* 0x18: TSS (16 bytes) */
	};
	uint64_t base = BOOT_TSS, limit = 0x67;
	gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ULL << 40) |
		 (((base >> 24) & 0xff) << 56);
	gdt[4] = base >> 32;
	uint8_t tss[0x68] = { 0 };
	return vm__write_gpa(vm, KINJECT_BOOT_GDT, gdt, sizeof(gdt)) ||
	       vm__write_gpa(vm, BOOT_TSS, tss, sizeof(tss)) ? -1 : 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

int vm__boot_long_mode(struct vm *vm, uint64_t entry, const char *cmdline)
{
	struct kinject_boot_info info = {
		.magic = KINJECT_BOOT_MAGIC,
		.abi_version = KINJECT_ABI_VERSION,
		.mem_size = vm->mem_size,
	};

	if (!cmdline)
		cmdline = "";
	if (strlen(cmdline) >= KINJECT_CMDLINE_MAX)
		return vmm__fail("command line: %zu bytes, the boot protocol allows %d",
				 strlen(cmdline), KINJECT_CMDLINE_MAX - 1);
	strcpy(info.cmdline, cmdline);
	if (vm__write_gpa(vm, KINJECT_BOOT_INFO, &info, sizeof(info)) ||
	    build_gdt(vm) || build_page_tables(vm))
		return -1;

	struct kvm_sregs *sr = &vm->run->s.regs.sregs;
	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, sr) < 0)
		return vmm__fail("KVM_GET_SREGS: %s", strerror(errno));
	seg(&sr->cs, KINJECT_BOOT_CS, 0xb, true);
	seg(&sr->ds, KINJECT_BOOT_DS, 0x3, false);
	sr->es = sr->ss = sr->ds;
	sr->es.selector = sr->ss.selector = KINJECT_BOOT_DS;
	seg(&sr->fs, 0, 0x3, false);
	sr->gs = sr->fs;
	memset(&sr->tr, 0, sizeof(sr->tr));
	sr->tr.selector = 0x18;
	sr->tr.base = BOOT_TSS;
	sr->tr.limit = 0x67;
	sr->tr.type = 0xb;                /* busy 64-bit TSS, as after LTR */
	sr->tr.present = 1;
	memset(&sr->ldt, 0, sizeof(sr->ldt));
	sr->ldt.type = 0x2;
	sr->ldt.unusable = 1;
	sr->gdt.base = KINJECT_BOOT_GDT;
	sr->gdt.limit = 5 * 8 - 1;
	sr->idt.base = 0;
	sr->idt.limit = 0;
	sr->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sr->cr3 = BOOT_PML4;
	sr->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sr->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	memset(sr->interrupt_bitmap, 0, sizeof(sr->interrupt_bitmap));
	vcpu__state_touched(vm);
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, sr) < 0)
		return vmm__fail("KVM_SET_SREGS (long-mode entry state): %s", strerror(errno));

	struct kvm_regs *r = &vm->run->s.regs.regs;
	memset(r, 0, sizeof(*r));
	r->rip = entry;
	r->rsp = KINJECT_BOOT_STACK_TOP;
	r->rdi = KINJECT_BOOT_INFO;
	r->rsi = KINJECT_BOOT_MAGIC;
	r->rflags = 0x2;
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, r) < 0)
		return vmm__fail("KVM_SET_REGS (long-mode entry state): %s", strerror(errno));
	/* Keep the sync area what KVM now holds (SET_SREGS may normalise). */
	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, sr) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_GET_VCPU_EVENTS, &vm->run->s.regs.events) < 0)
		return vmm__fail("KVM_GET_SREGS/VCPU_EVENTS: %s", strerror(errno));
	vm->run->kvm_dirty_regs &= ~(uint64_t)(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	return 0;
}
