/* SPDX-License-Identifier: MIT */
/*
 * The static window map over tests/data/window/entry.S: a SYSCALL entry
 * (swapgs, stack switches, CR3 switches, an internal helper call, SYSRET
 * and IRET exits) and an IDT stub with the conditional swapgs on the saved
 * CS, entered from user and from kernel mode.  The classifiers are fakes
 * that know the per-CPU offsets of kinject/abi.h.
 */
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "testlib.h"
#include "analysis.h"
#include "window.h"
#include "data/window/entry.h"

static struct code_range code;

static int setup(void)
{
	return analysis__decode(entry_bytes, sizeof(entry_bytes), ENTRY_BASE, &code);
}

static int teardown(void)
{
	analysis__free(&code);
	analysis__fini();
	return 0;
}

/* mov %gs:KERNEL_CR3, %rax ... mov %rax, %cr3: look back a few
 * instructions for the load of the source register. */
static unsigned fake_cr3(const struct code_range *c, size_t i, const struct win_state *before, void *ctx)
{
	int *calls = ctx;

	(*calls)++;
	for (size_t k = i; k-- > 0 && i - k <= 4;) {
		const struct insn *in = &c->insns[k];

		if (!(in->flags & INSN_GS_MEM) || !analysis__writes_reg(in, X86_REG_RAX))
			continue;
		if (in->mem[0].disp == KINJECT_PCPU_KERNEL_CR3)
			return WIN_KERNEL;
		if (in->mem[0].disp == KINJECT_PCPU_USER_CR3)
			return WIN_USER;
	}
	return WIN_UNKNOWN;
}

static unsigned fake_rsp(const struct code_range *c, size_t i, const struct win_state *before, void *ctx)
{
	const struct insn *in = &c->insns[i];

	if (in->flags & INSN_GS_MEM) {
		switch (in->mem[0].disp) {
		case KINJECT_PCPU_ENTRY_STACK_TOP: return WIN_STACK_ENTRY;
		case KINJECT_PCPU_TOP_OF_STACK:    return WIN_STACK_TASK;
		case KINJECT_PCPU_USER_RSP:        return WIN_STACK_USER;
		}
	}
	return window__rsp_default(in);
}

static int cr3_calls;
static const struct win_ops ops = {
	.classify_cr3 = fake_cr3, .classify_rsp = fake_rsp,
	.classify_branch = window__branch_cs_rpl, .ctx = &cr3_calls,
};

/* SYSCALL: from user, IF masked by FMASK, still on the user stack. */
static const struct win_entry syscall_entry = {
	.addr = ENTRY_SYSCALL_64, .origin = WIN_USER,
	.state = { .gs = WIN_USER, .cr3 = WIN_USER, .stack = WIN_STACK_USER, .irq = WIN_IRQ_OFF },
};
/* The #GP stub through an interrupt gate: from user (on the trampoline
 * stack from TSS.RSP0) and from kernel (on whatever kernel stack). */
static const struct win_entry gp_entries[] = {
	{ .addr = ENTRY_ASM_EXC_GP, .origin = WIN_USER,
	  .state = { .gs = WIN_USER, .cr3 = WIN_USER, .stack = WIN_STACK_ENTRY, .irq = WIN_IRQ_OFF } },
	{ .addr = ENTRY_ASM_EXC_GP, .origin = WIN_KERNEL,
	  .state = { .gs = WIN_KERNEL, .cr3 = WIN_KERNEL, .stack = WIN_STACK_TASK | WIN_STACK_IRQ,
		     .irq = WIN_IRQ_OFF } },
};

static void expect_at(const struct win_map *m, uint64_t off, unsigned gs, unsigned cr3,
		      unsigned stack, unsigned irq, int line)
{
	struct win_state s;
	char m1[256], got[128], want[128];
	struct win_state w = { (uint8_t)gs, (uint8_t)cr3, (uint8_t)stack, (uint8_t)irq };

	if (window__at(m, ENTRY_BASE + off, &s)) {
		snprintf(m1, sizeof(m1), "line %d: window__at(+0x%llx): %s", line,
			 (unsigned long long)off, vmm__error());
		CU_FAIL(m1);
		return;
	}
	if (memcmp(&s, &w, sizeof(s))) {
		snprintf(m1, sizeof(m1), "line %d: at +0x%llx: expected %s, got %s", line,
			 (unsigned long long)off, window__state_str(&w, want, sizeof(want)),
			 window__state_str(&s, got, sizeof(got)));
		CU_FAIL(m1);
	} else {
		CU_PASS("state");
	}
}
#define EXPECT(m, off, gs, cr3, st, irq) expect_at(m, off, gs, cr3, st, irq, __LINE__)

static const struct win_insn *winsn(const struct win_map *m, uint64_t off)
{
	long i = analysis__index(&code, ENTRY_BASE + off);

	CU_ASSERT_FATAL(i >= 0);
	return &m->at[i];
}

static bool has_pred(const struct win_map *m, uint64_t off, uint64_t pred_off)
{
	const struct win_insn *w = winsn(m, off);

	for (uint32_t k = 0; k < w->npreds; k++)
		if (code.insns[w->preds[k]].addr == ENTRY_BASE + pred_off)
			return true;
	return false;
}

static void test_syscall(void)
{
	struct win_map m;
	const unsigned U = WIN_USER, K = WIN_KERNEL, OFF = WIN_IRQ_OFF, ON = WIN_IRQ_ON;

	cr3_calls = 0;
	KT_ASSERT_OK(window__build(&code, &syscall_entry, 1, &ops, &m));
	/*      offset  GS CR3 stack               IRQ */
	EXPECT(&m, 0x00, U, U, WIN_STACK_USER,  OFF);   /* swapgs */
	EXPECT(&m, 0x03, K, U, WIN_STACK_USER,  OFF);   /* mov %rsp,%gs:0x18: kernel GS, user stack */
	EXPECT(&m, 0x0c, K, U, WIN_STACK_USER,  OFF);
	EXPECT(&m, 0x15, K, U, WIN_STACK_ENTRY, OFF);   /* trampoline stack, user CR3 */
	EXPECT(&m, 0x1f, K, U, WIN_STACK_ENTRY, OFF);   /* mov %rax,%cr3 */
	EXPECT(&m, 0x22, K, K, WIN_STACK_ENTRY, OFF);
	EXPECT(&m, 0x2c, K, K, WIN_STACK_TASK,  OFF);
	EXPECT(&m, 0x38, K, K, WIN_STACK_TASK,  ON);    /* call do_syscall */
	EXPECT(&m, 0x3d, K, K, WIN_STACK_TASK,  ON);    /* cli: after the C call, windows preserved */
	EXPECT(&m, 0x3e, K, K, WIN_STACK_TASK,  OFF);
	EXPECT(&m, 0x58, K, K, WIN_STACK_TASK,  OFF);   /* mov %rax,%cr3 (user) */
	EXPECT(&m, 0x5b, K, U, WIN_STACK_TASK,  OFF);   /* user CR3, kernel GS, task stack */
	EXPECT(&m, 0x64, K, U, WIN_STACK_USER,  OFF);   /* swapgs */
	EXPECT(&m, 0x67, U, U, WIN_STACK_USER,  OFF);   /* sysretq */
	/* the slow path through the internal helper */
	EXPECT(&m, 0x6a, K, K, WIN_STACK_TASK,  OFF);
	EXPECT(&m, 0x74, K, K, WIN_STACK_TASK,  OFF);   /* to_user_cr3 */
	EXPECT(&m, 0x80, K, U, WIN_STACK_TASK,  OFF);   /* its ret */
	EXPECT(&m, 0x6f, K, U, WIN_STACK_TASK,  OFF);   /* back after the call */
	EXPECT(&m, 0x72, U, U, WIN_STACK_TASK,  OFF);   /* iretq */
	/* the IDT stub is not reached from the SYSCALL entry */
	EXPECT(&m, 0x81, 0, 0, 0, 0);

	CU_ASSERT(winsn(&m, 0x00)->is_entry);
	CU_ASSERT_EQUAL(winsn(&m, 0x00)->npreds, 0);
	CU_ASSERT(has_pred(&m, 0x6a, 0x4d));            /* jne */
	CU_ASSERT(has_pred(&m, 0x4f, 0x4d));            /* its fall-through */
	CU_ASSERT(has_pred(&m, 0x6f, 0x80));            /* the helper's ret returns here */
	CU_ASSERT(has_pred(&m, 0x74, 0x6a));
	CU_ASSERT(cr3_calls >= 3);
	CU_ASSERT_EQUAL(m.nnotes, 0);

	/* what a dynamic trace would report */
	struct win_state seen = { .gs = WIN_KERNEL, .cr3 = WIN_USER, .stack = WIN_STACK_ENTRY, .irq = WIN_IRQ_OFF };
	char why[128];
	CU_ASSERT(window__check(&m, ENTRY_BASE + 0x15, &seen, why, sizeof(why)));
	seen.gs = WIN_USER;
	CU_ASSERT(!window__check(&m, ENTRY_BASE + 0x15, &seen, why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(why, "GS user, map says kernel");
	seen = (struct win_state){ .stack = WIN_STACK_IRQ };     /* only the stack observed */
	CU_ASSERT(!window__check(&m, ENTRY_BASE + 0x38, &seen, why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(why, "stack irq, map says task");
	CU_ASSERT(!window__check(&m, ENTRY_BASE + 0x81, &seen, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "unreachable"));
	CU_ASSERT(!window__check(&m, ENTRY_BASE + 0x04, &seen, why, sizeof(why)));
	window__free(&m);
}

static void test_idt_stub(void)
{
	struct win_map m;
	struct win_state s;
	const unsigned U = WIN_USER, K = WIN_KERNEL, B = WIN_BOTH, OFF = WIN_IRQ_OFF;
	const unsigned KSTK = WIN_STACK_TASK | WIN_STACK_IRQ;

	KT_ASSERT_OK(window__build(&code, gp_entries, 2, &ops, &m));
	EXPECT(&m, 0x81, B, B, KSTK | WIN_STACK_ENTRY, OFF);   /* either origin */
	EXPECT(&m, 0x86, B, B, KSTK | WIN_STACK_ENTRY, OFF);   /* je */
	EXPECT(&m, 0x88, U, U, WIN_STACK_ENTRY, OFF);          /* swapgs: from user only */
	EXPECT(&m, 0x95, K, U, WIN_STACK_ENTRY, OFF);          /* mov %rax,%cr3 */
	EXPECT(&m, 0x99, K, K, KSTK | WIN_STACK_ENTRY, OFF);   /* the join: kernel GS and CR3 */
	EXPECT(&m, 0x9c, K, K, KSTK | WIN_STACK_ENTRY, OFF);   /* call do_exception */
	EXPECT(&m, 0xa8, K, K, WIN_STACK_ENTRY, OFF);          /* exit to user only */
	EXPECT(&m, 0xb6, K, U, WIN_STACK_ENTRY, OFF);          /* swapgs with user CR3 */
	EXPECT(&m, 0xb9, B, B, KSTK | WIN_STACK_ENTRY, OFF);   /* add $8,%rsp: same stack */
	EXPECT(&m, 0xbd, B, B, KSTK | WIN_STACK_ENTRY, OFF);   /* iretq */
	EXPECT(&m, 0xbf, 0, 0, 0, 0);                          /* after iretq: unreached */

	/* per origin */
	KT_ASSERT_OK(window__at_origin(&m, ENTRY_BASE + 0xbd, WIN_USER, &s));
	CU_ASSERT(s.gs == U && s.cr3 == U && s.stack == WIN_STACK_ENTRY);
	KT_ASSERT_OK(window__at_origin(&m, ENTRY_BASE + 0xbd, WIN_KERNEL, &s));
	CU_ASSERT(s.gs == K && s.cr3 == K && s.stack == KSTK);
	KT_ASSERT_OK(window__at_origin(&m, ENTRY_BASE + 0x88, WIN_KERNEL, &s));
	CU_ASSERT(!window__reached(&s));
	CU_ASSERT(has_pred(&m, 0x99, 0x86) && has_pred(&m, 0x99, 0x98));
	CU_ASSERT_EQUAL(m.nnotes, 0);

	/* the map prints */
	struct symbol syms[] = {
		{ .addr = ENTRY_SYSCALL_64, .size = 0x74, .name = "entry_SYSCALL_64", .is_func = true },
		{ .addr = ENTRY_TO_USER_CR3, .size = 0xd, .name = "to_user_cr3", .is_func = true },
		{ .addr = ENTRY_ASM_EXC_GP, .size = 0x40, .name = "asm_exc_gp", .is_func = true },
	};
	struct symtab t = { .syms = syms, .n = 3 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	window__print(f, &m, &t);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "> ffffffff81000081  asm_exc_gp "));
	const char *line = strstr(text, "  ffffffff81000099  asm_exc_gp+0x18 ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	char one[256];
	snprintf(one, sizeof(one), "%.*s", (int)strcspn(line, "\n"), line);
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "movq %rsp, %rdi"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "je 0xffffffff81000099 <asm_exc_gp+0x18>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "kernel  kernel"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "task|irq|entry"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, " off"));
	free(text);
	window__free(&m);
}

/* Without the origin test, both origins merge before the branch: the map
 * says "either" for GS after the join.  Still correct, just less precise. */
static void test_idt_stub_merged(void)
{
	struct win_ops o = ops;
	struct win_map m;

	o.classify_branch = NULL;
	KT_ASSERT_OK(window__build(&code, gp_entries, 2, &o, &m));
	EXPECT(&m, 0x88, WIN_BOTH, WIN_BOTH, WIN_STACK_TASK | WIN_STACK_IRQ | WIN_STACK_ENTRY, WIN_IRQ_OFF);
	{
		struct win_state s;

		KT_ASSERT_OK(window__at(&m, ENTRY_BASE + 0x99, &s));
		CU_ASSERT_EQUAL(s.gs, WIN_BOTH);
	}
	window__free(&m);
}

/* No classifiers: CR3 writes and unusual RSP loads become unknown, and
 * the map says so in its notes. */
static void test_no_classifiers(void)
{
	struct win_map m;
	char buf[64];
	struct win_state seen = { .cr3 = WIN_USER };

	KT_ASSERT_OK(window__build(&code, &syscall_entry, 1, NULL, &m));
	EXPECT(&m, 0x15, WIN_KERNEL, WIN_USER, WIN_UNKNOWN, WIN_IRQ_OFF);
	{
		struct win_state s;

		KT_ASSERT_OK(window__at(&m, ENTRY_BASE + 0x22, &s));
		CU_ASSERT_EQUAL(s.cr3, WIN_UNKNOWN);
		CU_ASSERT_STRING_EQUAL(window__side_name(s.cr3, buf, sizeof(buf)), "unknown");
	}
	/* unknown accepts whatever the trace sees */
	CU_ASSERT(window__check(&m, ENTRY_BASE + 0x22, &seen, NULL, 0));
	CU_ASSERT(m.nnotes >= 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(m.notes[0].what, "CR3 write not classified"));
	window__free(&m);
}

/* Notes: an indirect jmp, a jmp out of the range, a branch into the
 * middle of an instruction, falling off the end, garbage. */
static void test_notes(void)
{
	/* 0: jmp *%rax                ff e0
	 * 2: je  +0x1000 (out)        0f 84 fa 0f 00 00
	 * 8: jne .-1 (mid-insn)       75 ff  -> target 0x1009, inside itself
	 * a: nop                      90
	 * b: (bad) 0x06               06            invalid in 64-bit mode */
	static const uint8_t b[] = { 0xff, 0xe0, 0x0f, 0x84, 0xfa, 0x0f, 0x00, 0x00, 0x75, 0xff, 0x90, 0x06 };
	struct code_range c;
	struct win_map m;
	const struct win_state st = { WIN_KERNEL, WIN_KERNEL, WIN_STACK_TASK, WIN_IRQ_OFF };
	struct win_entry e[] = { { .addr = 0x1000, .state = st }, { .addr = 0x1002, .state = st } };
	bool indirect = false, leaves = false, middle = false, bad = false;

	KT_ASSERT_OK(analysis__decode(b, sizeof(b), 0x1000, &c));
	KT_ASSERT_OK(window__build(&c, e, 2, NULL, &m));
	for (size_t k = 0; k < m.nnotes; k++) {
		indirect |= m.notes[k].addr == 0x1000 && strstr(m.notes[k].what, "indirect jmp");
		leaves |= m.notes[k].addr == 0x1002 && strstr(m.notes[k].what, "leaves the range");
		middle |= m.notes[k].addr == 0x1008 && strstr(m.notes[k].what, "middle of an instruction");
		bad |= m.notes[k].addr == 0x100b && strstr(m.notes[k].what, "undecodable");
	}
	CU_ASSERT(indirect && leaves && middle && bad);
	window__free(&m);

	/* bad entries and arguments are errors, not crashes */
	struct win_entry mid = { .addr = 0x1001, .state = st }, empty = { .addr = 0x1000 };
	CU_ASSERT_EQUAL(window__build(&c, &mid, 1, NULL, &m), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "not an instruction start"));
	CU_ASSERT_EQUAL(window__build(&c, &empty, 1, NULL, &m), -1);
	CU_ASSERT_EQUAL(window__build(&c, NULL, 0, NULL, &m), -1);
	CU_ASSERT_EQUAL(window__build(NULL, e, 1, NULL, &m), -1);
	CU_ASSERT_EQUAL(window__at(&m, 0x1000, NULL), -1);
	analysis__free(&c);
}

/* Random bytes as entry code, entered at many places: terminates, no
 * crash, every reached instruction has a state in every dimension. */
static void test_garbage(void)
{
	uint64_t r = 0x452821e638d01377ULL;
	uint8_t *buf = malloc(16384);
	const struct win_state st = { WIN_USER, WIN_USER, WIN_STACK_USER, WIN_IRQ_ON };

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (int round = 0; round < 6; round++) {
		struct code_range c;
		struct win_map m;
		struct win_entry e[16];
		size_t ne = 0;

		for (size_t i = 0; i < 16384; i++) {
			r ^= r << 13; r ^= r >> 7; r ^= r << 17;
			buf[i] = (uint8_t)r;
		}
		KT_ASSERT_OK(analysis__decode(buf, 16384, 0xffffffff81000000ULL, &c));
		for (size_t i = 0; i < c.n && ne < 16; i += c.n / 16 + 1)
			e[ne++] = (struct win_entry){ .addr = c.insns[i].addr, .state = st,
						      .origin = (unsigned)(i % 3 == 0 ? 0 : i % 3 == 1 ? WIN_USER : WIN_KERNEL) };
		KT_ASSERT_OK(window__build(&c, e, ne, &ops, &m));
		for (size_t i = 0; i < c.n; i++) {
			const struct win_state *s = &m.at[i].in;

			if (window__reached(s))
				CU_ASSERT(s->gs && s->cr3 && s->stack && s->irq);
		}
		CU_ASSERT(m.iterations < 64 * c.n);
		window__free(&m);
		analysis__free(&c);
	}
	free(buf);
}

static void test_names(void)
{
	char b[64];

	CU_ASSERT_STRING_EQUAL(window__side_name(0, b, sizeof(b)), "-");
	CU_ASSERT_STRING_EQUAL(window__side_name(WIN_BOTH, b, sizeof(b)), "both");
	CU_ASSERT_STRING_EQUAL(window__side_name(WIN_KERNEL, b, sizeof(b)), "kernel");
	CU_ASSERT_STRING_EQUAL(window__irq_name(WIN_IRQ_ON | WIN_IRQ_OFF, b, sizeof(b)), "both");
	CU_ASSERT_STRING_EQUAL(window__stack_name(WIN_STACK_IST | WIN_STACK_ESPFIX, b, sizeof(b)), "ist|espfix");
	CU_ASSERT_STRING_EQUAL(window__stack_name(WIN_STACK_USER | WIN_UNKNOWN, b, sizeof(b)), "unknown");
	CU_ASSERT_STRING_EQUAL(window__state_str(&(struct win_state){ WIN_USER, WIN_KERNEL, WIN_STACK_ENTRY, WIN_IRQ_OFF },
						 b, sizeof(b)), "gs=user cr3=kernel stack=entry irq=off");
	window__stack_name(WIN_STACK_TASK | WIN_STACK_IRQ | WIN_STACK_IST, b, 6);
	CU_ASSERT_STRING_EQUAL(b, "task");
}

static CU_TestInfo tests[] = {
	{ "SYSCALL entry: swapgs, stacks, CR3, helper call, exits", test_syscall },
	{ "IDT stub: conditional swapgs, two origins, printable map", test_idt_stub },
	{ "IDT stub without the origin test: both", test_idt_stub_merged },
	{ "no classifiers: unknown, with notes", test_no_classifiers },
	{ "notes: indirect, out of range, mid-insn, garbage", test_notes },
	{ "random code terminates", test_garbage },
	{ "names", test_names },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const struct kt_suite suite = {
		.name = "window", .needs_kvm = false, .setup = setup, .teardown = teardown, .tests = tests,
	};

	return kt_main(&suite);
}
