/* SPDX-License-Identifier: MIT */
/* `kinject map`: the entry/exit code of the guest, one line per instruction,
 * annotated with its window (GS, CR3, stack, IRQs).  See docs/map.md. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "kinject.h"
#include "entrymap.h"

static const char map_usage[] =
	"usage: kinject map [--variant V] [--guest ELF] [--scenario NAME] [--json]\n"
	"                   [--mem SIZE] [--max-exits N]\n"
	"Boots the guest to READY, reads its IDT, TSS and SYSCALL MSRs, and prints\n"
	"every instruction of the entry text with the windows a static pass over\n"
	"its control flow derives: GS user/kernel, CR3 user/kernel, stack, IRQs.\n"
	"  --variant V      entry variant whose guest to map (default linux64)\n"
	"  --guest ELF      map this guest ELF instead of the built one\n"
	"  --scenario NAME  scenario to boot to READY (default kthreads)\n"
	"  --json           one JSON object instead of the table\n"
	"  --mem SIZE       guest RAM, e.g. 32M (default)\n"
	"  --max-exits N    give up on READY after N KVM exits (default 20000000)\n";

int cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		KINJECT_GUEST_LONGOPTS,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct guest_opts o = { .scenario = "kthreads" };
	uint64_t max_exits = KINJECT_BOOT_MAX_EXITS;
	bool json = false;
	struct entrymap m;
	struct verdict v;
	struct guest g;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (kinject__guest_option(c, optarg, &o, &max_exits))
			continue;
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(map_usage, stdout); return KINJECT_EXIT_PASS;
		default:
			kinject__die("map: unknown option '%s' (see kinject map --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		kinject__die("map: unexpected argument '%s' (see kinject map --help)", argv[optind]);

	kinject__need_kvm();
	if (guest__boot(&g, &o))
		kinject__die("%s", vmm__error());
	if (!guest__run_to_ready(&g, &v, max_exits)) {
		guest__destroy(&g);
		kinject__die("--scenario %s: the guest did not reach READY: %s: %s",
			     o.scenario, v.what, v.detail);
	}
	if (entrymap__build(&g, &m)) {
		guest__destroy(&g);
		kinject__die("map: %s", vmm__error());
	}
	if (json)
		entrymap__print_json(stdout, &m);
	else
		entrymap__print(stdout, &m);
	entrymap__free(&m);
	guest__destroy(&g);
	return KINJECT_EXIT_PASS;
}
