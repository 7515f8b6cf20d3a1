// SPDX-License-Identifier: MIT
/*
 * kmain: boot the core.  Order matters: the page allocator before the
 * variant (it allocates its stacks and tables), the variant before any task
 * (tasks need its switch and stack preparation), and every mapping before
 * READY (the harness snapshots there; nothing structural changes after).
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/scenario.h>
#include <guest/x86.h>

uint64_t boot_mem_size;

_Static_assert(sizeof(struct kinject_layout) <= 1024, "percpu.S reserves 1024 bytes");

void layout_add_stats(uint64_t start, uint64_t end)
{
	struct kinject_layout *l = &kinject_layout;

	if (l->nstats >= KINJECT_LAYOUT_MAX_STATS)
		panic("layout: no room for statistics %lx-%lx", start, end);
	l->stats[l->nstats].start = start;
	l->stats[l->nstats].end = end;
	l->nstats++;
}

/* Not inlined: only layout_* functions may take the address of statistics
 * (converge.c checks the rest of the kernel never does). */
static __attribute__((noinline)) void layout_init(void)
{
	struct kinject_layout *l = &kinject_layout;
	const char *scn = cmdline_get("scenario");

	l->magic = KINJECT_LAYOUT_MAGIC;
	l->abi_version = KINJECT_ABI_VERSION;
	if (!l->variant[0])
		strlcpy(l->variant, variant_name, sizeof(l->variant));
	strlcpy(l->scenario, scn && *scn ? scn : "all", sizeof(l->scenario));
	if (!l->percpu)
		l->percpu = (uint64_t)&kinject_percpu;
	layout_add_stats((uint64_t)&irq_stats, (uint64_t)&irq_stats + sizeof(irq_stats));
}

void kmain(uint64_t boot_info_pa)
{
	const struct kinject_boot_info *bi = phys_to_virt(boot_info_pa);

	if (bi->magic != KINJECT_BOOT_MAGIC)
		panic("boot info at pa %lx has bad magic %lx", boot_info_pa, bi->magic);
	boot_mem_size = bi->mem_size;
	cmdline_parse(bi->cmdline);
	kprintf("kinject testbed kernel, variant %s, ABI v%u\n", variant_name,
		KINJECT_ABI_VERSION);
	if (bi->abi_version != KINJECT_ABI_VERSION)
		panic("VMM speaks ABI v%u, guest v%u", bi->abi_version, KINJECT_ABI_VERSION);

	mm_init(boot_mem_size);
	variant_init();
	layout_init();
	irq_init();
	tasks_init();         /* kernel stacks, user mappings: appends layout ranges */
	sched_init();         /* idle task */
	scenarios_prepare();  /* runner thread + the first scenario's tasks */
	hc_ready();
	sched_start();
}
