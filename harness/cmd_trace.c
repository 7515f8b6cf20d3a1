/* SPDX-License-Identifier: MIT */
/*
 * `kinject trace`: run one case in trace mode and print every instruction
 * executed after the first injection -- address, sym+off, disassembly,
 * CPL, GS and CR3 side, stack, IF -- with the oracles' findings inline
 * where they arise, then the case's verdict.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "kinject.h"
#include "engine.h"
#include "oracle.h"

static const char trace_usage[] =
	"usage: kinject trace [--guest ELF] [--limit N] [--budget-steps N] [--patch WHERE=HEX]...\n"
	"                    [--verbose] CASE\n"
	"Runs the case in trace mode (docs/trace.md): single-steps every instruction from\n"
	"the first injection until every interrupted context has resumed, judging each\n"
	"with the trace oracles, and prints one line per instruction, findings inline,\n"
	"then the verdict.\n"
	"  --guest ELF         use this guest ELF instead of the built one of the variant\n"
	"  --limit N           print at most N instruction lines (the run goes on; 0: all)\n"
	"  --budget-steps N    single-steps allowed before the run is a hang (default:\n"
	"                      the case's, else 200000)\n"
	"  --patch WHERE=HEX   add this code patch to the case (repeatable; case syntax)\n"
	"  --verbose           engine timeline and oracle notes too\n"
	"exit: 0 pass, 1 fail, 2 usage, parse or setup error, 3 skip\n";

struct printer {
	const struct symtab *t;
	uint64_t limit, printed, suppressed;
};

static const char *side(unsigned v)
{
	return v == WIN_USER ? "user" : v == WIN_KERNEL ? "kernel" : "?";
}

static void print_finding(const struct finding *f)
{
	printf("    !! %s: %s\n       expected: %s\n       actual:   %s\n", f->oracle, f->where,
	       f->expected, f->actual);
}

static void on_step(void *arg, const struct engine_step *st)
{
	struct printer *p = arg;
	char where[96], text[160], stack[48];

	if (p->limit && p->printed >= p->limit) {
		/* Findings are printed whatever the limit. */
		p->suppressed++;
		for (size_t i = 0; i < st->nfindings; i++)
			print_finding(&st->findings[i]);
		return;
	}
	p->printed++;
	if (st->gap)
		printf("        ... %s\n", st->gap);
	if (st->injected)
		printf("        --> step %u's event delivered: its gate\n", st->step);
	sym__describe(p->t, st->rip, where, sizeof(where));
	if (st->insn)
		analysis__text(st->insn, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "(unreadable)");
	if (st->seen.stack)
		window__stack_name(st->seen.stack, stack, sizeof(stack));
	else
		snprintf(stack, sizeof(stack), "none");
	printf("%7" PRIu64 "  %016" PRIx64 "  %-34.34s %-40.40s cpl%d gs=%-6s cr3=%-6s "
	       "stack=%-8s if=%d\n", st->n, st->rip, where, text, st->cpl, side(st->seen.gs),
	       side(st->seen.cr3), stack, !!(st->regs->rflags & RFLAGS_IF_BIT));
	for (size_t i = 0; i < st->nfindings; i++)
		print_finding(&st->findings[i]);
}

int cmd_trace(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "guest", required_argument, NULL, 'g' },
		{ "limit", required_argument, NULL, 'l' },
		{ "budget-steps", required_argument, NULL, 's' },
		{ "patch", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct engine_opts o = { .trace = true };
	struct printer p = { 0 };
	struct case_result *r;
	struct session *s;
	struct kcase c;
	struct case_patch extra[CASE_MAX_PATCHES];
	size_t nextra = 0;
	char *end;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'g': o.elf = optarg; break;
		case 'l':
			p.limit = strtoull(optarg, &end, 0);
			if (*end || !*optarg || *optarg == '-')
				kinject__die("--limit: expected a number >= 0, got '%s'", optarg);
			break;
		case 's':
			o.budget_steps = strtoull(optarg, &end, 0);
			if (*end || !*optarg || *optarg == '-' || !o.budget_steps)
				kinject__die("--budget-steps: expected a positive number, got '%s'", optarg);
			break;
		case 'p':
			if (case__parse_patch_option(optarg, extra, &nextra))
				kinject__die("%s", vmm__error());
			break;
		case 'v': o.debug = stdout; break;
		case 'h': fputs(trace_usage, stdout); return KINJECT_EXIT_PASS;
		default:
			kinject__die("trace: unknown option '%s' (see kinject trace --help)",
				     argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		kinject__die("trace: expected exactly one CASE file (see kinject trace --help)");
	if (case__parse_file(argv[optind], &c) || case__add_patches(&c, extra, nextra))
		kinject__die("%s", vmm__error());
	if (c.mode == CASE_MODE_FAST)
		kinject__die("%s: the case says 'mode fast'; trace needs single-stepping "
			     "(remove the line or use kinject run)", argv[optind]);
	kinject__need_kvm();
	r = calloc(1, sizeof(*r));
	if (!r)
		kinject__die("trace: out of memory");

	o.on_step = on_step;                  /* p.t is filled in once the guest is up */
	o.step_arg = &p;
	s = engine__open(&o, &c);
	if (!s) {
		printf("ERROR  %s\n    %s\n", c.name, vmm__error());
		free(r);
		return KINJECT_EXIT_ERROR;
	}
	p.t = engine__symtab(s);
	printf("# kinject trace %s: one line per instruction after the first injection\n"
	       "# step  address           where                              instruction"
	       "                              cpl gs cr3 stack if\n", c.name);
	engine__run_case(s, &c, r);
	if (p.suppressed)
		printf("        ... %" PRIu64 " more instruction(s) not printed (--limit %" PRIu64 ")\n",
		       p.suppressed, p.limit);

	printf("%-5s  %s", verdict__name(r->verdict), c.name);
	if (c.title[0])
		printf("  (%s)", c.title);
	putchar('\n');
	if (r->verdict != VERDICT_PASS || c.expect == CASE_EXPECT_FAIL)
		printf("    %s\n", r->reason);
	for (size_t i = 0; i < r->nfindings; i++)
		finding__print(stdout, &r->findings[i], "    ");
	if (r->dropped)
		printf("    (%zu more findings not shown)\n", r->dropped);
	printf("    guest: %s (%s); %" PRIu64 " instructions stepped, %u unstepped span(s), "
	       "%" PRIu64 " exits, %" PRIu64 " us\n", r->guest.what, r->guest.detail, r->steps,
	       r->gaps, r->exits, r->usec);
	engine__close(s);
	case__free(&c);
	opt = verdict__exit_code(r->verdict);
	free(r);
	return opt;
}
