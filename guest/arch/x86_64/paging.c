/* SPDX-License-Identifier: MIT */
/* x86-64 4-level page-table helpers, see guest/include/guest/paging.h.
 *
 * Every entry is made with its Accessed bit set, and every leaf with its
 * Dirty bit too (as Linux makes its kernel mappings): the CPU then never
 * writes them back, so an event's handler leaves the page tables exactly as
 * they were, which the harness's convergence check compares. */
#include <guest/paging.h>
#include <guest/variant.h>

uint64_t *pt_next_level(uint64_t *e, uint64_t table_flags)
{
	if (!(*e & PTE_P)) {
		uint64_t pa = page_alloc();
		*e = pa | table_flags | PTE_A | PTE_P;
	}
	return phys_to_virt(*e & PTE_ADDR_MASK);
}

void pt_map_4k(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t leaf_flags,
	       uint64_t table_flags)
{
	uint64_t *pdpt = pt_next_level(&pml4[PML4_INDEX(va)], table_flags);
	uint64_t *pd = pt_next_level(&pdpt[PDPT_INDEX(va)], table_flags);
	uint64_t *pt = pt_next_level(&pd[PD_INDEX(va)], table_flags);

	pt[PT_INDEX(va)] = (pa & PTE_ADDR_MASK) | leaf_flags | PTE_A | PTE_D | PTE_P;
}

void pt_map_2m(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t leaf_flags,
	       uint64_t table_flags)
{
	uint64_t *pdpt = pt_next_level(&pml4[PML4_INDEX(va)], table_flags);
	uint64_t *pd = pt_next_level(&pdpt[PDPT_INDEX(va)], table_flags);

	pd[PD_INDEX(va)] = (pa & PTE_ADDR_MASK & ~0x1fffffUL) | leaf_flags | PTE_A | PTE_D | PTE_PS |
			   PTE_P;
}

uint64_t pt_lookup(const uint64_t *pml4, uint64_t va)
{
	uint64_t e = pml4[PML4_INDEX(va)];
	const uint64_t *t;

	if (!(e & PTE_P))
		return 0;
	t = phys_to_virt(e & PTE_ADDR_MASK);
	e = t[PDPT_INDEX(va)];
	if (!(e & PTE_P) || (e & PTE_PS))
		return e & PTE_P ? e : 0;
	t = phys_to_virt(e & PTE_ADDR_MASK);
	e = t[PD_INDEX(va)];
	if (!(e & PTE_P) || (e & PTE_PS))
		return e & PTE_P ? e : 0;
	t = phys_to_virt(e & PTE_ADDR_MASK);
	e = t[PT_INDEX(va)];
	return e & PTE_P ? e : 0;
}
