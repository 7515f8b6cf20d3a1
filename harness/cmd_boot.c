/* SPDX-License-Identifier: MIT */
/* `kinject boot`: boot the testbed guest, stream its console, exit with its verdict. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "kinject.h"

static const char boot_usage[] =
	"usage: kinject boot [--scenario NAME] [--variant V] [--guest ELF] [--mem SIZE]\n"
	"                    [--cmdline \"KEY=VALUE ...\"] [--max-exits N] [--quiet]\n"
	"Boots the testbed guest, streams its console, prints the verdict and exits\n"
	"with it (0 pass, 1 fail, 2 usage or setup error, 3 skip).\n"
	"  --scenario NAME  user-spin, syscalls, ss16, signals, kthreads, preempt, all (default)\n"
	"  --variant V      entry variant whose guest to boot (default linux64)\n"
	"  --guest ELF      boot this guest ELF instead of the built one\n"
	"  --mem SIZE       guest RAM, e.g. 32M (default), 64M, 1G\n"
	"  --cmdline STR    extra guest options, e.g. \"iters=1000 verbose=1\"\n"
	"  --max-exits N    judge the guest hung after N KVM exits (default 20000000)\n"
	"  --quiet          do not stream the guest console\n";

int cmd_boot(int argc, char **argv)
{
	static const struct option longopts[] = {
		KINJECT_GUEST_LONGOPTS,
		{ "cmdline", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct guest_opts o = { .console = stdout, .announce = true };
	uint64_t max_exits = KINJECT_BOOT_MAX_EXITS;
	struct guest g;
	struct verdict v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (kinject__guest_option(c, optarg, &o, &max_exits))
			continue;
		switch (c) {
		case 'q': o.console = NULL; break;
		case 'c': o.cmdline_extra = optarg; break;
		case 'h': fputs(boot_usage, stdout); return KINJECT_EXIT_PASS;
		default:
			kinject__die("boot: unknown option '%s' (see kinject boot --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		kinject__die("boot: unexpected argument '%s' (see kinject boot --help)", argv[optind]);

	kinject__need_kvm();
	if (guest__boot(&g, &o))
		kinject__die("%s", vmm__error());
	guest__run_to_verdict(&g, &v, max_exits);
	fflush(stdout);
	printf("verdict: %s (%s): %s\n", verdict__name(v.kind), v.what, v.detail);
	guest__destroy(&g);
	return verdict__exit_code(v.kind);
}
