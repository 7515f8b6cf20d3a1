/* SPDX-License-Identifier: MIT */
/* `kinject run`: replay case files and print one verdict line per case. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "kinject.h"
#include "engine.h"
#include "oracle.h"
#include "mutate.h"

static const char run_usage[] =
	"usage: kinject run [--twice] [--trace] [--guest ELF] [--budget N] [--tail N] [--converge]\n"
	"                   [--patch WHERE=HEX]...\n"
	"                   [--verbose] CASE...\n"
	"Replays each case file (docs/case-format.md) and judges it with the oracles\n"
	"(docs/oracles.md).  One line per case, PASS|FAIL|SKIP|ERROR, findings below.\n"
	"  --twice      run each case twice and compare final states (determinism oracle)\n"
	"  --trace      single-step from each injection until the interrupted contexts\n"
	"               resume, with the trace oracles too (cases saying 'mode fast' excepted)\n"
	"  --guest ELF  use this guest ELF instead of the built one of the case's variant\n"
	"  --budget N   exit budget per case run (default: the case's, else 8x the scenario)\n"
	"  --tail N     end each run N exits after every interrupted context resumed, not at\n"
	"               the guest's verdict: faster, but later damage goes unseen\n"
	"  --patch WHERE=HEX  add this code patch to every case (repeatable; case syntax)\n"
	"  --converge   end a run when the last step's context resumes with the machine back\n"
	"               at its stop's state (as sweeps do; docs/sweep.md)\n"
	"  --verbose    print oracle notes and the cost of each case\n"
	"exit: 0 all pass, 1 any fail, 2 usage, parse or setup error, 3 all skipped\n";

/* Sessions stay booted across cases: cases of one scenario share one. */
#define RUN_MAX_SESSIONS 4

struct session_cache {
	struct session *s[RUN_MAX_SESSIONS];
	unsigned next;                   /* the slot to reuse when full */
};

static struct session *session_for(struct session_cache *sc, const struct engine_opts *o,
				   const struct kcase *c)
{
	for (unsigned i = 0; i < RUN_MAX_SESSIONS; i++)
		if (sc->s[i] && engine__matches(sc->s[i], c))
			return sc->s[i];
	unsigned slot = sc->next;
	sc->next = (sc->next + 1) % RUN_MAX_SESSIONS;
	engine__close(sc->s[slot]);
	sc->s[slot] = engine__open(o, c);
	return sc->s[slot];
}

static void print_result(const struct kcase *c, const struct case_result *r, bool verbose)
{
	printf("%-5s  %s", verdict__name(r->verdict), c->name);
	if (c->title[0])
		printf("  (%s)", c->title);
	putchar('\n');
	if (r->verdict == VERDICT_SKIP || r->verdict == VERDICT_ERROR ||
	    c->expect == CASE_EXPECT_FAIL || (r->verdict == VERDICT_FAIL && !r->nfindings))
		printf("    %s\n", r->reason);
	for (size_t i = 0; i < r->nfindings; i++) {
		finding__print(stdout, &r->findings[i], "    ");
	}
	if (r->dropped)
		printf("    (%zu more findings not shown)\n", r->dropped);
	if (verbose)
		printf("    cost: %llu exits, %llu us, %u run(s), %u event(s) injected\n",
		       (unsigned long long)r->exits, (unsigned long long)r->usec, r->runs,
		       r->steps_done);
	if (verbose && r->traced)
		printf("    trace: %llu instructions single-stepped, %u unstepped span(s) (first run)\n",
		       (unsigned long long)r->steps, r->gaps);
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "twice", no_argument, NULL, 't' },
		{ "trace", no_argument, NULL, 'T' },
		{ "guest", required_argument, NULL, 'g' },
		{ "budget", required_argument, NULL, 'b' },
		{ "tail", required_argument, NULL, 'L' },
		{ "converge", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "patch", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct engine_opts o = { 0 };
	struct session_cache sc = { 0 };
	bool verbose = false;
	unsigned pass = 0, fail = 0, skip = 0, error = 0;
	struct kcase *cases;
	char *end, names[256];
	int opt, ncases;
	struct case_patch extra[CASE_MAX_PATCHES];
	size_t nextra = 0;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 't': o.twice = true; break;
		case 'T': o.trace = true; break;
		case 'g': o.elf = optarg; break;
		case 'b':
			o.budget_exits = strtoull(optarg, &end, 0);
			if (*end || !*optarg || !o.budget_exits)
				kinject__die("--budget: expected a positive number, got '%s'", optarg);
			break;
		case 'L':
			o.tail_exits = strtoull(optarg, &end, 0);
			if (*end || !*optarg || *optarg == '-' || !o.tail_exits)
				kinject__die("--tail: expected a positive number, got '%s'", optarg);
			break;
		case 'v': verbose = true; break;
		case 'c': o.converge = true; break;
		case 'p':
			if (case__parse_patch_option(optarg, extra, &nextra))
				kinject__die("%s", vmm__error());
			break;
		case 'h': fputs(run_usage, stdout); return KINJECT_EXIT_PASS;
		default:
			kinject__die("run: unknown option '%s' (see kinject run --help)", argv[optind - 1]);
		}
	}
	ncases = argc - optind;
	if (ncases <= 0)
		kinject__die("run: expected at least one CASE file (see kinject run --help)");
	if (verbose)
		o.debug = stdout;

	/* Parse everything first: a bad file costs no boot and runs nothing. */
	cases = calloc((size_t)ncases, sizeof(*cases));
	if (!cases)
		kinject__die("run: out of memory");
	for (int i = 0; i < ncases; i++) {
		if (case__parse_file(argv[optind + i], &cases[i]))
			kinject__die("%s", vmm__error());
		if (cases[i].oracle[0] && !oracle__find(cases[i].oracle))
			kinject__die("%s: expect fail: unknown oracle '%s' (known: %s)", argv[optind + i],
				     cases[i].oracle, oracle__names(names, sizeof(names)));
		if (case__add_patches(&cases[i], extra, nextra))
			kinject__die("%s", vmm__error());
	}
	kinject__need_kvm();

	for (int i = 0; i < ncases; i++) {
		struct kcase *c = &cases[i];
		struct case_result *r = calloc(1, sizeof(*r));
		struct session *s;

		if (!r)
			kinject__die("run: out of memory");
		s = session_for(&sc, &o, c);
		if (!s) {
			memset(r, 0, sizeof(*r));
			r->verdict = VERDICT_ERROR;
			snprintf(r->reason, sizeof(r->reason), "%s", vmm__error());
		} else {
			engine__run_case(s, c, r);
		}
		print_result(c, r, verbose);
		fflush(stdout);
		switch (r->verdict) {
		case VERDICT_PASS: pass++; break;
		case VERDICT_FAIL: fail++; break;
		case VERDICT_SKIP: skip++; break;
		default: error++; break;
		}
		free(r);
		case__free(c);
	}
	for (unsigned i = 0; i < RUN_MAX_SESSIONS; i++)
		engine__close(sc.s[i]);
	free(cases);
	if (ncases > 1 || verbose)
		printf("%u passed, %u failed, %u skipped, %u errors\n", pass, fail, skip, error);
	if (fail)
		return KINJECT_EXIT_FAIL;
	if (error)
		return KINJECT_EXIT_ERROR;
	if (skip == (unsigned)ncases)
		return KINJECT_EXIT_SKIP;
	return KINJECT_EXIT_PASS;
}
