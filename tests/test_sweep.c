/* SPDX-License-Identifier: MIT */
/*
 * The sweep, on real runs (kthreads: the scenario whose drivers stop at a
 * ring-0 loop, so it works on hosts that report no ring-3 breakpoints):
 *   - a small sweep of the unmodified guest: zero failures, a sane
 *     summary, JSON lines that are objects, JUnit XML with balanced tags;
 *   - the same sweep with the NMI exit path broken (nmi_restore's
 *     `pop %r12` made `pop %r11`: R12 comes back with what the paranoid
 *     entry left in it -- the GS base it found --, the next pop restores
 *     R11, the stack stays balanced, and the scenario alone never takes an
 *     NMI, so its baseline still passes): failures, one case file each, and
 *     every file read back by case__parse_file fails the same way through
 *     engine__run_case; the sweep runs a short guest (iters=1), and every
 *     file carries that guest option, so its replay boots the same guest;
 *   - cases the plan calls impossible are impossible for the engine too.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testlib.h"
#include "sweep.h"
#include "engine.h"

#define GUEST KT_GUEST("kinject-linux64")

static char tmpdir[256];

static void sweep_opts_init(struct sweep_opts *o, const char *events, uint64_t limit)
{
	size_t n;

	memset(o, 0, sizeof(*o));
	o->elf = GUEST;
	o->scenarios[o->nscenarios++] = "kthreads";
	CU_ASSERT_EQUAL_FATAL(sweep__parse_events(events, o->events, SWEEP_MAX_EVENTS, &n), 0);
	o->nevents = n;
	o->jobs = 2;
	o->hits = 1;
	o->limit = limit;
	o->log = stderr;
}

/* Every line a JSON object; returns the number of lines. */
static long json_lines(const char *buf, size_t len)
{
	long lines = 0;
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (l < 2 || p[0] != '{' || p[l - 1] != '}')
			return -1;
		lines++;
		p += l + 1;
	}
	return lines;
}

/* Balanced XML tags (a stack of names), the declaration aside. */
static bool xml_balanced(const char *path)
{
	FILE *f = fopen(path, "r");
	char stack[16][64], name[64];
	int depth = 0, c;
	bool ok = true, seen = false;

	if (!f)
		return false;
	while (ok && (c = fgetc(f)) != EOF) {
		if (c != '<')
			continue;
		bool close = false, self = false;
		size_t n = 0;
		int prev = 0;

		c = fgetc(f);
		if (c == '?') {                       /* <?xml ... ?> */
			while ((c = fgetc(f)) != EOF && c != '>')
				;
			continue;
		}
		if (c == '/')
			close = true;
		else
			name[n++] = (char)c;
		while ((c = fgetc(f)) != EOF && c != '>' && c != ' ' && c != '/' && n < sizeof(name) - 1)
			name[n++] = (char)c;
		name[n] = 0;
		if (c == '/')
			self = true;
		while (c != EOF && c != '>') {
			prev = c;
			c = fgetc(f);
		}
		if (prev == '/')
			self = true;
		seen = true;
		if (self)
			continue;
		if (close) {
			ok = depth > 0 && !strcmp(stack[depth - 1], name);
			depth--;
		} else {
			ok = depth < 16;
			if (ok)
				snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
		}
	}
	fclose(f);
	return ok && seen && depth == 0;
}

static void test_clean_sweep(void)
{
	struct sweep_opts o;
	struct sweep_totals t;
	char junit[300], *buf = NULL;
	size_t len = 0;
	FILE *js = open_memstream(&buf, &len);

	sweep_opts_init(&o, "irq,nmi", 8);
	snprintf(junit, sizeof(junit), "%s/clean.xml", tmpdir);
	o.junit = junit;
	o.json = js;
	o.out_dir = tmpdir;
	KT_ASSERT_OK(sweep__run(&o, &t));
	fclose(js);
	fprintf(stderr, "clean: %llu cases, %llu run, %llu passed, %llu failed, %llu impossible, "
		"%llu errors, %.1f cases/s\n", (unsigned long long)t.cases,
		(unsigned long long)t.run, (unsigned long long)t.passed,
		(unsigned long long)t.failed, (unsigned long long)t.skipped_impossible,
		(unsigned long long)t.errors, t.cases_per_sec);
	KT_ASSERT_EQ_U64(t.failed, 0);
	KT_ASSERT_EQ_U64(t.errors, 0);
	KT_ASSERT_EQ_U64(t.baseline_failures, 0);
	KT_ASSERT_EQ_U64(t.files_written, 0);
	CU_ASSERT(t.boundaries > 100);
	CU_ASSERT(t.reached > 10 && t.reached < t.boundaries);
	CU_ASSERT_EQUAL(t.reached + t.not_reached, t.boundaries);
	CU_ASSERT(t.run >= 1 && t.run <= 8);
	CU_ASSERT(t.passed >= 1);
	CU_ASSERT(t.skipped_impossible >= 1);          /* IRQs where IF=0 */
	CU_ASSERT_EQUAL(t.cases, t.passed + t.failed + t.errors + t.skipped_impossible +
			t.skipped_unreached + t.skipped_other);
	CU_ASSERT(t.cases_per_sec > 0);
	CU_ASSERT_EQUAL(sweep__exit_code(&t), 0);
	KT_ASSERT_EQ_U64(json_lines(buf, len), t.cases + 1);
	CU_ASSERT(strstr(buf, "{\"summary\":") != NULL);
	CU_ASSERT(xml_balanced(junit));
	free(buf);
}

static void test_broken_exit_path(void)
{
	struct sweep_opts o;
	struct sweep_totals t;
	char out[300], junit[300];
	struct engine_opts eo = { .elf = GUEST };
	struct session *s = NULL;
	unsigned replayed = 0;
	DIR *dir;
	struct dirent *de;

	sweep_opts_init(&o, "nmi", 6);
	snprintf(out, sizeof(out), "%s/broken", tmpdir);
	snprintf(junit, sizeof(junit), "%s/broken.xml", tmpdir);
	o.out_dir = out;
	o.junit = junit;
	snprintf(o.patches[0].where, sizeof(o.patches[0].where), "nmi_restore+6");
	o.patches[0].bytes[0] = 0x41;                  /* pop %r11, not %r12 */
	o.patches[0].bytes[1] = 0x5b;
	o.patches[0].len = 2;
	o.npatches = 1;
	o.iters = 1;
	KT_ASSERT_OK(sweep__run(&o, &t));
	fprintf(stderr, "broken: %llu cases, %llu run, %llu passed, %llu failed, %llu files\n",
		(unsigned long long)t.cases, (unsigned long long)t.run,
		(unsigned long long)t.passed, (unsigned long long)t.failed,
		(unsigned long long)t.files_written);
	KT_ASSERT_EQ_U64(t.baseline_failures, 0);
	CU_ASSERT(t.failed >= 1);
	KT_ASSERT_EQ_U64(t.files_written, t.failed);
	CU_ASSERT_EQUAL(sweep__exit_code(&t), 1);
	CU_ASSERT(xml_balanced(junit));

	dir = opendir(out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	while ((de = readdir(dir))) {
		char path[600];
		struct kcase *c = calloc(1, sizeof(*c));
		struct case_result *r = calloc(1, sizeof(*r));

		if (!strstr(de->d_name, ".kc")) {
			free(c);
			free(r);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", out, de->d_name);
		KT_ASSERT_OK(case__parse_file(path, c));
		CU_ASSERT_EQUAL(c->expect, CASE_EXPECT_PASS);
		CU_ASSERT_EQUAL(c->npatches, 1);
		CU_ASSERT_STRING_EQUAL(c->guest, "iters=1");
		if (!s)
			s = engine__open(&eo, c);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		KT_ASSERT_OK(engine__run_case(s, c, r));
		if (r->verdict != VERDICT_FAIL)
			fprintf(stderr, "%s: %s: %s\n", path, verdict__name(r->verdict), r->reason);
		KT_ASSERT_EQ_U64(r->verdict, VERDICT_FAIL);
		CU_ASSERT(r->nfindings >= 1);
		replayed++;
		free(c);
		free(r);
	}
	closedir(dir);
	engine__close(s);
	KT_ASSERT_EQ_U64(replayed, t.files_written);
}

static void test_impossible_agrees(void)
{
	struct sweep_opts o;
	struct sweep_totals t;

	/* Every case through the engine: the plan's "impossible" must be
	 * the engine's too (IRQs in the IF=0 entry code). */
	sweep_opts_init(&o, "irq", 6);
	o.run_impossible = true;
	KT_ASSERT_OK(sweep__run(&o, &t));
	KT_ASSERT_EQ_U64(t.run, t.cases);
	KT_ASSERT_EQ_U64(t.failed, 0);
	KT_ASSERT_EQ_U64(t.errors, 0);
	CU_ASSERT(t.skipped_impossible >= 1);
}

static void test_bad_events(void)
{
	struct sweep_event ev[SWEEP_MAX_EVENTS];
	size_t n;

	CU_ASSERT_EQUAL(sweep__parse_events("irq,nmi,pf:0x4:0x1000,gp,db:0x4000,irq:0x20", ev,
					    SWEEP_MAX_EVENTS, &n), 0);
	CU_ASSERT_EQUAL(n, 6);
	CU_ASSERT_EQUAL(ev[0].ev.vector, KINJECT_VEC_SPURIOUS);
	CU_ASSERT_EQUAL(ev[2].ev.cr2, 0x1000);
	CU_ASSERT_EQUAL(ev[2].ev.error_code, 4);
	CU_ASSERT_EQUAL(ev[5].ev.vector, 0x20);
	CU_ASSERT_EQUAL(sweep__parse_events("irq:256", ev, SWEEP_MAX_EVENTS, &n), -1);
	CU_ASSERT_EQUAL(sweep__parse_events("ud:1", ev, SWEEP_MAX_EVENTS, &n), -1);
	CU_ASSERT_EQUAL(sweep__parse_events("bogus", ev, SWEEP_MAX_EVENTS, &n), -1);
	CU_ASSERT_EQUAL(sweep__parse_events(",", ev, SWEEP_MAX_EVENTS, &n), -1);
}

static int setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kinject-test-sweep-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : 1;
}

static int teardown(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : 1;
}

static CU_TestInfo tests[] = {
	{ "--events parsing and its errors", test_bad_events },
	{ "small sweep of the unmodified guest: no failure", test_clean_sweep },
	{ "broken NMI exit: failures, case files that replay them", test_broken_exit_path },
	{ "the plan's impossible cases are the engine's", test_impossible_agrees },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = {
		.name = "sweep", .needs_kvm = true, .setup = setup, .teardown = teardown,
		.tests = tests,
	};
	return kt_main(&s);
}
