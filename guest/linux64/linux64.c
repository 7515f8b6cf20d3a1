/* SPDX-License-Identifier: MIT */
/*
 * linux64 entry variant: set-up (GDT, TSS, IDT, IST/IRQ/trampoline stacks,
 * page-table isolation with PCID, ESPFIX64, SYSCALL MSRs), the variant side
 * of guest/include/guest/variant.h, and the #DF fixup for a faulting espfix
 * IRET.  The entry/exit code itself is entry_64.S; docs/variants.md
 * describes the design and every window.
 */
#include <stddef.h>
#include <guest/core.h>
#include <guest/variant.h>
#include <guest/x86.h>
#include <guest/paging.h>
#include "linux64.h"

const char variant_name[] = "linux64";
const uint16_t variant_user_cs = USER_CS;
const uint16_t variant_user_ss = USER_DS;
const uint16_t variant_user_cs32 = USER32_CS;
const uint16_t variant_user_ss16 = USER_DS16;

/* ---- The cpu entry area -------------------------------------------------- */
struct idt_gate {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
};

struct cpu_entry_area {
	uint64_t gdt[4096 / 8];
	struct idt_gate idt[256];
	uint8_t tss[CEA_LDT - CEA_TSS];
	uint64_t ldt[(CEA_ENTRY_STACK - CEA_LDT) / 8];
	uint8_t entry_stack[ENTRY_STACK_SIZE];
	uint8_t ist[4][IST_STACK_SIZE];
};

_Static_assert(offsetof(struct cpu_entry_area, idt) == CEA_IDT, "cea");
_Static_assert(offsetof(struct cpu_entry_area, tss) == CEA_TSS, "cea");
_Static_assert(offsetof(struct cpu_entry_area, ldt) == CEA_LDT, "cea");
_Static_assert(offsetof(struct cpu_entry_area, entry_stack) == CEA_ENTRY_STACK, "cea");
_Static_assert(offsetof(struct cpu_entry_area, ist) == CEA_IST_BASE, "cea");
_Static_assert(sizeof(struct cpu_entry_area) == CEA_SIZE, "cea");
_Static_assert(sizeof(struct idt_gate) == 16, "idt gate");
_Static_assert(USER_PCID == (KERNEL_PCID | (1 << PTI_USER_PCID_BIT)), "pti");

struct cpu_entry_area cpu_entry_area
	__attribute__((section(".cpu_entry_area"), aligned(4096)));

/* IRQ stack (kernel tables only). */
#define IRQ_STACK_SIZE 16384
static uint8_t irq_stack[IRQ_STACK_SIZE] __attribute__((aligned(4096)));

/* The PTI PML4 pair: kernel at [0], user at [1] (user = kernel + 4 KiB). */
static uint64_t pti_pgd[2][512] __attribute__((aligned(8192)));
#define KPML4 (pti_pgd[0])
#define UPML4 (pti_pgd[1])

uint64_t linux64_kernel_cr3, linux64_user_cr3;

extern char __entry_text_start[], __entry_text_end[];
extern char __cpu_entry_area_start[], __cpu_entry_area_end[];
extern char __kernel_start[], _end[];
extern char boot_stack_bottom[], boot_stack_top[];
extern uint64_t boot_info_pa;
extern const uint64_t linux64_exc_stubs[32];
extern char irq_entries_start[], entry_INT80_64[];
extern char entry_SYSCALL_64[], entry_SYSCALL_compat[];
extern char irq_return_iret[], asm_exc_general_protection[];
extern char ret_from_fork_kthread[], ret_from_fork_user[];

static void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void fail(const char *msg)
{
	/* Before the core is fully up, report straight to the VMM. */
	kinject_hcall(KINJECT_HC_OOPS, KINJECT_OOPS_BAD_STATE, (uint64_t)msg, 0, 0);
	halt_forever();
}

/* ---- Descriptors ------------------------------------------------------------ */
static void set_system_desc(uint64_t *gdt, unsigned idx, uint64_t base, uint32_t limit,
			    unsigned type)
{
	gdt[idx] = (uint64_t)(limit & 0xffff) | ((base & 0xffffff) << 16) |
		   ((uint64_t)type << 40) | DESC_P |
		   ((uint64_t)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[idx + 1] = base >> 32;
}

static void set_gate(unsigned vec, uint64_t handler, unsigned ist, unsigned dpl)
{
	struct idt_gate *g = &cpu_entry_area.idt[vec];

	g->off0 = handler & 0xffff;
	g->sel = KERNEL_CS;
	g->ist = ist;
	g->type_attr = 0x80 | (dpl << 5) | 0xe;   /* present, 64-bit interrupt gate */
	g->off1 = (handler >> 16) & 0xffff;
	g->off2 = handler >> 32;
	g->zero = 0;
}

static uint64_t *tss_u64(unsigned off) { return (uint64_t *)(cpu_entry_area.tss + off); }

static void setup_gdt_tss_idt(void)
{
	uint64_t *gdt = cpu_entry_area.gdt;
	const uint64_t code = DESC_P | DESC_S | DESC_CODE | DESC_RW | DESC_A;
	const uint64_t data = DESC_P | DESC_S | DESC_RW | DESC_A;
	unsigned v;

	gdt[0] = 0;
	gdt[GDT_ENTRY_KERNEL32_CS] = x86_make_desc(0, 0xfffff, code | DESC_DB | DESC_G);
	gdt[GDT_ENTRY_KERNEL_CS] = x86_make_desc(0, 0xfffff, code | DESC_L | DESC_G);
	gdt[GDT_ENTRY_KERNEL_DS] = x86_make_desc(0, 0xfffff, data | DESC_DB | DESC_G);
	gdt[GDT_ENTRY_USER32_CS] = x86_make_desc(0, 0xfffff, code | DESC_DPL(3) | DESC_DB | DESC_G);
	gdt[GDT_ENTRY_USER_DS] = x86_make_desc(0, 0xfffff, data | DESC_DPL(3) | DESC_DB | DESC_G);
	gdt[GDT_ENTRY_USER_CS] = x86_make_desc(0, 0xfffff, code | DESC_DPL(3) | DESC_L | DESC_G);
	/* A 16-bit (B=0) user stack segment in the GDT.  Linux has none: its
	 * 16-bit stacks come from the LDT only.  The testbed adds one because
	 * some KVM backends (kvm_pvm) cannot IRET to an LDT stack segment; the
	 * exit path sends it through ESPFIX64 exactly like an LDT SS. */
	gdt[GDT_ENTRY_USER_DS16] = x86_make_desc(0, 0xffff, data | DESC_DPL(3));
	set_system_desc(gdt, GDT_ENTRY_TSS, (uint64_t)cpu_entry_area.tss, TSS_SIZE - 1, 0x9);
	gdt[GDT_ENTRY_LDT] = gdt[GDT_ENTRY_LDT + 1] = 0;

	/* TSS: RSP0 = trampoline stack top; IST1-4. */
	*tss_u64(TSS_RSP0) = (uint64_t)cpu_entry_area.entry_stack + ENTRY_STACK_SIZE;
	for (v = 1; v <= 4; v++)
		*tss_u64(TSS_IST(v)) = (uint64_t)cpu_entry_area.ist[v - 1] + IST_STACK_SIZE;
	*(uint16_t *)(cpu_entry_area.tss + TSS_IOMAP) = TSS_SIZE;   /* no I/O bitmap */

	for (v = 0; v < 32; v++)
		set_gate(v, linux64_exc_stubs[v], 0, 0);
	set_gate(X86_TRAP_DB, linux64_exc_stubs[X86_TRAP_DB], IST_DB, 0);
	set_gate(X86_TRAP_NMI, linux64_exc_stubs[X86_TRAP_NMI], IST_NMI, 0);
	set_gate(X86_TRAP_DF, linux64_exc_stubs[X86_TRAP_DF], IST_DF, 0);
	set_gate(X86_TRAP_MC, linux64_exc_stubs[X86_TRAP_MC], IST_MC, 0);
	set_gate(X86_TRAP_BP, linux64_exc_stubs[X86_TRAP_BP], 0, 3);
	set_gate(X86_TRAP_OF, linux64_exc_stubs[X86_TRAP_OF], 0, 3);
	for (v = 32; v < 256; v++)
		set_gate(v, (uint64_t)irq_entries_start + 16 * (v - 32), 0, 0);
	set_gate(KINJECT_VEC_SYSCALL80, (uint64_t)entry_INT80_64, 0, 3);
}

static void load_descriptors(void)
{
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr, idtr;

	gdtr.limit = GDT_ENTRIES * 8 - 1;
	gdtr.base = (uint64_t)cpu_entry_area.gdt;
	idtr.limit = sizeof(cpu_entry_area.idt) - 1;
	idtr.base = (uint64_t)cpu_entry_area.idt;

	__asm__ volatile(
		"lgdt %0\n\t"
		"pushq %[cs]\n\t"
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"movl %[ds], %%eax\n\t"
		"movl %%eax, %%ss\n\t"
		"xorl %%eax, %%eax\n\t"
		"movl %%eax, %%ds\n\t"
		"movl %%eax, %%es\n\t"
		"movl %%eax, %%fs\n\t"
		"movl %%eax, %%gs\n\t"
		"movw %[tss], %%ax\n\t"
		"ltr %%ax\n\t"
		"xorl %%eax, %%eax\n\t"
		"lldt %%ax\n\t"
		"lidt %1"
		:: "m"(gdtr), "m"(idtr), [cs] "i"(KERNEL_CS), [ds] "i"(KERNEL_DS),
		   [tss] "i"(TSS_SEL)
		: "rax", "memory");
}

/* ---- Page tables ------------------------------------------------------------- */
#define TABLE_FLAGS (PTE_W)

static void map_range_user_tables(uint64_t start, uint64_t end, uint64_t leaf)
{
	for (uint64_t va = start & ~0xfffUL; va < end; va += 4096)
		pt_map_4k(UPML4, va, virt_to_phys(va), leaf, TABLE_FLAGS);
}

static void setup_page_tables(uint64_t mem_size)
{
	uint64_t pa;

	if (mem_size > (1UL << 30))
		mem_size = 1UL << 30;
	/* Kernel tables: all RAM at KINJECT_KERNEL_VBASE + PA (2 MiB pages). */
	for (pa = 0; pa < mem_size; pa += 2UL << 20)
		pt_map_2m(KPML4, KINJECT_KERNEL_VBASE + pa, pa, PTE_W, TABLE_FLAGS);

	/* User tables, kernel half: the entry text (read-only, executable) and
	 * the cpu entry area (GDT, IDT, TSS, LDT, trampoline and IST stacks),
	 * at the same addresses as in the kernel tables. */
	map_range_user_tables((uint64_t)__entry_text_start, (uint64_t)__entry_text_end, 0);
	map_range_user_tables((uint64_t)__cpu_entry_area_start, (uint64_t)__cpu_entry_area_end,
			      PTE_W | PTE_NX);

	/* ESPFIX64: PML4 slot shared by both tables. */
	uint64_t espfix_page = page_alloc();
	uint64_t pdpt = page_alloc(), pd = page_alloc(), pt = page_alloc();
	uint64_t *pdpt_v = phys_to_virt(pdpt), *pd_v = phys_to_virt(pd), *pt_v = phys_to_virt(pt);
	unsigned i;

	/* Accessed (and Dirty) preset, as paging.c does everywhere. */
	for (i = 0; i < 4; i++)          /* VA bits 31:30 */
		pdpt_v[i] = pd | PTE_P | PTE_W | PTE_A;
	for (i = 0; i < 512; i++)        /* VA bits 29:21 */
		pd_v[i] = pt | PTE_P | PTE_W | PTE_A;
	for (i = 0; i < 512; i += 16)    /* VA bits 20:16; bits 15:12 = 0 */
		pt_v[i] = espfix_page | PTE_P | PTE_NX | PTE_A | PTE_D;   /* read-only */
	KPML4[ESPFIX_PML4_SLOT] = UPML4[ESPFIX_PML4_SLOT] = pdpt | PTE_P | PTE_W | PTE_A;

	kinject_percpu.variant[PCPU_ESPFIX_WADDR / 8 - KINJECT_PCPU_VARIANT / 8] =
		(uint64_t)phys_to_virt(espfix_page) + ESPFIX_FRAME_OFF;
	kinject_percpu.variant[PCPU_ESPFIX_STACK / 8 - KINJECT_PCPU_VARIANT / 8] =
		ESPFIX_BASE + ESPFIX_FRAME_OFF;

	/* With PCID: kernel PCID 1, user PCID 0x801, NOFLUSH on switches.
	 * Without: the same arithmetic (bit 11 is ignored), full flushes. */
	linux64_kernel_cr3 = virt_to_phys(KPML4) |
			     (x86_has(X86_FEATURE_PCID) ? KERNEL_PCID : 0);
	linux64_user_cr3 = linux64_kernel_cr3 | PTI_SWITCH_MASK;
	*(uint64_t *)(cpu_entry_area.tss + (CEA_PTI_NOFLUSH - CEA_TSS)) =
		x86_has(X86_FEATURE_PCID) ? X86_CR3_NOFLUSH : 0;
}

#define VARIANT_SLOT(off) kinject_percpu.variant[((off) - KINJECT_PCPU_VARIANT) / 8]

void variant_map_user(uint64_t va, uint64_t pa, unsigned flags)
{
	uint64_t leaf = PTE_U;
	unsigned idx = PML4_INDEX(va);

	if (va >= 0x0000800000000000UL)
		fail("variant_map_user: not a user address");
	/* The user half is shared: both PML4s point at the same PDPTs. */
	if (!(KPML4[idx] & PTE_P)) {
		KPML4[idx] = page_alloc() | PTE_P | PTE_W | PTE_U | PTE_A;
		UPML4[idx] = KPML4[idx];
	}
	if (flags & VARIANT_MAP_WRITE)
		leaf |= PTE_W;
	if (!(flags & VARIANT_MAP_EXEC))
		leaf |= PTE_NX;
	pt_map_4k(KPML4, va, pa, leaf, PTE_W | PTE_U);
	invlpg(va);                                   /* kernel PCID */
	VARIANT_SLOT(PCPU_USER_FLUSH) = 1;            /* user PCID: on the next exit */
}

void variant_set_ldt(const uint64_t *desc, unsigned n)
{
	uint64_t *gdt = cpu_entry_area.gdt;
	unsigned i;

	if (n > LDT_MAX_ENTRIES)
		fail("variant_set_ldt: too many descriptors");
	for (i = 0; i < LDT_MAX_ENTRIES; i++) {
		uint64_t d = i < n ? desc[i] : 0;

		/* Pre-set the accessed bit of code/data descriptors so the CPU
		 * never has to write the LDT while loading a selector. */
		if (d & DESC_S)
			d |= DESC_A;
		cpu_entry_area.ldt[i] = d;
	}
	if (n == 0) {
		gdt[GDT_ENTRY_LDT] = gdt[GDT_ENTRY_LDT + 1] = 0;
		__asm__ volatile("lldt %w0" :: "r"(0) : "memory");
		return;
	}
	set_system_desc(gdt, GDT_ENTRY_LDT, (uint64_t)cpu_entry_area.ldt, n * 8 - 1, 0x2);
	__asm__ volatile("lldt %w0" :: "r"(LDT_SEL) : "memory");
}

/* ---- Tasks ------------------------------------------------------------------ */
struct switch_frame {
	uint64_t r15, r14, r13, r12, rbx, rbp, ret;
};

void variant_prepare_kthread(struct task *t, uint64_t stack_top,
			     void (*fn)(void *), void *arg)
{
	uint64_t top = stack_top & ~15UL;
	struct switch_frame *sf = (struct switch_frame *)(top - 64);

	*sf = (struct switch_frame){ .r12 = (uint64_t)fn, .r13 = (uint64_t)arg,
				     .ret = (uint64_t)ret_from_fork_kthread };
	((uint64_t *)t)[TASK_KSP / 8] = (uint64_t)sf;
	((uint64_t *)t)[TASK_STACK_TOP / 8] = stack_top;
}

void variant_prepare_user(struct task *t, uint64_t stack_top,
			  const struct kinject_frame *user)
{
	struct kinject_frame *f = (struct kinject_frame *)(stack_top - KINJECT_FRAME_SIZE);
	struct switch_frame *sf = (struct switch_frame *)f - 1;

	*f = *user;
	f->orig_rax = (uint64_t)ORIG_RAX_NONE;
	f->vector = 0;
	f->error_code = 0;
	f->cs = user->cs ? user->cs : USER_CS;
	f->ss = user->ss ? user->ss : USER_DS;
	f->rflags = user->rflags | X86_RFLAGS_FIXED | X86_RFLAGS_IF;
	*sf = (struct switch_frame){ .ret = (uint64_t)ret_from_fork_user };
	((uint64_t *)t)[TASK_KSP / 8] = (uint64_t)sf;
	((uint64_t *)t)[TASK_STACK_TOP / 8] = stack_top;
}

/* ---- #DF fixup ---------------------------------------------------------------
 * An IRET that faults (#GP/#SS/#NP) on the read-only espfix stack cannot push
 * the fault frame there and escalates to #DF.  Turn it into the #GP it was:
 * build a user-mode #GP frame (error code lost: 0) from the IRET frame on the
 * trampoline stack and make the #DF return to asm_exc_general_protection on
 * it, after paranoid_exit restored user GS and CR3 as the IRET had them.
 * Called from paranoid_common on the #DF IST stack; returns 1 if fixed. */
int linux64_double_fault_fixup(struct kinject_frame *f);
int linux64_double_fault_fixup(struct kinject_frame *f)
{
	const uint64_t *iret;
	uint64_t *gp;
	int i;

	if (f->rip != (uint64_t)irq_return_iret || (f->cs & 3) ||
	    f->rsp - ESPFIX_BASE >= ESPFIX_SIZE)
		return 0;
	iret = (const uint64_t *)f->rsp;      /* rip, cs, rflags, rsp, ss */
	gp = (uint64_t *)(kinject_percpu.entry_stack_top) - 6;
	gp[0] = 0;
	for (i = 0; i < 5; i++)
		gp[i + 1] = iret[i];
	f->rip = (uint64_t)asm_exc_general_protection;
	f->rsp = (uint64_t)gp;
	f->rflags &= ~X86_RFLAGS_IF;
	VARIANT_SLOT(PCPU_BAD_IRET)++;
	return 1;
}

/* ---- Layout ----------------------------------------------------------------- */
static void layout_add_stack(uint64_t kind, uint64_t start, uint64_t end)
{
	uint64_t n = kinject_layout.nstacks;

	if (n >= KINJECT_LAYOUT_MAX_STACKS)
		return;
	kinject_layout.stacks[n].kind = kind;
	kinject_layout.stacks[n].start = start;
	kinject_layout.stacks[n].end = end;
	kinject_layout.nstacks = n + 1;
}

static __attribute__((noinline)) void fill_layout(void)   /* see kmain.c: layout_init */
{
	unsigned i;

	if (!kinject_layout.magic) {
		kinject_layout.magic = KINJECT_LAYOUT_MAGIC;
		kinject_layout.abi_version = KINJECT_ABI_VERSION;
	}
	for (i = 0; i < sizeof(kinject_layout.variant) - 1 && variant_name[i]; i++)
		kinject_layout.variant[i] = variant_name[i];
	kinject_layout.variant[i] = 0;
	kinject_layout.percpu = (uint64_t)&kinject_percpu;
	kinject_layout.kernel_cr3 = linux64_kernel_cr3;
	kinject_layout.user_cr3 = linux64_user_cr3;
	kinject_layout.entry_text_start = (uint64_t)__entry_text_start;
	kinject_layout.entry_text_end = (uint64_t)__entry_text_end;
	layout_add_stack(KINJECT_STACK_IRQ, (uint64_t)irq_stack, (uint64_t)irq_stack + IRQ_STACK_SIZE);
	for (i = 0; i < 4; i++)
		layout_add_stack(KINJECT_STACK_IST, (uint64_t)cpu_entry_area.ist[i],
				 (uint64_t)cpu_entry_area.ist[i] + IST_STACK_SIZE);
	/* The NMI stack keeps one word across NMIs: "NMI executing". */
	{
		uint64_t top = (uint64_t)cpu_entry_area.ist[IST_NMI - 1] + IST_STACK_SIZE;
		struct kinject_range *nmi = &kinject_layout.stacks[kinject_layout.nstacks - 4 + IST_NMI - 1];
		nmi->live_start = top - NMI_EXECUTING;
		nmi->live_end = top - NMI_EXECUTING + 8;
	}
	layout_add_stack(KINJECT_STACK_ENTRY, (uint64_t)cpu_entry_area.entry_stack,
			 (uint64_t)cpu_entry_area.entry_stack + ENTRY_STACK_SIZE);
	layout_add_stack(KINJECT_STACK_ESPFIX, ESPFIX_BASE, ESPFIX_BASE + ESPFIX_SIZE);
	/* NMI count, nested NMIs, IRET faults fixed up: counters only. */
	layout_add_stats((uint64_t)&kinject_percpu + PCPU_NMI_COUNT,
			 (uint64_t)&kinject_percpu + PCPU_BAD_IRET + 8);
}

/* ---- variant_init ----------------------------------------------------------- */
void variant_init(void)
{
	const struct kinject_boot_info *bi = phys_to_virt(boot_info_pa);
	uint64_t cr4;

	setup_gdt_tss_idt();
	load_descriptors();
	setup_page_tables(boot_info_pa && bi->magic == KINJECT_BOOT_MAGIC ?
			  bi->mem_size : (32UL << 20));

	/* CR4.PCIDE needs CR3[11:0] == 0: set it while on the VMM's tables.
	 * Every feature is optional: the KVM we run on may not offer it. */
	cr4 = read_cr4();
	if (x86_has(X86_FEATURE_PCID))
		cr4 |= X86_CR4_PCIDE;
	if (x86_has(X86_FEATURE_FSGSBASE))
		cr4 |= X86_CR4_FSGSBASE;
	if (x86_has(X86_FEATURE_SMEP))
		cr4 |= X86_CR4_SMEP;
	if (x86_has(X86_FEATURE_SMAP))
		cr4 |= X86_CR4_SMAP;
	write_cr4(cr4);
	write_cr3(linux64_kernel_cr3);

	/* Per-CPU area: GS base (kernel), KERNEL_GS_BASE = user's (0). */
	kinject_percpu.self = (uint64_t)&kinject_percpu;
	wrmsr(MSR_FS_BASE, 0);
	wrmsr(MSR_GS_BASE, (uint64_t)&kinject_percpu);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
	kinject_percpu.kernel_cr3 = linux64_kernel_cr3;
	kinject_percpu.user_cr3 = linux64_user_cr3;
	kinject_percpu.irq_stack_top = (uint64_t)irq_stack + IRQ_STACK_SIZE;
	kinject_percpu.irq_stack_inuse = 0;
	kinject_percpu.entry_stack_top = (uint64_t)cpu_entry_area.entry_stack + ENTRY_STACK_SIZE;
	if (!kinject_percpu.top_of_stack)
		kinject_percpu.top_of_stack = (uint64_t)boot_stack_top;
	VARIANT_SLOT(PCPU_USER_FLUSH) = 1;
	VARIANT_SLOT(PCPU_NMI_IST_TOP) = (uint64_t)cpu_entry_area.ist[IST_NMI - 1] + IST_STACK_SIZE;
	VARIANT_SLOT(PCPU_KERNEL_GSBASE) = (uint64_t)&kinject_percpu;

	/* SYSCALL/SYSRET. */
	wrmsr(MSR_STAR, ((uint64_t)USER32_CS << 48) | ((uint64_t)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)entry_SYSCALL_64);
	wrmsr(MSR_CSTAR, (uint64_t)entry_SYSCALL_compat);
	wrmsr(MSR_SYSCALL_MASK, X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_AF |
	      X86_RFLAGS_ZF | X86_RFLAGS_SF | X86_RFLAGS_TF | X86_RFLAGS_IF |
	      X86_RFLAGS_DF | X86_RFLAGS_OF | X86_RFLAGS_IOPL | X86_RFLAGS_NT |
	      X86_RFLAGS_RF | X86_RFLAGS_AC | X86_RFLAGS_ID);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE | EFER_NXE);

	/* Debug registers: nothing armed, DR6 at its reset value. */
	write_dr7(0x400);
	write_dr6(X86_DR6_FIXED);

	fill_layout();
}
