/* SPDX-License-Identifier: MIT */
/* `kinject mutate`: mutation testing of the oracles (harness/mutate.h, docs/mutate.md). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kinject.h"
#include "mutate.h"

static const char mutate_usage[] =
	"usage: kinject mutate [--variant V] [--guest ELF] [--only NAME] [--list] [--json]\n"
	"                      [--cases DIR] [--out DIR] [--verbose]\n"
	"Generates mutants of the guest's entry code (dropped swapgs, CR3 writes,\n"
	"register saves..., see docs/mutate.md), runs the unmutated guest as the\n"
	"control, then cases against every mutant, and reports which oracle killed it.\n"
	"  --variant V  entry variant (default linux64)\n"
	"  --guest ELF  use this guest ELF instead of the built one of the variant\n"
	"  --only NAME  only mutants whose name or class contains NAME\n"
	"  --list       list the generated mutants and their patches, run nothing\n"
	"  --json       one JSON document on stdout instead of the table\n"
	"  --cases DIR  regression cases to run too (default: cases, if it exists)\n"
	"  --out DIR    where each killing case is written (default: build/mutants)\n"
	"  --verbose    progress of every case on stderr\n"
	"exit: 0 control clean and every mutant killed, 1 otherwise, 2 usage or setup error\n";

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void print_patches(FILE *f, const struct mutant *m)
{
	for (size_t i = 0; i < m->npatches; i++) {
		fprintf(f, "%s%s=", i ? " " : "", m->patches[i].where);
		for (size_t k = 0; k < m->patches[i].len; k++)
			fprintf(f, "%02x", m->patches[i].bytes[k]);
	}
}

static bool selected(const struct mutant *m, const char *only)
{
	return !only || strstr(m->name, only) || !strcmp(mutate__class_name(m->cls), only);
}

int cmd_mutate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "variant", required_argument, NULL, 'V' },
		{ "guest", required_argument, NULL, 'g' },
		{ "only", required_argument, NULL, 'o' },
		{ "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "cases", required_argument, NULL, 'c' },
		{ "out", required_argument, NULL, 'O' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct mutate_opts mo = { .outdir = "build/mutants" };
	const char *only = NULL;
	bool json = false, list = false, verbose = false, cases_given = false;
	struct mutant_set set;
	struct mutate_ctx *x;
	struct mutant_result *res;
	unsigned ran, skipped, killed = 0, total = 0;
	char why[1024];
	struct timespec t0, t1;
	int opt, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'V':
			if (!*optarg || strlen(optarg) >= CASE_VARIANT_MAX)
				kinject__die("--variant: expected a variant name, got '%s'", optarg);
			mo.variant = optarg;
			break;
		case 'g': mo.elf = optarg; break;
		case 'o':
			if (!*optarg)
				kinject__die("--only: expected a mutant name or class, got ''");
			only = optarg;
			break;
		case 'l': list = true; break;
		case 'j': json = true; break;
		case 'c': mo.cases_dir = optarg; cases_given = true; break;
		case 'O':
			if (!*optarg)
				kinject__die("--out: expected a directory, got ''");
			mo.outdir = optarg;
			break;
		case 'v': verbose = true; break;
		case 'h': fputs(mutate_usage, stdout); return KINJECT_EXIT_PASS;
		default:
			kinject__die("mutate: unknown option '%s' (see kinject mutate --help)",
				     argv[optind - 1]);
		}
	}
	if (optind < argc)
		kinject__die("mutate: unexpected argument '%s' (see kinject mutate --help)", argv[optind]);
	if (!cases_given) {
		FILE *probe = fopen("cases", "r");
		if (probe) {
			fclose(probe);
			mo.cases_dir = "cases";
		}
	}
	if (verbose)
		mo.log = stderr;
	kinject__need_kvm();

	if (mutate__generate_guest(mo.elf, mo.variant, &set))
		kinject__die("mutate: %s", vmm__error());
	for (size_t i = 0; i < set.n; i++)
		total += selected(&set.m[i], only);
	if (!total)
		kinject__die("mutate: no mutant matches '%s' (%zu generated)", only ? only : "", set.n);

	if (list) {
		for (size_t i = 0; i < set.n; i++) {
			if (!selected(&set.m[i], only))
				continue;
			printf("%-44s %s\n    %s\n    patch ", set.m[i].name, set.m[i].site_desc,
			       set.m[i].what);
			print_patches(stdout, &set.m[i]);
			putchar('\n');
		}
		mutate__free(&set);
		return KINJECT_EXIT_PASS;
	}

	x = mutate__open(&mo);
	if (!x)
		kinject__die("mutate: %s", vmm__error());
	rc = mutate__control(x, &ran, &skipped, why, sizeof(why));
	if (rc) {
		mutate__close(x);
		mutate__free(&set);
		kinject__die("mutate: the control (unmutated guest) is not clean: %s", why);
	}
	if (!json)
		printf("control: %u cases on the unmutated guest, %u skipped, no finding\n\n",
		       ran, skipped);

	res = calloc(set.n, sizeof(*res));
	if (!res)
		kinject__die("mutate: out of memory");
	if (json)
		printf("{\n  \"control\": {\"cases\": %u, \"skipped\": %u, \"clean\": true},\n"
		       "  \"mutants\": [\n", ran, skipped);
	bool first = true;
	for (size_t i = 0; i < set.n; i++) {
		const struct mutant *m = &set.m[i];
		struct mutant_result *r = &res[i];

		if (!selected(m, only))
			continue;
		if (verbose)
			fprintf(stderr, "mutant %s: %s\n", m->name, m->what);
		mutate__run(x, m, r);
		killed += r->status == MUT_KILLED;
		if (json) {
			printf("%s    {\"name\": ", first ? "" : ",\n");
			json_str(stdout, m->name);
			printf(", \"class\": \"%s\", \"site\": ", mutate__class_name(m->cls));
			json_str(stdout, m->site_desc);
			printf(", \"what\": ");
			json_str(stdout, m->what);
			printf(", \"status\": \"%s\"", mutate__status_name(r->status));
			if (r->status == MUT_KILLED) {
				printf(", \"oracle\": \"%s\", \"oracles\": \"%s\", \"case\": ", r->oracle,
				       r->oracles);
				json_str(stdout, r->case_path[0] ? r->case_path : r->killer);
				printf(", \"finding\": {\"where\": ");
				json_str(stdout, r->first.where);
				printf(", \"expected\": ");
				json_str(stdout, r->first.expected);
				printf(", \"actual\": ");
				json_str(stdout, r->first.actual);
				printf("}");
			} else {
				printf(", \"reason\": ");
				json_str(stdout, r->reason);
			}
			printf(", \"cases_run\": %u, \"ms\": %llu}", r->cases_run,
			       (unsigned long long)(r->usec / 1000));
			first = false;
		} else {
			printf("%-11s %-44s %s\n", mutate__status_name(r->status), m->name,
			       r->status == MUT_KILLED ? r->oracles : "");
			printf("    %s\n", m->what);
			if (r->status == MUT_KILLED)
				printf("    first finding: %s at %s: expected %s, got %s\n    case: %s\n",
				       r->oracle, r->first.where, r->first.expected, r->first.actual,
				       r->case_path[0] ? r->case_path : r->killer);
			else
				printf("    %s\n", r->reason);
		}
		fflush(stdout);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (json) {
		printf("\n  ],\n  \"killed\": %u, \"total\": %u, \"seconds\": %.1f\n}\n", killed, total,
		       secs);
	} else {
		unsigned cls_n[MUT_NCLASSES] = { 0 }, cls_k[MUT_NCLASSES] = { 0 };
		for (size_t i = 0; i < set.n; i++)
			if (selected(&set.m[i], only)) {
				cls_n[set.m[i].cls]++;
				cls_k[set.m[i].cls] += res[i].status == MUT_KILLED;
			}
		printf("\nper class (killed/generated):");
		for (unsigned k = 0; k < MUT_NCLASSES; k++)
			if (cls_n[k])
				printf(" %s %u/%u", mutate__class_name(k), cls_k[k], cls_n[k]);
		printf("\n%u of %u mutants killed, control clean, %.1f s\n", killed, total, secs);
	}
	free(res);
	mutate__close(x);
	mutate__free(&set);
	return killed == total ? KINJECT_EXIT_PASS : KINJECT_EXIT_FAIL;
}
