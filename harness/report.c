/* SPDX-License-Identifier: MIT */
/*
 * Sweep output (report.h): JSON lines, JUnit XML, progress bar, summary.
 */
#include <stdlib.h>
#include <string.h>
#include "report.h"

/* ---- JSON ---------------------------------------------------------------------- */

void report__json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void json_key(FILE *f, const char *k, bool *first)
{
	if (!*first)
		fputc(',', f);
	*first = false;
	report__json_string(f, k);
	fputc(':', f);
}

static void json_str(FILE *f, const char *k, const char *v, bool *first)
{
	json_key(f, k, first);
	report__json_string(f, v);
}

static void json_u64(FILE *f, const char *k, uint64_t v, bool *first)
{
	json_key(f, k, first);
	fprintf(f, "%llu", (unsigned long long)v);
}

static void json_hex(FILE *f, const char *k, uint64_t v, bool *first)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	json_str(f, k, buf, first);
}

static void json_double(FILE *f, const char *k, double v, bool *first)
{
	json_key(f, k, first);
	fprintf(f, "%.3f", v);
}

void report__json_case(FILE *f, const struct report_case *c)
{
	bool first = true;

	fputc('{', f);
	json_u64(f, "id", c->id, &first);
	json_str(f, "scenario", c->scenario, &first);
	json_str(f, "driver", c->driver, &first);
	json_str(f, "boundary", c->where, &first);
	json_hex(f, "addr", c->addr, &first);
	json_u64(f, "hit", c->hit, &first);
	json_str(f, "event", c->event, &first);
	json_str(f, "verdict", verdict__name(c->verdict), &first);
	json_str(f, "kind", c->kind, &first);
	json_str(f, "reason", c->reason, &first);
	json_str(f, "case", c->text, &first);
	if (c->guest) {
		json_key(f, "guest", &first);
		fputc('{', f);
		bool g1 = true;
		json_str(f, "verdict", verdict__name(c->guest->kind), &g1);
		json_str(f, "what", c->guest->what, &g1);
		json_str(f, "detail", c->guest->detail, &g1);
		fputc('}', f);
	}
	json_key(f, "findings", &first);
	fputc('[', f);
	for (size_t i = 0; i < c->nfindings; i++) {
		const struct finding *x = &c->findings[i];
		bool f1 = true;

		if (i)
			fputc(',', f);
		fputc('{', f);
		json_str(f, "oracle", x->oracle, &f1);
		json_hex(f, "addr", x->addr, &f1);
		json_str(f, "where", x->where, &f1);
		json_str(f, "expected", x->expected, &f1);
		json_str(f, "actual", x->actual, &f1);
		fputc('}', f);
	}
	fputc(']', f);
	json_u64(f, "dropped", c->dropped, &first);
	json_key(f, "ran", &first);
	fputs(c->ran ? "true" : "false", f);
	json_u64(f, "exits", c->exits, &first);
	json_u64(f, "usec", c->usec, &first);
	if (c->case_file)
		json_str(f, "case_file", c->case_file, &first);
	fputs("}\n", f);
}

void report__json_summary(FILE *f, const struct sweep_totals *t,
			  const struct report_group *g, size_t ng)
{
	bool first = true, o1 = true;

	fputs("{\"summary\":{", f);
	json_u64(f, "boundaries", t->boundaries, &first);
	json_u64(f, "reached", t->reached, &first);
	json_u64(f, "not_reached", t->not_reached, &first);
	json_u64(f, "planned", t->planned, &first);
	json_u64(f, "cases", t->cases, &first);
	json_u64(f, "run", t->run, &first);
	json_u64(f, "passed", t->passed, &first);
	json_u64(f, "failed", t->failed, &first);
	json_key(f, "failed_by_oracle", &first);
	fputc('{', f);
	for (size_t i = 0; i < t->noracles; i++)
		json_u64(f, t->oracle[i].name, t->oracle[i].cases, &o1);
	fputc('}', f);
	json_u64(f, "skipped_impossible", t->skipped_impossible, &first);
	json_u64(f, "skipped_unreached", t->skipped_unreached, &first);
	json_u64(f, "skipped_other", t->skipped_other, &first);
	json_u64(f, "errors", t->errors, &first);
	json_u64(f, "baseline_failures", t->baseline_failures, &first);
	json_u64(f, "drivers_failed", t->drivers_failed, &first);
	json_u64(f, "files_written", t->files_written, &first);
	json_u64(f, "exits", t->exits, &first);
	json_u64(f, "chained", t->chained, &first);
	json_u64(f, "converged", t->converged, &first);
	json_double(f, "cases_per_sec", t->cases_per_sec, &first);
	json_double(f, "plan_sec", t->plan_sec, &first);
	json_double(f, "run_sec", t->run_sec, &first);
	json_double(f, "wall_sec", t->wall_sec, &first);
	json_key(f, "not_reached_groups", &first);
	fputc('[', f);
	for (size_t i = 0; i < ng; i++) {
		bool g1 = true;

		if (i)
			fputc(',', f);
		fputc('{', f);
		json_str(f, "symbol", g[i].symbol, &g1);
		json_hex(f, "first", g[i].first, &g1);
		json_u64(f, "count", g[i].count, &g1);
		json_str(f, "reason", g[i].reason, &g1);
		fputc('}', f);
	}
	fputs("]}}\n", f);
}

/* ---- JUnit --------------------------------------------------------------------- */

struct junit_suite {
	char name[CASE_SCENARIO_MAX];
	char *buf;
	size_t len;
	FILE *f;                           /* open_memstream on buf */
	uint64_t tests, failures, errors, skipped;
	double sec;
};

struct report_junit {
	struct junit_suite *s;
	size_t n, cap;
};

/* XML text or attribute value: markup characters as entities, control
 * characters (which XML 1.0 forbids) as '?'. */
static void xml_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '&':  fputs("&amp;", f); break;
		case '<':  fputs("&lt;", f); break;
		case '>':  fputs("&gt;", f); break;
		case '"':  fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '\n': case '\t': fputc(*p, f); break;
		default:
			fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
		}
	}
}

struct report_junit *report__junit_new(void)
{
	return calloc(1, sizeof(struct report_junit));
}

static struct junit_suite *junit_suite(struct report_junit *j, const char *name)
{
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->s[i].name, name))
			return &j->s[i];
	if (j->n == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 8;
		struct junit_suite *s = realloc(j->s, cap * sizeof(*s));
		if (!s)
			return NULL;
		j->s = s;
		j->cap = cap;
	}
	struct junit_suite *s = &j->s[j->n];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->f = open_memstream(&s->buf, &s->len);
	if (!s->f)
		return NULL;
	j->n++;
	return s;
}

int report__junit_add(struct report_junit *j, const struct report_case *c)
{
	struct junit_suite *s = junit_suite(j, c->scenario);
	double sec = (double)c->usec / 1e6;

	if (!s)
		return vmm__fail("junit: out of memory");
	s->tests++;
	s->sec += sec;
	fputs("    <testcase classname=\"sweep.", s->f);
	xml_text(s->f, c->scenario);
	fputc('.', s->f);
	xml_text(s->f, c->driver);
	fputs("\" name=\"", s->f);
	xml_text(s->f, c->where);
	fprintf(s->f, " hit %llu ", (unsigned long long)c->hit);
	xml_text(s->f, c->event);
	fprintf(s->f, "\" time=\"%.6f\"", sec);
	switch (c->verdict) {
	case VERDICT_PASS:
		fputs("/>\n", s->f);
		return 0;
	case VERDICT_SKIP:
		s->skipped++;
		fputs(">\n      <skipped message=\"", s->f);
		xml_text(s->f, c->reason);
		fputs("\"/>\n", s->f);
		break;
	case VERDICT_ERROR:
		s->errors++;
		fputs(">\n      <error message=\"", s->f);
		xml_text(s->f, c->reason);
		fputs("\"/>\n", s->f);
		break;
	case VERDICT_FAIL:
		s->failures++;
		fputs(">\n      <failure message=\"", s->f);
		xml_text(s->f, c->nfindings ? c->findings[0].oracle : c->reason);
		fputs(": ", s->f);
		xml_text(s->f, c->reason);
		fputs("\">", s->f);
		xml_text(s->f, c->text);
		fputc('\n', s->f);
		for (size_t i = 0; i < c->nfindings; i++) {
			const struct finding *x = &c->findings[i];
			fputs("oracle ", s->f);
			xml_text(s->f, x->oracle);
			fputs(" at ", s->f);
			xml_text(s->f, x->where);
			fputs("\n  expected: ", s->f);
			xml_text(s->f, x->expected);
			fputs("\n  actual:   ", s->f);
			xml_text(s->f, x->actual);
			fputc('\n', s->f);
		}
		if (c->guest) {
			fputs("guest: ", s->f);
			xml_text(s->f, c->guest->what);
			fputs(": ", s->f);
			xml_text(s->f, c->guest->detail);
			fputc('\n', s->f);
		}
		if (c->case_file) {
			fputs("reproduce: kinject run ", s->f);
			xml_text(s->f, c->case_file);
			fputc('\n', s->f);
		}
		fputs("</failure>\n", s->f);
		break;
	}
	fputs("    </testcase>\n", s->f);
	return 0;
}

int report__junit_write(struct report_junit *j, const char *path, double wall_sec)
{
	uint64_t tests = 0, failures = 0, errors = 0, skipped = 0;
	FILE *f = fopen(path, "w");

	if (!f)
		return vmm__fail("--junit %s: %m", path);
	for (size_t i = 0; i < j->n; i++) {
		fflush(j->s[i].f);
		tests += j->s[i].tests;
		failures += j->s[i].failures;
		errors += j->s[i].errors;
		skipped += j->s[i].skipped;
	}
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
	fprintf(f, "<testsuites name=\"kinject sweep\" tests=\"%llu\" failures=\"%llu\" "
		"errors=\"%llu\" skipped=\"%llu\" time=\"%.3f\">\n",
		(unsigned long long)tests, (unsigned long long)failures,
		(unsigned long long)errors, (unsigned long long)skipped, wall_sec);
	for (size_t i = 0; i < j->n; i++) {
		struct junit_suite *s = &j->s[i];

		fputs("  <testsuite name=\"", f);
		xml_text(f, s->name);
		fprintf(f, "\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"%llu\" "
			"time=\"%.3f\">\n", (unsigned long long)s->tests,
			(unsigned long long)s->failures, (unsigned long long)s->errors,
			(unsigned long long)s->skipped, s->sec);
		fwrite(s->buf, 1, s->len, f);
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
	if (fclose(f))
		return vmm__fail("--junit %s: %m", path);
	return 0;
}

void report__junit_free(struct report_junit *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++) {
		fclose(j->s[i].f);
		free(j->s[i].buf);
	}
	free(j->s);
	free(j);
}

/* ---- progress and summary ------------------------------------------------------- */

void report__progress(uint64_t done, uint64_t total, uint64_t failed, double rate)
{
	enum { WIDTH = 30 };
	char bar[WIDTH + 1];
	unsigned fill = total ? (unsigned)(done * WIDTH / total) : WIDTH;
	double eta = rate > 0 ? (double)(total - done) / rate : 0;

	for (unsigned i = 0; i < WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[WIDTH] = 0;
	fprintf(stderr, "\r[%s] %llu/%llu  %llu failed  %.1f cases/s  ETA %.0fs   ", bar,
		(unsigned long long)done, (unsigned long long)total,
		(unsigned long long)failed, rate, eta);
	fflush(stderr);
}

void report__progress_end(void)
{
	fputs("\r\033[K", stderr);
	fflush(stderr);
}

void report__summary(FILE *f, const struct sweep_totals *t, const struct report_group *g,
		     size_t ng)
{
	fprintf(f, "\nsweep summary\n");
	fprintf(f, "  %-34s %10llu\n", "entry-text boundaries",
		(unsigned long long)t->boundaries);
	fprintf(f, "  %-34s %10llu\n", "  reached by some driver", (unsigned long long)t->reached);
	fprintf(f, "  %-34s %10llu\n", "  not reached", (unsigned long long)t->not_reached);
	fprintf(f, "  %-34s %10llu\n", "cases planned", (unsigned long long)t->planned);
	fprintf(f, "  %-34s %10llu\n", "cases judged", (unsigned long long)t->cases);
	fprintf(f, "  %-34s %10llu\n", "  run through the engine", (unsigned long long)t->run);
	fprintf(f, "  %-34s %10llu\n", "passed", (unsigned long long)t->passed);
	fprintf(f, "  %-34s %10llu\n", "failed", (unsigned long long)t->failed);
	for (size_t i = 0; i < t->noracles; i++) {
		char k[64];
		snprintf(k, sizeof(k), "  oracle %s", t->oracle[i].name);
		fprintf(f, "  %-34s %10llu\n", k, (unsigned long long)t->oracle[i].cases);
	}
	fprintf(f, "  %-34s %10llu\n", "skipped as impossible",
		(unsigned long long)t->skipped_impossible);
	fprintf(f, "  %-34s %10llu\n", "skipped, state not reached",
		(unsigned long long)t->skipped_unreached);
	if (t->skipped_other)
		fprintf(f, "  %-34s %10llu\n", "skipped, other",
			(unsigned long long)t->skipped_other);
	fprintf(f, "  %-34s %10llu\n", "errors", (unsigned long long)t->errors);
	fprintf(f, "  %-34s %10llu\n", "scenarios failing without injection",
		(unsigned long long)t->baseline_failures);
	fprintf(f, "  %-34s %10llu\n", "drivers failing on their own",
		(unsigned long long)t->drivers_failed);
	fprintf(f, "  %-34s %10llu\n", "failure case files written",
		(unsigned long long)t->files_written);
	fprintf(f, "  %-34s %10llu\n", "  started at the previous stop",
		(unsigned long long)t->chained);
	fprintf(f, "  %-34s %10llu\n", "  ended at a converged resume",
		(unsigned long long)t->converged);
	fprintf(f, "  %-34s %10.1f\n", "cases per second (engine runs)", t->cases_per_sec);
	fprintf(f, "  %-34s %10.1f\n", "plan time (s)", t->plan_sec);
	fprintf(f, "  %-34s %10.1f\n", "run time (s)", t->run_sec);
	fprintf(f, "  %-34s %10.1f\n", "wall time (s)", t->wall_sec);
	if (ng) {
		fprintf(f, "\nnot reached (boundaries, by symbol):\n");
		for (size_t i = 0; i < ng; i++)
			fprintf(f, "  %6llu  %-36s %s\n", (unsigned long long)g[i].count,
				g[i].symbol, g[i].reason);
	}
}
