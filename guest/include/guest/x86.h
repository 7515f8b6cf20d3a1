/* SPDX-License-Identifier: MIT */
/*
 * x86-64 architecture helpers shared by the guest core and the entry
 * variants: MSR numbers, control-register bits, descriptor constants and
 * small inline-asm accessors.  Usable from C; the #define part is also
 * usable from GNU as (.S) files.
 *
 * This header is stable: new things may be added, existing names keep
 * their meaning.
 */
#ifndef GUEST_X86_H
#define GUEST_X86_H

#include <kinject/abi.h>

/* Unsigned-long constants usable from both C and GNU as. */
#ifdef __ASSEMBLER__
#define X86_UL(x) x
#else
#define X86_UL(x) x##UL
#endif

/* ---- RFLAGS --------------------------------------------------------- */
#define X86_RFLAGS_CF     (X86_UL(1) << 0)
#define X86_RFLAGS_FIXED  (X86_UL(1) << 1)   /* always 1 */
#define X86_RFLAGS_PF     (X86_UL(1) << 2)
#define X86_RFLAGS_AF     (X86_UL(1) << 4)
#define X86_RFLAGS_ZF     (X86_UL(1) << 6)
#define X86_RFLAGS_SF     (X86_UL(1) << 7)
#define X86_RFLAGS_TF     (X86_UL(1) << 8)
#define X86_RFLAGS_IF     (X86_UL(1) << 9)
#define X86_RFLAGS_DF     (X86_UL(1) << 10)
#define X86_RFLAGS_OF     (X86_UL(1) << 11)
#define X86_RFLAGS_IOPL   (X86_UL(3) << 12)
#define X86_RFLAGS_NT     (X86_UL(1) << 14)
#define X86_RFLAGS_RF     (X86_UL(1) << 16)
#define X86_RFLAGS_VM     (X86_UL(1) << 17)
#define X86_RFLAGS_AC     (X86_UL(1) << 18)
#define X86_RFLAGS_VIF    (X86_UL(1) << 19)
#define X86_RFLAGS_VIP    (X86_UL(1) << 20)
#define X86_RFLAGS_ID     (X86_UL(1) << 21)

/* ---- CR0 / CR4 -------------------------------------------------------- */
#define X86_CR0_PE   (X86_UL(1) << 0)
#define X86_CR0_MP   (X86_UL(1) << 1)
#define X86_CR0_EM   (X86_UL(1) << 2)
#define X86_CR0_TS   (X86_UL(1) << 3)
#define X86_CR0_ET   (X86_UL(1) << 4)
#define X86_CR0_NE   (X86_UL(1) << 5)
#define X86_CR0_WP   (X86_UL(1) << 16)
#define X86_CR0_AM   (X86_UL(1) << 18)
#define X86_CR0_PG   (X86_UL(1) << 31)

#define X86_CR4_VME        (X86_UL(1) << 0)
#define X86_CR4_PVI        (X86_UL(1) << 1)
#define X86_CR4_TSD        (X86_UL(1) << 2)
#define X86_CR4_DE         (X86_UL(1) << 3)
#define X86_CR4_PSE        (X86_UL(1) << 4)
#define X86_CR4_PAE        (X86_UL(1) << 5)
#define X86_CR4_MCE        (X86_UL(1) << 6)
#define X86_CR4_PGE        (X86_UL(1) << 7)
#define X86_CR4_PCE        (X86_UL(1) << 8)
#define X86_CR4_OSFXSR     (X86_UL(1) << 9)
#define X86_CR4_OSXMMEXCPT (X86_UL(1) << 10)
#define X86_CR4_UMIP       (X86_UL(1) << 11)
#define X86_CR4_FSGSBASE   (X86_UL(1) << 16)
#define X86_CR4_PCIDE      (X86_UL(1) << 17)
#define X86_CR4_OSXSAVE    (X86_UL(1) << 18)
#define X86_CR4_SMEP       (X86_UL(1) << 20)
#define X86_CR4_SMAP       (X86_UL(1) << 21)

/* CR3: PCID in bits 11:0 (with CR4.PCIDE), bit 63 = do not flush on write. */
#define X86_CR3_PCID_MASK  X86_UL(0xfff)
#define X86_CR3_NOFLUSH    (X86_UL(1) << 63)

/* ---- MSRs ---------------------------------------------------------------- */
#define MSR_IA32_APIC_BASE      0x0000001b
#define MSR_IA32_DEBUGCTL       0x000001d9
#define MSR_IA32_PAT            0x00000277
#define MSR_EFER                0xc0000080
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084   /* SFMASK */
#define MSR_FS_BASE             0xc0000100
#define MSR_GS_BASE             0xc0000101
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MSR_TSC_AUX             0xc0000103

#define EFER_SCE   (X86_UL(1) << 0)
#define EFER_LME   (X86_UL(1) << 8)
#define EFER_LMA   (X86_UL(1) << 10)
#define EFER_NXE   (X86_UL(1) << 11)

/* ---- Exception vectors ---------------------------------------------------- */
#define X86_TRAP_DE   0   /* divide error */
#define X86_TRAP_DB   1   /* debug */
#define X86_TRAP_NMI  2
#define X86_TRAP_BP   3   /* int3 */
#define X86_TRAP_OF   4
#define X86_TRAP_BR   5
#define X86_TRAP_UD   6
#define X86_TRAP_NM   7
#define X86_TRAP_DF   8   /* double fault (error code 0) */
#define X86_TRAP_OLD_MF 9
#define X86_TRAP_TS   10  /* error code */
#define X86_TRAP_NP   11  /* error code */
#define X86_TRAP_SS   12  /* error code */
#define X86_TRAP_GP   13  /* error code */
#define X86_TRAP_PF   14  /* error code */
#define X86_TRAP_SPURIOUS 15
#define X86_TRAP_MF   16
#define X86_TRAP_AC   17  /* error code */
#define X86_TRAP_MC   18
#define X86_TRAP_XF   19
#define X86_TRAP_VE   20
#define X86_TRAP_CP   21  /* error code */
#define X86_TRAP_HV   28
#define X86_TRAP_VC   29  /* error code */
#define X86_TRAP_SX   30  /* error code */

/* #PF error code bits */
#define X86_PF_PROT   (X86_UL(1) << 0)
#define X86_PF_WRITE  (X86_UL(1) << 1)
#define X86_PF_USER   (X86_UL(1) << 2)
#define X86_PF_RSVD   (X86_UL(1) << 3)
#define X86_PF_INSTR  (X86_UL(1) << 4)
#define X86_PF_PK     (X86_UL(1) << 5)

/* DR6 / DR7 */
#define X86_DR6_B0    (X86_UL(1) << 0)
#define X86_DR6_BD    (X86_UL(1) << 13)
#define X86_DR6_BS    (X86_UL(1) << 14)
#define X86_DR6_RTM   (X86_UL(1) << 16)
#define X86_DR6_FIXED X86_UL(0xffff0ff0)

/* ---- Page-table entries ----------------------------------------------------- */
#define PTE_P     (X86_UL(1) << 0)
#define PTE_W     (X86_UL(1) << 1)
#define PTE_U     (X86_UL(1) << 2)
#define PTE_PWT   (X86_UL(1) << 3)
#define PTE_PCD   (X86_UL(1) << 4)
#define PTE_A     (X86_UL(1) << 5)
#define PTE_D     (X86_UL(1) << 6)
#define PTE_PS    (X86_UL(1) << 7)
#define PTE_G     (X86_UL(1) << 8)
#define PTE_NX    (X86_UL(1) << 63)
#define PTE_ADDR_MASK X86_UL(0x000ffffffffff000)
#define PAGE_SIZE  X86_UL(4096)
#define PAGE_SHIFT 12

/* ---- Segment selectors (the linux64 GDT; other variants may differ, so the
 * core should prefer variant_user_cs/ss/cs32 from guest/variant.h) ---------- */
#define SEL_RPL_MASK  3
#define SEL_TI_LDT    4     /* selector refers to the LDT */

/* Descriptor access-byte / flag bits (for building raw 8-byte descriptors,
 * e.g. LDT entries for variant_set_ldt()). */
#define DESC_A        (X86_UL(1) << 40)   /* accessed */
#define DESC_RW       (X86_UL(1) << 41)   /* data: writable; code: readable */
#define DESC_DC       (X86_UL(1) << 42)   /* data: expand-down; code: conforming */
#define DESC_CODE     (X86_UL(1) << 43)
#define DESC_S        (X86_UL(1) << 44)   /* code/data (not system) */
#define DESC_DPL(n)   (X86_UL(n) << 45)
#define DESC_P        (X86_UL(1) << 47)
#define DESC_AVL      (X86_UL(1) << 52)
#define DESC_L        (X86_UL(1) << 53)   /* 64-bit code */
#define DESC_DB       (X86_UL(1) << 54)   /* 32-bit default size / big stack */
#define DESC_G        (X86_UL(1) << 55)   /* 4 KiB granularity */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* A flat code/data descriptor with base and 20-bit limit.  flags: DESC_* bits
 * (access byte + L/DB/G/AVL).  Example: a 16-bit ring-3 data segment,
 * base 0, limit 0xfffff, page granular:
 *   x86_make_desc(0, 0xfffff, DESC_P|DESC_S|DESC_RW|DESC_DPL(3)|DESC_G) */
static inline uint64_t x86_make_desc(uint32_t base, uint32_t limit, uint64_t flags)
{
	return (uint64_t)(limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       ((uint64_t)(base >> 24) << 56) | flags;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

#define X86_DEFINE_CR(n)                                                   \
	static inline uint64_t read_cr##n(void)                            \
	{                                                                  \
		uint64_t v;                                                \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v) :: "memory"); \
		return v;                                                  \
	}                                                                  \
	static inline void write_cr##n(uint64_t v)                         \
	{                                                                  \
		__asm__ volatile("mov %0, %%cr" #n :: "r"(v) : "memory");  \
	}
X86_DEFINE_CR(0)
X86_DEFINE_CR(2)
X86_DEFINE_CR(3)
X86_DEFINE_CR(4)
#undef X86_DEFINE_CR

static inline uint64_t read_dr6(void)
{
	uint64_t v;
	__asm__ volatile("mov %%dr6, %0" : "=r"(v));
	return v;
}
static inline void write_dr6(uint64_t v) { __asm__ volatile("mov %0, %%dr6" :: "r"(v)); }
static inline uint64_t read_dr7(void)
{
	uint64_t v;
	__asm__ volatile("mov %%dr7, %0" : "=r"(v));
	return v;
}
static inline void write_dr7(uint64_t v) { __asm__ volatile("mov %0, %%dr7" :: "r"(v)); }

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
/* sti; hlt with no window between them (STI shadow). */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
/* STAC/CLAC raise #UD on a CPU without SMAP: every site is recorded in
 * section .smap_sites and replaced by a 3-byte NOP at boot (x86_cpu_init)
 * when CPUID lacks SMAP.  In assembly use ASM_STAC / ASM_CLAC. */
#define X86_SMAP_SITE(insn)                                     \
	"661:\n\t" insn "\n\t"                                   \
	".pushsection .smap_sites, \"a\"\n\t.balign 8\n\t"      \
	".quad 661b\n\t.popsection\n\t"
static inline void stac(void) { __asm__ volatile(X86_SMAP_SITE("stac") ::: "memory", "cc"); }
static inline void clac(void) { __asm__ volatile(X86_SMAP_SITE("clac") ::: "memory", "cc"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

static inline uint64_t read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v) :: "memory");
	return v;
}
static inline void write_rflags(uint64_t v)
{
	__asm__ volatile("pushq %0; popfq" :: "r"(v) : "memory", "cc");
}
static inline int irqs_enabled(void) { return (read_rflags() & X86_RFLAGS_IF) != 0; }
/* Saves RFLAGS and disables IRQs; restore with local_irq_restore(). */
static inline uint64_t local_irq_save(void)
{
	uint64_t f = read_rflags();
	cli();
	return f;
}
static inline void local_irq_restore(uint64_t f)
{
	if (f & X86_RFLAGS_IF)
		sti();
}

/* CPU features, detected by x86_cpu_init() (guest/arch/x86_64/cpu.c), which
 * _start runs before kmain.  The CPU KVM offers may lack any of them. */
#define X86_FEATURE_PCID      (1u << 0)
#define X86_FEATURE_FSGSBASE  (1u << 1)
#define X86_FEATURE_SMEP      (1u << 2)
#define X86_FEATURE_SMAP      (1u << 3)
#define X86_FEATURE_UMIP      (1u << 4)
extern uint32_t x86_features;
static inline int x86_has(uint32_t feature) { return (x86_features & feature) != 0; }
void x86_cpu_init(uint64_t boot_info_pa);

/* RDFSBASE & co. need CR4.FSGSBASE (and X86_FEATURE_FSGSBASE). */
static inline uint64_t rdfsbase(void)
{
	uint64_t v;
	__asm__ volatile("rdfsbase %0" : "=r"(v));
	return v;
}
static inline uint64_t rdgsbase(void)
{
	uint64_t v;
	__asm__ volatile("rdgsbase %0" : "=r"(v));
	return v;
}
static inline void wrfsbase(uint64_t v) { __asm__ volatile("wrfsbase %0" :: "r"(v) : "memory"); }
static inline void wrgsbase(uint64_t v) { __asm__ volatile("wrgsbase %0" :: "r"(v) : "memory"); }

static inline void invlpg(uint64_t va) { __asm__ volatile("invlpg (%0)" :: "r"(va) : "memory"); }

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }

/* Hypercall (abi.h): EAX = nr, args in RDI, RSI, RDX, RCX; result in RAX. */
static inline uint64_t kinject_hcall(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
	uint64_t ret = nr;
	__asm__ volatile("outl %%eax, %w1"
			 : "+a"(ret)
			 : "Nd"((uint16_t)KINJECT_PORT_HCALL), "D"(a0), "S"(a1), "d"(a2), "c"(a3)
			 : "memory");
	return ret;
}

struct x86_cpuid { uint32_t eax, ebx, ecx, edx; };
static inline struct x86_cpuid cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct x86_cpuid r;
	__asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(subleaf));
	return r;
}

/* Per-CPU access through the kernel GS base (GS:0 == &kinject_percpu). Use
 * the KINJECT_PCPU_* offsets from abi.h. */
static inline uint64_t this_cpu_read(unsigned off)
{
	uint64_t v;
	__asm__ volatile("movq %%gs:(%1), %0" : "=r"(v) : "r"((uint64_t)off) : "memory");
	return v;
}
static inline void this_cpu_write(unsigned off, uint64_t v)
{
	__asm__ volatile("movq %0, %%gs:(%1)" :: "r"(v), "r"((uint64_t)off) : "memory");
}
#else /* __ASSEMBLER__ */

/* STAC/CLAC in assembly: recorded for the no-SMAP patching (see above). */
.macro ASM_STAC
661:	stac
	.pushsection .smap_sites, "a"
	.balign 8
	.quad 661b
	.popsection
.endm
.macro ASM_CLAC
661:	clac
	.pushsection .smap_sites, "a"
	.balign 8
	.quad 661b
	.popsection
.endm

#endif /* __ASSEMBLER__ */

#endif /* GUEST_X86_H */
