/* SPDX-License-Identifier: MIT */
/* `kinject sweep`: every boundary of the entry/exit path x events x scenarios. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kinject.h"
#include "sweep.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static const char sweep_usage[] =
	"usage: kinject sweep [--variant V] [--scenario S[,S...]] [--events LIST] [--trace]\n"
	"                     [--jobs N] [--json] [--junit FILE] [--out DIR] [--no-out]\n"
	"                     [--limit N] [--hits N] [--iters N] [--guest ELF]\n"
	"                     [--patch SYM+OFF=HEX ...] [--run-impossible] [--max-steps N]\n"
	"                     [--case-timeout SEC] [--tail N] [--no-converge] [--quiet]\n"
	"Stops the guest at every instruction boundary of its entry/exit text that a driver\n"
	"reaches, injects each event there and judges the outcome (docs/sweep.md).\n"
	"  --variant V       guest entry variant (default linux64)\n"
	"  --scenario S      scenarios, comma-separated (default: all)\n"
	"  --events LIST     irq[:VEC] (default vector 0xff, counted and ignored), nmi, and\n"
	"                    exceptions by name: pf[:ERR[:CR2]], gp[:ERR], db[:DR6], mc, ud...\n"
	"                    (default irq,nmi)\n"
	"  --trace           mode trace: single-step and run the trace oracles too\n"
	"  --jobs N          worker processes, each with its own VM (default 1)\n"
	"  --json            one JSON object per case on stdout, then a summary object\n"
	"  --junit FILE      JUnit XML: one testsuite per scenario, one testcase per case\n"
	"  --out DIR         failure case files go here (default build/sweep-failures)\n"
	"  --no-out          write no failure case files\n"
	"  --limit N         run at most N engine cases, spread evenly over the plan\n"
	"  --hits N          cases for the first N arrivals at each boundary (default 1)\n"
	"  --iters N         guest option iters=N for every scenario, kept in every case\n"
	"                    (default " STR(SWEEP_DEFAULT_ITERS) "; 0: the guest's own counts)\n"
	"  --guest ELF       use this guest ELF instead of the built one\n"
	"  --patch P         write bytes into guest code first (case syntax), repeatable\n"
	"  --run-impossible  run cases the plan knows are impossible through the engine too\n"
	"  --max-steps N     single-steps per driver when planning\n"
	"  --case-timeout S  kill a worker silent for S seconds (default 120)\n"
	"  --tail N          end each case N exits after its contexts resumed, not at the\n"
	"                    guest's verdict: faster, but later damage goes unseen\n"
	"  --no-converge     run every case from READY to the guest's verdict (by default a\n"
	"                    case starts at the previous case's stop and ends at its resume\n"
	"                    when the machine is back at its stop's state: docs/sweep.md)\n"
	"  --quiet           no plan notes, no summary table\n"
	"exit: 0 no failure, 1 failures, errors or a scenario failing without injection,\n"
	"      2 usage or setup error\n";

static uint64_t number(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		kinject__die("%s: expected a number %llu-%llu, got '%s'", opt,
			     (unsigned long long)min, (unsigned long long)max, s);
	v = strtoull(s, &end, 0);
	if (*end || v < min || v > max)
		kinject__die("%s: expected a number %llu-%llu, got '%s'", opt,
			     (unsigned long long)min, (unsigned long long)max, s);
	return v;
}

int cmd_sweep(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "variant", required_argument, NULL, 'V' },
		{ "scenario", required_argument, NULL, 's' },
		{ "events", required_argument, NULL, 'e' },
		{ "trace", no_argument, NULL, 'T' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "json", no_argument, NULL, 'J' },
		{ "junit", required_argument, NULL, 'U' },
		{ "out", required_argument, NULL, 'o' },
		{ "no-out", no_argument, NULL, 'O' },
		{ "limit", required_argument, NULL, 'l' },
		{ "hits", required_argument, NULL, 'H' },
		{ "iters", required_argument, NULL, 'i' },
		{ "guest", required_argument, NULL, 'g' },
		{ "patch", required_argument, NULL, 'p' },
		{ "run-impossible", no_argument, NULL, 'I' },
		{ "max-steps", required_argument, NULL, 'M' },
		{ "case-timeout", required_argument, NULL, 'C' },
		{ "tail", required_argument, NULL, 'L' },
		{ "no-converge", no_argument, NULL, 'N' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static struct sweep_opts o;
	struct sweep_totals t;
	char *scen_list = NULL, outbuf[4096], guest[4096];
	bool json = false, no_out = false, quiet = false;
	int opt;

	memset(&o, 0, sizeof(o));
	o.jobs = 1;
	o.hits = 1;
	o.iters = SWEEP_DEFAULT_ITERS;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+hj:q", longopts, NULL)) != -1) {
		switch (opt) {
		case 'V':
			if (!*optarg || strlen(optarg) >= CASE_VARIANT_MAX ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_.-") != strlen(optarg))
				kinject__die("--variant: expected a variant name (e.g. linux64), got '%s'",
					     optarg);
			o.variant = optarg;
			break;
		case 's': scen_list = optarg; break;
		case 'e':
			if (sweep__parse_events(optarg, o.events, SWEEP_MAX_EVENTS, &o.nevents))
				kinject__die("%s", vmm__error());
			break;
		case 'T': o.trace = true; break;
		case 'j': o.jobs = (unsigned)number("--jobs", optarg, 1, 64); break;
		case 'J': json = true; break;
		case 'U': o.junit = optarg; break;
		case 'o': o.out_dir = optarg; break;
		case 'O': no_out = true; break;
		case 'l': o.limit = number("--limit", optarg, 1, UINT32_MAX); break;
		case 'H': o.hits = (unsigned)number("--hits", optarg, 1, 8); break;
		case 'i': o.iters = (unsigned)number("--iters", optarg, 0, 1000000); break;
		case 'g':
			if (access(optarg, R_OK))
				kinject__die("--guest %s: %m", optarg);
			o.elf = optarg;
			break;
		case 'p':
			if (o.npatches == CASE_MAX_PATCHES)
				kinject__die("--patch: at most %d patches", CASE_MAX_PATCHES);
			if (case__parse_patch(optarg, &o.patches[o.npatches++]))
				kinject__die("%s", vmm__error());
			break;
		case 'I': o.run_impossible = true; break;
		case 'M': o.max_steps = number("--max-steps", optarg, 1, UINT32_MAX); break;
		case 'C': o.case_timeout_s = (unsigned)number("--case-timeout", optarg, 1, 86400); break;
		case 'L': o.tail_exits = number("--tail", optarg, 1, UINT32_MAX); break;
		case 'N': o.no_converge = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(sweep_usage, stdout); return KINJECT_EXIT_PASS;
		default:
			kinject__die("sweep: unknown option or missing value '%s' (see kinject sweep "
				     "--help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		kinject__die("sweep: unexpected argument '%s' (see kinject sweep --help)", argv[optind]);
	if (scen_list) {
		for (char *save = NULL, *w = strtok_r(scen_list, ",", &save); w;
		     w = strtok_r(NULL, ",", &save)) {
			if (o.nscenarios == SWEEP_MAX_SCENARIOS)
				kinject__die("--scenario: at most %d scenarios", SWEEP_MAX_SCENARIOS);
			if (strlen(w) >= CASE_SCENARIO_MAX ||
			    strspn(w, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(w))
				kinject__die("--scenario: expected a scenario name, got '%s'", w);
			o.scenarios[o.nscenarios++] = w;
		}
		if (!o.nscenarios)
			kinject__die("--scenario: expected a scenario name, got '%s'", scen_list);
	}
	if (!o.elf) {
		kinject__default_guest(o.variant ? o.variant : "linux64", guest, sizeof(guest));
		if (access(guest, R_OK))
			kinject__die("--variant %s: no built guest at %s",
				     o.variant ? o.variant : "linux64", guest);
	}
	if (!no_out && !o.out_dir) {
		/* build/sweep-failures next to the kinject binary's build tree. */
		char *slash;
		kinject__default_guest("x", outbuf, sizeof(outbuf));
		slash = strstr(outbuf, "/guest/kinject-x.elf");
		if (slash)
			*slash = 0;
		strncat(outbuf, "/sweep-failures", sizeof(outbuf) - strlen(outbuf) - 1);
		o.out_dir = outbuf;
	}
	if (no_out)
		o.out_dir = NULL;
	o.json = json ? stdout : NULL;
	o.log = quiet ? NULL : json ? stderr : stdout;
	o.progress = isatty(STDERR_FILENO) && !quiet;

	guest__host_options();   /* probe the host once, before any fork */
	if (sweep__run(&o, &t))
		kinject__die("sweep: %s", vmm__error());
	return sweep__exit_code(&t);
}
