// SPDX-License-Identifier: MIT
/*
 * Physical page allocator: a bump pointer over the RAM above the kernel
 * image (_end).  Nothing is ever freed: a run is short, task slots are
 * reused instead, and a bump allocator keeps every run's layout identical.
 */
#include <guest/core.h>
#include <guest/variant.h>

extern char _end[];

static uint64_t next_pa, end_pa;

void mm_init(uint64_t mem_size)
{
	next_pa = (virt_to_phys(_end) + 4095) & ~4095ULL;
	end_pa = mem_size & ~4095ULL;
	if (next_pa >= end_pa)
		panic("mm: no RAM above the kernel (_end pa %lx, mem %lx)", next_pa, mem_size);
}

uint64_t pages_alloc(unsigned n)
{
	uint64_t pa = next_pa;

	if (end_pa - next_pa < (uint64_t)n * 4096)
		panic("mm: out of memory (%u pages wanted, %lu left)", n,
		      (end_pa - next_pa) / 4096);
	next_pa += (uint64_t)n * 4096;
	memset(phys_to_virt(pa), 0, (size_t)n * 4096);
	return pa;
}

uint64_t page_alloc(void)
{
	return pages_alloc(1);
}
