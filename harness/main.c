/* SPDX-License-Identifier: MIT */
/* kinject: the command line.  One table of subcommands; each lives in its own file. */
#include <string.h>
#include "kinject.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "boot",  cmd_boot,  "boot the testbed guest, stream its console, exit with its verdict" },
	{ "bench", cmd_bench, "speed figures next to the raw KVM exit round trip" },
	{ "run",   cmd_run,   "replay case files and judge them with the oracles" },
	{ "map",   cmd_map,   "the entry/exit code, each instruction annotated with its window" },
	{ "trace", cmd_trace, "run one case single-stepped: every instruction, findings inline" },
	{ "mutate", cmd_mutate, "mutation testing of the oracles: mutants of the entry code, who kills them" },
	{ "sweep", cmd_sweep, "every boundary of the entry/exit path x events x scenarios, injected and judged" },
};

static void usage(FILE *out)
{
	fputs("usage: kinject COMMAND [OPTIONS]   (kinject COMMAND --help for its options)\n\n"
	      "Injects interrupts, NMIs and exceptions into a testbed kernel's entry/exit\n"
	      "path under KVM and judges the outcome.\n\ncommands:\n", out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("\nexit codes: 0 pass, 1 fail (guest fail, oops, crash, hang, finding),\n"
	      "            2 usage or setup error, 3 skip\n", out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return KINJECT_EXIT_ERROR;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return KINJECT_EXIT_PASS;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	kinject__die("unknown command '%s' (see kinject --help)", argv[1]);
}
