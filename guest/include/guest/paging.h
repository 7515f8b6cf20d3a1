/* SPDX-License-Identifier: MIT */
/*
 * x86-64 4-level paging helpers (guest/arch/x86_64/paging.c).  Tables are
 * allocated with the core's page_alloc() and reached through the kernel
 * direct map (phys_to_virt), so these work once variant_init() ran (or on
 * the VMM's boot tables, which map all RAM at KINJECT_KERNEL_VBASE + PA).
 */
#ifndef GUEST_PAGING_H
#define GUEST_PAGING_H

#include <stdint.h>
#include <guest/x86.h>

#define PML4_INDEX(va) (((uint64_t)(va) >> 39) & 511)
#define PDPT_INDEX(va) (((uint64_t)(va) >> 30) & 511)
#define PD_INDEX(va)   (((uint64_t)(va) >> 21) & 511)
#define PT_INDEX(va)   (((uint64_t)(va) >> 12) & 511)

/* Returns the table one level down from entry *e, allocating a zeroed one
 * (entry flags table_flags | PTE_P) if not present.  Virtual address. */
uint64_t *pt_next_level(uint64_t *e, uint64_t table_flags);
/* Maps one 4 KiB page va -> pa in the tables rooted at pml4 (virtual).
 * leaf_flags: PTE_* of the leaf (PTE_P added); table_flags: PTE_* of the
 * intermediate entries created on the way (PTE_P added).  Does not flush. */
void pt_map_4k(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t leaf_flags,
	       uint64_t table_flags);
/* Maps one 2 MiB page (va, pa 2 MiB-aligned). */
void pt_map_2m(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t leaf_flags,
	       uint64_t table_flags);
/* Leaf entry for va (4 KiB or large), or 0 if unmapped. */
uint64_t pt_lookup(const uint64_t *pml4, uint64_t va);

#endif /* GUEST_PAGING_H */
