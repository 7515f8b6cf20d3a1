/* SPDX-License-Identifier: MIT */
/*
 * Case files: good files parse to what they say and round-trip through the
 * writer; every kind of error names FILE:LINE and says what was expected;
 * thousands of random mutations never crash the parser, and whatever of
 * them parses also round-trips.
 *
 * Data: every .kc file in tests/data/case/good must parse; those in
 * tests/data/case/bad start with "# expect-error: LINE: MESSAGE" and must fail with exactly
 * "PATH:LINE: MESSAGE".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <kinject/abi.h>
#include "testlib.h"
#include "case.h"
#include "vmm.h"

#define DATA_DIR KINJECT_SOURCE_DIR "/tests/data/case"

static const char *example =
	"kinject-case 1\n"
	"# CVE-2014-9322: IRET to a bad SS after swapgs\n"
	"title   bad IRET with user GS\n"
	"variant linux64\n"
	"scenario ss16\n"
	"patch   irq_return_iret+0=90              # optional, repeatable\n"
	"patch   0xffffffff81000000=0f0b\n"
	"step    stop at irq_return_iret hit 1 when cpl=0 if=0 ; inject exception 12 error 0\n"
	"step    stop at asm_exc_stack_segment hit 1 ; inject nmi force\n"
	"expect  fail frame\n";

static struct kcase *kc_new(void)
{
	struct kcase *c = malloc(sizeof(*c));

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	return c;
}

/* Parse, write, parse again: same case, and writing again gives the same
 * text (the canonical form is a fixpoint). */
static void assert_round_trip(const struct kcase *c)
{
	struct kcase *back = kc_new();
	char *t1 = NULL, *t2 = NULL;

	KT_ASSERT_OK(case__to_string(c, &t1));
	if (t1) {
		KT_ASSERT_OK(case__parse_string(t1, "rt", back));
		CU_ASSERT(case__equal(c, back));
		KT_ASSERT_OK(case__to_string(back, &t2));
		if (t2)
			CU_ASSERT_STRING_EQUAL(t1, t2);
	}
	free(t1);
	free(t2);
	free(back);
}

static void test_example(void)
{
	struct kcase *c = kc_new();

	KT_ASSERT_OK(case__parse_string(example, "ex.kc", c));
	CU_ASSERT_EQUAL(c->version, 1);
	CU_ASSERT_STRING_EQUAL(c->name, "ex.kc");
	CU_ASSERT_STRING_EQUAL(c->title, "bad IRET with user GS");
	CU_ASSERT_STRING_EQUAL(c->variant, "linux64");
	CU_ASSERT_STRING_EQUAL(c->scenario, "ss16");
	CU_ASSERT_EQUAL_FATAL(c->npatches, 2);
	CU_ASSERT_STRING_EQUAL(c->patches[0].where, "irq_return_iret+0");
	CU_ASSERT_EQUAL(c->patches[0].len, 1);
	CU_ASSERT_EQUAL(c->patches[0].bytes[0], 0x90);
	CU_ASSERT_EQUAL(c->patches[0].line, 6);
	CU_ASSERT_EQUAL(c->patches[1].len, 2);
	CU_ASSERT_EQUAL(c->patches[1].bytes[1], 0x0b);
	CU_ASSERT_EQUAL_FATAL(c->nsteps, 2);

	const struct case_step *s = &c->steps[0];
	CU_ASSERT_STRING_EQUAL(s->stop.where, "irq_return_iret");
	CU_ASSERT_EQUAL(s->stop.hit, 1);
	CU_ASSERT_EQUAL(s->stop.pred[CASE_PRED_CPL], 0);
	CU_ASSERT_EQUAL(s->stop.pred[CASE_PRED_IF], 0);
	CU_ASSERT_EQUAL(s->stop.pred[CASE_PRED_SHADOW], CASE_ANY);
	CU_ASSERT_EQUAL(s->inject.kind, VM_EVENT_EXCEPTION);
	CU_ASSERT_EQUAL(s->inject.vector, 12);
	CU_ASSERT(s->inject.has_error_code);
	CU_ASSERT_EQUAL(s->inject.error_code, 0);
	CU_ASSERT(!s->inject.force);
	CU_ASSERT_EQUAL(s->line, 8);

	s = &c->steps[1];
	CU_ASSERT_EQUAL(s->inject.kind, VM_EVENT_NMI);
	CU_ASSERT(s->inject.force);
	CU_ASSERT_EQUAL(c->expect, CASE_EXPECT_FAIL);
	CU_ASSERT_STRING_EQUAL(c->oracle, "frame");
	CU_ASSERT_EQUAL(c->mode, CASE_MODE_DEFAULT);
	assert_round_trip(c);
	case__free(c);
	free(c);
}

static void test_events(void)
{
	static const char *text =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario syscall\n"
		"step stop at f ; inject exception pf error 0x4 cr2 0x1000\n"
		"step stop at f ; inject exception gp\n"                 /* error code defaults to 0 */
		"step stop at f ; inject exception db dr6 0xffff4ff0 force\n"
		"step stop at f;inject irq 255\n"                         /* ';' needs no spaces */
		"step stop at f hit 0x10 when shadow=1 ; inject exception 31\n"
		"step stop at f+0x3 irq_stack=1 nmi_blocked=1 ss16=1 ; inject irq 0\n"
		"budget exits 1000\n"
		"mode fast\n";
	struct kcase *c = kc_new();
	struct vm_event ev;
	char buf[128];

	KT_ASSERT_OK(case__parse_string(text, "ev.kc", c));
	CU_ASSERT_EQUAL_FATAL(c->nsteps, 6);
	CU_ASSERT_EQUAL(c->steps[0].inject.vector, 14);
	CU_ASSERT_EQUAL(c->steps[0].inject.error_code, 4);
	CU_ASSERT(c->steps[0].inject.has_cr2);
	CU_ASSERT_EQUAL(c->steps[0].inject.cr2, 0x1000);
	CU_ASSERT(c->steps[1].inject.has_error_code);
	CU_ASSERT_EQUAL(c->steps[1].inject.vector, 13);
	CU_ASSERT_EQUAL(c->steps[2].inject.dr6, 0xffff4ff0);
	CU_ASSERT(c->steps[2].inject.force);
	CU_ASSERT_EQUAL(c->steps[3].inject.kind, VM_EVENT_IRQ);
	CU_ASSERT_EQUAL(c->steps[3].inject.vector, 255);
	CU_ASSERT_EQUAL(c->steps[4].stop.hit, 16);
	CU_ASSERT_EQUAL(c->steps[4].stop.pred[CASE_PRED_SHADOW], 1);
	CU_ASSERT(!c->steps[4].inject.has_error_code);
	CU_ASSERT_EQUAL(c->steps[5].stop.pred[CASE_PRED_SS16], 1);
	CU_ASSERT_EQUAL(c->budget_exits, 1000);
	CU_ASSERT_EQUAL(c->budget_steps, 0);
	CU_ASSERT_EQUAL(c->mode, CASE_MODE_FAST);
	CU_ASSERT_EQUAL(c->expect, CASE_EXPECT_PASS);

	CU_ASSERT_STRING_EQUAL(case__event_str(&c->steps[0].inject, buf, sizeof(buf)),
			       "exception pf error 0x4 cr2 0x1000");
	CU_ASSERT_STRING_EQUAL(case__step_str(&c->steps[4], buf, sizeof(buf)),
			       "stop at f hit 16 when shadow=1 ; inject exception 31");

	case__to_vm_event(&c->steps[0].inject, &ev);
	CU_ASSERT_EQUAL(ev.kind, VM_EVENT_EXCEPTION);
	CU_ASSERT_EQUAL(ev.vector, 14);
	CU_ASSERT(ev.has_error_code && ev.error_code == 4);
	CU_ASSERT(ev.has_payload && ev.payload == 0x1000);
	case__to_vm_event(&c->steps[2].inject, &ev);
	CU_ASSERT(ev.has_payload && ev.payload == 0xffff4ff0 && ev.force);
	case__to_vm_event(&c->steps[3].inject, &ev);
	CU_ASSERT(ev.kind == VM_EVENT_IRQ && ev.vector == 255 && !ev.has_error_code && !ev.has_payload);
	assert_round_trip(c);
	free(c);
}

/* `text`, named "e", fails to parse with exactly `error`. */
static void assert_error(const char *text, const char *error)
{
	struct kcase *c = kc_new();

	CU_ASSERT_EQUAL(case__parse_string(text, "e", c), -1);
	if (strcmp(vmm__error(), error)) {
		char m[1024];

		snprintf(m, sizeof(m), "expected \"%s\", got \"%s\"", error, vmm__error());
		CU_FAIL(m);
	}
	/* A failed parse leaves nothing half-filled. */
	CU_ASSERT_EQUAL(c->nsteps, 0);
	CU_ASSERT_EQUAL(c->variant[0], '\0');
	CU_ASSERT_EQUAL(c->guest[0], '\0');
	free(c);
}

/* Error cases given inline: exact "NAME:LINE: message". */
static void test_errors(void)
{
	static const struct { const char *text, *error; } cases[] = {
		{ "", "e:1: expected 'kinject-case 3' as the first line, got end of file" },
		{ "kinject-case\n", "e:1: expected a format version after 'kinject-case', got end of line" },
		{ "kinject-case 1 extra\n", "e:1: expected end of line, got 'extra'" },
		{ "kinject-case 1\nvariant\n",
		  "e:2: expected a variant name (letters, digits, '_', '-', '.'; at most 15), got end of line" },
		{ "kinject-case 1\nvariant a_variant_name_too_long\n",
		  "e:2: expected a variant name (letters, digits, '_', '-', '.'; at most 15), got 'a_variant_name_too_long'" },
		{ "kinject-case 1\nvariant v\nscenario s\nstep stop at f ; inject nmi\nkinject-case 1\n",
		  "e:5: expected one 'kinject-case' line (the first), got another" },
		{ "kinject-case 1\ntitle a\ntitle b\n",
		  "e:3: expected one 'title' line (the first is line 2), got another" },
		{ "kinject-case 1\ntitle\n", "e:2: expected a title after 'title', got end of line" },
		{ "kinject-case 1\nstep stop at ; inject nmi\n",
		  "e:2: expected a symbol, symbol+offset or address, got ';'" },
		{ "kinject-case 1\nstep stop at f+x ; inject nmi\n",
		  "e:2: expected a symbol, symbol+offset or address, got 'f+x'" },
		{ "kinject-case 1\nstep stop f ; inject nmi\n", "e:2: expected 'at' after 'stop', got 'f'" },
		{ "kinject-case 1\nstep at f ; inject nmi\n", "e:2: expected 'stop at', got 'at'" },
		{ "kinject-case 1\nstep stop at f if=2 ; inject nmi\n", "e:2: expected if=0 or 1, got 'if=2'" },
		{ "kinject-case 1\nstep stop at f if=1 if=1 ; inject nmi\n", "e:2: expected one 'if=' per step, got another" },
		{ "kinject-case 1\nstep stop at f hit 1 hit 2 ; inject nmi\n", "e:2: expected one 'hit' per step, got another" },
		{ "kinject-case 1\nstep stop at f bogus ; inject nmi\n",
		  "e:2: expected 'hit N', ';' or a predicate (cpl=, if=, nmi_blocked=, shadow=, irq_stack=, ss16=), got 'bogus'" },
		{ "kinject-case 1\nstep stop at f ; nmi\n", "e:2: expected 'inject' after ';', got 'nmi'" },
		{ "kinject-case 1\nstep stop at f ; inject smi\n", "e:2: expected an event (irq, nmi, exception), got 'smi'" },
		{ "kinject-case 1\nstep stop at f ; inject exception nmi\n",
		  "e:2: expected an exception vector other than 2 (use 'inject nmi'), got 'nmi'" },
		{ "kinject-case 1\nstep stop at f ; inject exception xx\n",
		  "e:2: expected an exception vector (0-31 or de, db, bp, ..., pf), got 'xx'" },
		{ "kinject-case 1\nstep stop at f ; inject exception gp error 0x100000000\n",
		  "e:2: expected a 32-bit error code, got '0x100000000'" },
		{ "kinject-case 1\nstep stop at f ; inject exception gp error 1 error 2\n",
		  "e:2: expected one 'error', got another" },
		{ "kinject-case 1\nstep stop at f ; inject exception gp cr2 0x1000\n",
		  "e:2: expected 'cr2' only with exception pf, got it with vector 13" },
		{ "kinject-case 1\nstep stop at f ; inject exception pf dr6 0\n",
		  "e:2: expected 'dr6' only with exception db, got it with vector 14" },
		{ "kinject-case 1\nstep stop at f ; inject nmi error 0\n", "e:2: expected 'force' or end of line, got 'error'" },
		{ "kinject-case 1\nstep stop at f ; inject irq 32 force force\n", "e:2: expected one 'force', got another" },
		{ "kinject-case 1\nstep stop at f ; inject irq -1\n", "e:2: expected an IRQ vector 0-255, got '-1'" },
		{ "kinject-case 1\nstep stop at f ; inject irq 18446744073709551616\n",
		  "e:2: expected an IRQ vector 0-255, got '18446744073709551616'" },
		{ "kinject-case 1\npatch foo\n", "e:2: expected SYM+OFF=HEXBYTES, got 'foo'" },
		{ "kinject-case 1\npatch foo=zz\n", "e:2: expected hex digits after '=', got 'zz'" },
		{ "kinject-case 1\npatch =90\n", "e:2: expected a symbol, symbol+offset or address before '=', got ''" },
		{ "kinject-case 1\nbudget exits 0\n", "e:2: expected a budget >= 1, got '0'" },
		{ "kinject-case 1\nbudget time 5\n", "e:2: expected 'exits' or 'steps' after 'budget', got 'time'" },
		{ "kinject-case 1\nbudget steps 5\nbudget steps 6\n",
		  "e:3: expected one 'budget steps' line (the first is line 2), got another" },
		{ "kinject-case 1\nmode slow\n", "e:2: expected 'trace' or 'fast' after 'mode', got 'slow'" },
		{ "kinject-case 1\nexpect maybe\n", "e:2: expected 'pass' or 'fail [ORACLE]' after 'expect', got 'maybe'" },
		{ "kinject-case 1\nexpect pass frame\n", "e:2: expected end of line, got 'frame'" },
		{ "kinject-case 1\nexpect fail frame gs\n", "e:2: expected end of line, got 'gs'" },
		{ "kinject-case 1\ntitle a\x01" "b\n", "e:2: expected printable text, got byte 0x01" },
		{ "kinject-case 1\nvariant v\nscenario s\n\n# only comments\n",
		  "e:5: expected at least one 'step' line, got end of file" },
		{ "kinject-case 1\r\nvariant v\r\n", "e:2: expected a 'scenario' line, got end of file" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_error(cases[i].text, cases[i].error);
}

static void test_too_many(void)
{
	char text[4096];
	size_t n = 0;
	struct kcase *c = kc_new();

	n += (size_t)snprintf(text + n, sizeof(text) - n, "kinject-case 1\nvariant v\nscenario s\n");
	for (int i = 0; i <= CASE_MAX_STEPS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "step stop at f ; inject nmi\n");
	CU_ASSERT_EQUAL(case__parse_string(text, "m", c), -1);
	CU_ASSERT_STRING_EQUAL(vmm__error(), "m:12: expected at most 8 steps, got another");
	free(c);
}

static void test_files(void)
{
	char path[1024], line[512];
	struct kcase *c = kc_new();
	struct dirent *d;
	DIR *dir;
	int good = 0, bad = 0;

	dir = opendir(DATA_DIR "/good");
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	while ((d = readdir(dir))) {
		if (!strstr(d->d_name, ".kc"))
			continue;
		snprintf(path, sizeof(path), "%s/good/%s", DATA_DIR, d->d_name);
		KT_ASSERT_OK(case__parse_file(path, c));
		CU_ASSERT_STRING_EQUAL(c->name, path);
		assert_round_trip(c);
		good++;
	}
	closedir(dir);

	dir = opendir(DATA_DIR "/bad");
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	while ((d = readdir(dir))) {
		char want[2048];
		unsigned ln;
		int off = 0;
		FILE *f;

		if (!strstr(d->d_name, ".kc"))
			continue;
		snprintf(path, sizeof(path), "%s/bad/%s", DATA_DIR, d->d_name);
		f = fopen(path, "r");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
		fclose(f);
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "# expect-error: %u: %n", &ln, &off) != 1 || !off) {
			CU_FAIL("bad case file without '# expect-error: LINE: MESSAGE'");
			continue;
		}
		snprintf(want, sizeof(want), "%s:%u: %s", path, ln, line + off);
		CU_ASSERT_EQUAL(case__parse_file(path, c), -1);
		if (strcmp(vmm__error(), want)) {
			char m[4200];

			snprintf(m, sizeof(m), "expected \"%s\", got \"%s\"", want, vmm__error());
			CU_FAIL(m);
		}
		bad++;
	}
	closedir(dir);
	CU_ASSERT(good >= 3);
	CU_ASSERT(bad >= 10);

	CU_ASSERT_EQUAL(case__parse_file(DATA_DIR "/does-not-exist.kc", c), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "does-not-exist.kc: cannot open: "));
	free(c);
}

/* Cases built in code (the sweep) are written only if they read back the
 * same. */
static void test_write_checks(void)
{
	struct kcase *c = kc_new();
	char *text = NULL;

	case__init(c);
	snprintf(c->variant, sizeof(c->variant), "linux64");
	snprintf(c->scenario, sizeof(c->scenario), "idle");
	c->nsteps = 1;
	snprintf(c->steps[0].stop.where, sizeof(c->steps[0].stop.where), "asm_exc_nmi+0x12");
	c->steps[0].inject.kind = VM_EVENT_NMI;
	c->steps[0].inject.vector = 2;
	KT_ASSERT_OK(case__to_string(c, &text));
	CU_ASSERT_STRING_EQUAL(text, "kinject-case 3\nvariant  linux64\nscenario idle\n"
			       "step     stop at asm_exc_nmi+0x12 hit 1 ; inject nmi\nexpect   pass\n");
	free(text);

	snprintf(c->title, sizeof(c->title), "bug #5");
	CU_ASSERT_EQUAL(case__to_string(c, &text), -1);
	CU_ASSERT_PTR_NULL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "cannot be written"));
	snprintf(c->title, sizeof(c->title), "bug 5");

	/* An error code on #UD cannot exist: refused rather than dropped. */
	c->steps[0].inject.kind = VM_EVENT_EXCEPTION;
	c->steps[0].inject.vector = 6;
	c->steps[0].inject.has_error_code = true;
	CU_ASSERT_EQUAL(case__to_string(c, &text), -1);
	c->steps[0].inject.has_error_code = false;

	snprintf(c->steps[0].stop.where, sizeof(c->steps[0].stop.where), "bad name");
	CU_ASSERT_EQUAL(case__write(stdout, c), -1);
	free(c);
}

static void test_resolve(void)
{
	struct symbol syms[] = {
		{ .addr = 0xffffffff81000000, .size = 0x40, .name = "entry_SYSCALL_64", .is_func = true },
		{ .addr = 0xffffffff81000100, .size = 0x20, .name = "irq_return_iret", .is_func = true },
	};
	struct symtab t = { .syms = syms, .n = 2 };
	struct kcase *c = kc_new();

	KT_ASSERT_OK(case__parse_string(
		"kinject-case 1\nvariant v\nscenario s\npatch irq_return_iret+2=90\n"
		"step stop at entry_SYSCALL_64+0x10 ; inject nmi\n"
		"step stop at 0x1234 ; inject nmi\n", "r.kc", c));
	KT_ASSERT_OK(case__resolve(c, &t));
	KT_ASSERT_EQ_U64(c->patches[0].addr, 0xffffffff81000102);
	KT_ASSERT_EQ_U64(c->steps[0].stop.addr, 0xffffffff81000010);
	KT_ASSERT_EQ_U64(c->steps[1].stop.addr, 0x1234);

	KT_ASSERT_OK(case__parse_string(
		"kinject-case 1\nvariant v\nscenario s\n\nstep stop at no_such_symbol ; inject nmi\n", "r.kc", c));
	CU_ASSERT_EQUAL(case__resolve(c, &t), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "r.kc:5: expected a symbol or address of the guest, got 'no_such_symbol'"));
	free(c);
}

/* Version 2: `user:LABEL+OFF` is the label's ring-3 address, inside
 * .user.text only; a version-1 file may not use it. */
static void test_resolve_user(void)
{
	struct symbol syms[] = {
		{ .addr = 0xffffffff80108000, .name = "__user_text_start", .is_func = true },
		{ .addr = 0xffffffff80109cf4, .size = 0x80, .name = "user_spin_loop", .is_func = true },
		{ .addr = 0xffffffff8010a000, .name = "__user_text_end" },
		{ .addr = 0xffffffff8010b000, .size = 0x10, .name = "do_irq", .is_func = true },
	};
	struct symtab t = { .syms = syms, .n = 4 };
	struct kcase *c = kc_new();
	uint64_t a;

	KT_ASSERT_OK(case__parse_string(
		"kinject-case 2\nvariant v\nscenario s\n"
		"step stop at user:user_spin_loop+0x43 hit 5 when cpl=3 ; inject nmi\n", "u.kc", c));
	KT_ASSERT_OK(case__resolve(c, &t));
	KT_ASSERT_EQ_U64(c->steps[0].stop.addr, KINJECT_USER_TEXT_VA + 0x1cf4 + 0x43);
	CU_ASSERT_EQUAL(case__resolve_where(&t, "user:do_irq", &a), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "do_irq is not in the guest's .user.text"));
	CU_ASSERT_EQUAL(case__parse_string(
		"kinject-case 1\nvariant v\nscenario s\n"
		"step stop at user:user_spin_loop ; inject nmi\n", "v1.kc", c), -1);
	CU_ASSERT_STRING_EQUAL(vmm__error(),
		"v1.kc:4: expected 'kinject-case 2' for a user: address, got version 1");
	free(c);
}

/* Version 3: `guest KEY=VALUE ...` goes on the guest command line; the
 * harness's own options are refused. */
static void test_guest(void)
{
	static const struct { const char *line, *error; } bad[] = {
		{ "guest\n", "e:4: expected KEY=VALUE after 'guest', got end of line" },
		{ "guest iters\n", "e:4: expected KEY=VALUE (letters, digits, '_', '-', '.'), got 'iters'" },
		{ "guest =1\n", "e:4: expected KEY=VALUE (letters, digits, '_', '-', '.'), got '=1'" },
		{ "guest iters=\n", "e:4: expected KEY=VALUE (letters, digits, '_', '-', '.'), got 'iters='" },
		{ "guest a=b=c\n", "e:4: expected KEY=VALUE (letters, digits, '_', '-', '.'), got 'a=b=c'" },
		{ "guest iters=1;\n", "e:4: expected KEY=VALUE (letters, digits, '_', '-', '.'), got ';'" },
		{ "guest iters=1 iters=2\n", "e:4: expected each guest option once, got 'iters=' again" },
		{ "guest scenario=idle\n", "e:4: expected a guest option the harness does not set itself "
		  "(scenario=, syscall=, int80=, ldt= are its own), got 'scenario=idle'" },
		{ "guest iters=1 syscall=1\n", "e:4: expected a guest option the harness does not set "
		  "itself (scenario=, syscall=, int80=, ldt= are its own), got 'syscall=1'" },
		{ "guest int80=0\n", "e:4: expected a guest option the harness does not set itself "
		  "(scenario=, syscall=, int80=, ldt= are its own), got 'int80=0'" },
		{ "guest ldt=1\n", "e:4: expected a guest option the harness does not set itself "
		  "(scenario=, syscall=, int80=, ldt= are its own), got 'ldt=1'" },
		{ "guest a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1\n", "e:4: expected at most 8 guest options, got 9" },
		{ "guest a=1234567890123456789012345678901234567890123456789012345678901234567890"
		  "1234567890123456789012345678901234567890123456789012345678901234567890\n",
		  "e:4: expected guest options of at most 127 characters, got 142" },
		{ "guest iters=1\nguest quantum=2\n", "e:5: expected one 'guest' line (the first is line 4), got another" },
	};
	static const char head[] = "kinject-case 3\nvariant v\nscenario s\n";
	struct kcase *c = kc_new(), *d = kc_new();
	char text[512], *out = NULL;

	KT_ASSERT_OK(case__parse_string("kinject-case 3\nvariant linux64\nscenario kthreads\n"
					"guest\titers=1   quantum=0x10 verbose=1  # short\n"
					"step stop at kthread_loop ; inject nmi\n", "g.kc", c));
	CU_ASSERT_EQUAL(c->version, 3);
	CU_ASSERT_STRING_EQUAL(c->guest, "iters=1 quantum=0x10 verbose=1");
	KT_ASSERT_OK(case__to_string(c, &out));
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "scenario kthreads\nguest    iters=1 quantum=0x10 verbose=1\n"));
	free(out);
	assert_round_trip(c);

	/* Other options, or none: another experiment. */
	*d = *c;
	snprintf(d->guest, sizeof(d->guest), "iters=2 quantum=0x10 verbose=1");
	CU_ASSERT_FALSE(case__equal(c, d));
	d->guest[0] = '\0';
	CU_ASSERT_FALSE(case__equal(c, d));
	assert_round_trip(d);

	/* Older versions have no 'guest' line, to read or to write. */
	CU_ASSERT_EQUAL(case__parse_string("kinject-case 2\nvariant v\nscenario s\nguest iters=1\n", "g2.kc", d), -1);
	CU_ASSERT_STRING_EQUAL(vmm__error(), "g2.kc:4: expected 'kinject-case 3' for a 'guest' line, got version 2");
	c->version = 2;
	CU_ASSERT_EQUAL(case__to_string(c, &out), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "expected 'kinject-case 3' for a 'guest' line"));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", head, bad[i].line);
		assert_error(text, bad[i].error);
	}
	free(c);
	free(d);
}

/* ---- fuzz ------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure is reproducible. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static const char *const dict[] = {
	"kinject-case", "1", "2", "title", "variant", "scenario", "patch", "step", "stop", "at",
	"hit", "when", ";", "inject", "irq", "nmi", "exception", "error", "cr2", "dr6", "force",
	"budget", "exits", "steps", "mode", "trace", "fast", "expect", "pass", "fail", "#",
	"cpl=0", "cpl=3", "if=1", "shadow=1", "ss16=0", "=", "+", "0x", "0xffffffffffffffff",
	"18446744073709551616", "-1", "pf", "gp", "db", "ud", "255", "256", "31", "32", "sym+0x10",
	"x=90", "guest", "iters=1", "3", "\t", " ", "\n", "\r", "\x01", "\xff", ";;", "", "foo=", "=0f0b",
};

static void mutate(char *buf, size_t cap)
{
	size_t len = strlen(buf);
	size_t at = len ? (size_t)(rnd() % (len + 1)) : 0;

	switch (rnd() % 6) {
	case 0:   /* flip a byte to anything but NUL */
		if (len)
			buf[at % len] = (char)(1 + rnd() % 255);
		break;
	case 1: { /* delete a run */
		size_t n = (size_t)(rnd() % 8);

		if (at + n > len)
			n = len - at;
		memmove(buf + at, buf + at + n, len - at - n + 1);
		break;
	}
	case 2:
	case 3: { /* insert a dictionary word, maybe with a space */
		const char *w = dict[rnd() % (sizeof(dict) / sizeof(dict[0]))];
		char ins[64];
		size_t n = (size_t)snprintf(ins, sizeof(ins), "%s%s", w, rnd() % 2 ? " " : "");

		if (len + n + 1 > cap)
			break;
		memmove(buf + at + n, buf + at, len - at + 1);
		memcpy(buf + at, ins, n);
		break;
	}
	case 4: { /* duplicate a line */
		char *nl = strchr(buf + at, '\n');
		char *start = at ? memrchr(buf, '\n', at) : NULL;
		size_t s = start ? (size_t)(start - buf) + 1 : 0, e = nl ? (size_t)(nl - buf) + 1 : len;

		if (e > s && len + (e - s) + 1 <= cap) {
			memmove(buf + e + (e - s), buf + e, len - e + 1);
			memcpy(buf + e, buf + s, e - s);
		}
		break;
	}
	default:  /* a line of random printable garbage */
		if (len + 34 < cap) {
			char g[34];

			for (int i = 0; i < 32; i++)
				g[i] = (char)(' ' + rnd() % 95);
			g[32] = '\n';
			g[33] = '\0';
			memmove(buf + at + 33, buf + at, len - at + 1);
			memcpy(buf + at, g, 33);
		}
		break;
	}
}

static void test_fuzz(void)
{
	enum { ROUNDS = 6000, CAP = 8192 };
	struct kcase *c = kc_new();
	char *buf = malloc(CAP);
	int parsed = 0, failed = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (int r = 0; r < ROUNDS; r++) {
		int nmut = 1 + (int)(rnd() % 6);

		snprintf(buf, CAP, "%s", example);
		for (int m = 0; m < nmut; m++)
			mutate(buf, CAP);
		if (case__parse_string(buf, "fuzz", c) == 0) {
			parsed++;
			/* Anything the parser accepts, the writer reproduces. */
			char *t = NULL;

			if (case__to_string(c, &t)) {
				char m[1024];

				snprintf(m, sizeof(m), "round %d: accepted but not writable: %s", r, vmm__error());
				CU_FAIL(m);
			}
			free(t);
		} else {
			failed++;
			/* Every error is one "fuzz:LINE: expected ..., got ..." line. */
			const char *e = vmm__error();

			CU_ASSERT(!strncmp(e, "fuzz:", 5) && strstr(e, ": expected ") && strstr(e, "got") &&
				  !strchr(e, '\n'));
		}
	}
	/* Both outcomes must be exercised for the test to mean something. */
	CU_ASSERT(parsed > 100);
	CU_ASSERT(failed > 100);
	printf("\n    fuzz: %d parsed, %d rejected\n", parsed, failed);
	free(buf);
	free(c);
}

static CU_TestInfo tests[] = {
	{ "the example case parses to what it says", test_example },
	{ "events, predicates, options", test_events },
	{ "each error: FILE:LINE: expected X, got Y", test_errors },
	{ "too many steps", test_too_many },
	{ "data files: good round-trip, bad fail exactly", test_files },
	{ "the writer refuses what would not read back", test_write_checks },
	{ "symbols resolve with a symtab", test_resolve },
	{ "user: addresses (version 2)", test_resolve_user },
	{ "guest options (version 3)", test_guest },
	{ "random mutations never crash and round-trip", test_fuzz },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const struct kt_suite suite = { .name = "case", .needs_kvm = false, .tests = tests };

	return kt_main(&suite);
}
