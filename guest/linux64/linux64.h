/* SPDX-License-Identifier: MIT */
/*
 * linux64 entry variant: constants shared by entry_64.S and linux64.c.
 * See docs/variants.md for the design and every window.
 */
#ifndef LINUX64_H
#define LINUX64_H

#include <kinject/abi.h>

/* ---- GDT ------------------------------------------------------------------
 * STAR[47:32] = KERNEL_CS (SYSCALL: CS, SS = KERNEL_CS + 8)
 * STAR[63:48] = USER32_CS (SYSRET64: SS = +8, CS = +16)                     */
#define GDT_ENTRY_KERNEL32_CS 1
#define GDT_ENTRY_KERNEL_CS   2
#define GDT_ENTRY_KERNEL_DS   3
#define GDT_ENTRY_USER32_CS   4
#define GDT_ENTRY_USER_DS     5
#define GDT_ENTRY_USER_CS     6
#define GDT_ENTRY_USER_DS16   7   /* 16-bit DPL3 data: a testbed addition, see below */
#define GDT_ENTRY_TSS         8   /* 16 bytes: entries 8-9 */
#define GDT_ENTRY_LDT         10  /* 16 bytes: entries 10-11 */
#define GDT_ENTRIES           12

#define KERNEL32_CS  0x08
#define KERNEL_CS    0x10
#define KERNEL_DS    0x18
#define USER32_CS    0x23
#define USER_DS      0x2b
#define USER_CS      0x33
#define USER_DS16    0x3b
#define TSS_SEL      0x40
#define LDT_SEL      0x50

/* ---- IST slots (TSS.IST1..7, 1-based as in the IDT gate) ------------------ */
#define IST_DF   1
#define IST_NMI  2
#define IST_DB   3
#define IST_MC   4

/* ---- The cpu entry area: everything the CPU or the entry code touches while
 * the user page tables are loaded.  One page-aligned object in section
 * .cpu_entry_area, mapped (4 KiB pages) in both the kernel and the user page
 * tables at its link address. ------------------------------------------------*/
#define CEA_GDT          0x0000   /* page 0: GDT */
#define CEA_IDT          0x1000   /* page 1: IDT (256 x 16 bytes) */
#define CEA_TSS          0x2000   /* page 2: TSS (104 bytes) ... */
#define CEA_PTI_NOFLUSH  0x2700   /*         ... CR3 NOFLUSH bit or 0 (PCID off) */
#define CEA_LDT          0x2800   /*         ... and the LDT (16 x 8 bytes) */
#define CEA_ENTRY_STACK  0x3000   /* page 3: trampoline (entry) stack */
#define ENTRY_STACK_SIZE 0x1000
#define CEA_IST_BASE     0x4000   /* IST stacks follow, IST_STACK_SIZE each, */
#define IST_STACK_SIZE   0x2000   /* in IST slot order 1..4 */
#define CEA_SIZE         (CEA_IST_BASE + 4 * IST_STACK_SIZE)
#define LDT_MAX_ENTRIES  16

/* TSS field offsets */
#define TSS_RSP0  0x04
#define TSS_RSP1  0x0c
#define TSS_RSP2  0x14   /* unused by the CPU: SYSCALL entry scratch (user RSP) */
#define TSS_IST(n) (0x24 + 8 * ((n) - 1))
#define TSS_IOMAP 0x66
#define TSS_SIZE  0x68

/* ---- Page-table isolation with PCID ---------------------------------------
 * The kernel and user PML4s are an 8 KiB-aligned pair (user = kernel + 4 KiB).
 * kernel CR3 = kpml4 | KERNEL_PCID; user CR3 = kpml4 | 0x1000 | USER_PCID.
 * Entry switches with AND ~PTI_SWITCH_MASK (no memory access needed), exit
 * with OR PTI_SWITCH_MASK.                                                  */
#define KERNEL_PCID       0x001
#define USER_PCID         0x801
#define PTI_USER_PGTABLE_BIT 12
#define PTI_USER_PCID_BIT    11
#define PTI_SWITCH_MASK   0x1800
#define CR3_NOFLUSH_BIT   63

/* ---- ESPFIX64 -------------------------------------------------------------
 * One PML4 slot (shared by kernel and user tables) maps the per-CPU espfix
 * page read-only at every VA ESPFIX_BASE + (x << 16) for x in 0..0xffff
 * (PDPT entries 0-3 -> one PD -> one PT whose entries 16*k map the page).
 * A return to an LDT stack segment copies the IRET frame (and user RDI) to
 * the page through its writable kernel alias, then IRETs with
 * RSP = ESPFIX_BASE | (user RSP & 0xffff0000) | ESPFIX_FRAME_OFF,
 * so RSP[31:16] left behind by IRET to a 16-bit SS are the user's own.     */
#define ESPFIX_PML4_SLOT  510
#define ESPFIX_BASE       0xffffff0000000000
#define ESPFIX_SIZE       0x100000000        /* aliases span 4 GiB */
#define ESPFIX_FRAME_OFF  0xfd0              /* [rdi][rip][cs][rflags][rsp][ss] */

/* ---- linux64 per-CPU fields (kinject_percpu.variant[]) --------------------- */
#define PCPU_ESPFIX_WADDR     (KINJECT_PCPU_VARIANT + 0x00) /* writable alias of the espfix frame */
#define PCPU_ESPFIX_STACK     (KINJECT_PCPU_VARIANT + 0x08) /* RO alias base, bits 31:16 = 0 */
#define PCPU_USER_FLUSH       (KINJECT_PCPU_VARIANT + 0x10) /* bit 0: flush the user PCID on next exit */
#define PCPU_NMI_IST_TOP      (KINJECT_PCPU_VARIANT + 0x18)
#define PCPU_KERNEL_GSBASE    (KINJECT_PCPU_VARIANT + 0x20) /* == &kinject_percpu */
#define PCPU_NMI_COUNT        (KINJECT_PCPU_VARIANT + 0x28) /* NMIs handled (do_nmi calls) */
#define PCPU_NMI_NESTED       (KINJECT_PCPU_VARIANT + 0x30) /* nested NMIs latched */
#define PCPU_BAD_IRET         (KINJECT_PCPU_VARIANT + 0x38) /* IRET faults fixed up */

/* ---- NMI IST stack layout, offsets below the NMI IST top (T) --------------
 *   T-0x28 .. T      hardware frame of the latest NMI ("original")
 *   T-0x30           scratch: RDX of a nested-NMI check
 *   T-0x38           "NMI executing" flag
 *   T-0x60 .. T-0x38 "iret" frame, what the outer NMI's final IRET uses
 *   T-0x88 .. T-0x60 "outermost" frame: the interrupted context, the
 *                    rip..ss of the kinject_frame do_nmi sees
 *   below            error code, vector, orig_rax, GPRs (kinject_frame)    */
#define NMI_ORIG_FRAME   0x28
#define NMI_SCRATCH      0x30
#define NMI_EXECUTING    0x38
#define NMI_IRET_FRAME   0x60
#define NMI_OUTER_FRAME  0x88

/* struct task offsets (guest/include/guest/variant.h, C-only header). */
#ifndef TASK_KSP
#define TASK_KSP        0x00
#define TASK_STACK_TOP  0x08
#endif

/* The value orig_rax holds for entries that are not system calls. */
#define ORIG_RAX_NONE    (-1)

#endif /* LINUX64_H */
