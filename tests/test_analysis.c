/* SPDX-License-Identifier: MIT */
/*
 * Capstone analysis: flags of the instructions the oracles care about,
 * memory operands, registers, branch targets, lookups by address, the
 * "sym+off: insn" formatter, and garbage that must decode without harm.
 * Input: the assembled entry text of tests/data/window/entry.S.
 */
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "testlib.h"
#include "analysis.h"
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

static const struct insn *at(uint64_t off)
{
	const struct insn *in = analysis__at(&code, ENTRY_BASE + off);

	CU_ASSERT_PTR_NOT_NULL(in);
	return in;
}

static void test_covers_range(void)
{
	uint64_t next = ENTRY_BASE;

	CU_ASSERT_EQUAL(code.nbad, 0);
	CU_ASSERT_EQUAL(code.n, 48);
	for (size_t i = 0; i < code.n; i++) {
		KT_ASSERT_EQ_U64(code.insns[i].addr, next);
		next += code.insns[i].size;
	}
	KT_ASSERT_EQ_U64(next, ENTRY_BASE + sizeof(entry_bytes));
}

static void test_flags(void)
{
	const struct insn *in;

	in = at(0x00);
	CU_ASSERT((in->flags & INSN_SWAPGS) != 0);
	CU_ASSERT((in->flags & INSN_PRIVILEGED) != 0);
	CU_ASSERT_EQUAL(in->size, 3);
	CU_ASSERT_EQUAL(memcmp(in->bytes, "\x0f\x01\xf8", 3), 0);

	/* mov %rsp, %gs:0x18: gs-relative store, reads RSP, not an RSP load. */
	in = at(0x03);
	CU_ASSERT((in->flags & INSN_GS_MEM) != 0);
	CU_ASSERT((in->flags & INSN_MEM_WRITE) != 0);
	CU_ASSERT(!(in->flags & INSN_MEM_READ));
	CU_ASSERT(!(in->flags & (INSN_LOADS_RSP | INSN_WRITES_RSP)));
	CU_ASSERT(analysis__reads_reg(in, X86_REG_RSP));
	CU_ASSERT_EQUAL_FATAL(in->nmem, 1);
	CU_ASSERT_EQUAL(in->mem[0].segment, X86_REG_GS);
	CU_ASSERT_EQUAL(in->mem[0].base, X86_REG_INVALID);
	CU_ASSERT_EQUAL(in->mem[0].disp, 0x18);

	/* mov %gs:0x50, %rsp: the stack switch. */
	in = at(0x0c);
	CU_ASSERT((in->flags & INSN_GS_MEM) != 0);
	CU_ASSERT((in->flags & INSN_MEM_READ) != 0);
	CU_ASSERT((in->flags & INSN_LOADS_RSP) != 0);
	CU_ASSERT((in->flags & INSN_WRITES_RSP) != 0);
	CU_ASSERT(analysis__writes_reg(in, X86_REG_RSP));
	CU_ASSERT_EQUAL(in->mem[0].disp, 0x50);

	/* push %rax writes RSP implicitly only. */
	in = at(0x15);
	CU_ASSERT((in->flags & INSN_WRITES_RSP) != 0);
	CU_ASSERT(!(in->flags & INSN_LOADS_RSP));

	in = at(0x1f);
	CU_ASSERT(in->flags & INSN_CR3_WRITE);
	CU_ASSERT(!(in->flags & INSN_CR3_READ));
	CU_ASSERT(analysis__reads_reg(in, X86_REG_RAX));
	CU_ASSERT(analysis__reads_reg(in, X86_REG_EAX));   /* any width of the family */

	in = at(0x37);
	CU_ASSERT((in->flags & INSN_STI) != 0);
	in = at(0x3d);
	CU_ASSERT((in->flags & INSN_CLI) != 0);

	/* call do_syscall: direct, target outside the range. */
	in = at(0x38);
	CU_ASSERT((in->flags & INSN_CALL) != 0);
	CU_ASSERT(!(in->flags & INSN_INDIRECT));
	CU_ASSERT(in->has_target);
	KT_ASSERT_EQ_U64(in->target, ENTRY_DO_SYSCALL);

	in = at(0x4d);
	CU_ASSERT((in->flags & INSN_JCC) != 0);
	CU_ASSERT(!(in->flags & INSN_JMP));
	KT_ASSERT_EQ_U64(in->target, ENTRY_BASE + 0x6a);

	in = at(0x67);
	CU_ASSERT((in->flags & INSN_SYSRET) != 0);
	in = at(0x72);
	CU_ASSERT((in->flags & INSN_IRET) != 0);
	in = at(0x80);
	CU_ASSERT((in->flags & INSN_RET) != 0);

	/* testb $3, 16(%rsp): an RSP-based memory read, not gs. */
	in = at(0x81);
	CU_ASSERT((in->flags & INSN_MEM_READ) != 0);
	CU_ASSERT(!(in->flags & INSN_GS_MEM));
	CU_ASSERT_EQUAL(in->mem[0].base, X86_REG_RSP);
	CU_ASSERT_EQUAL(in->mem[0].disp, 0x10);
	CU_ASSERT(!(in->flags & INSN_MEM_WRITE));       /* capstone 4.0.2 says read-write */

	in = at(0xbf);
	CU_ASSERT((in->flags & INSN_JMP) != 0);
	CU_ASSERT((in->flags & INSN_INDIRECT) != 0);
	CU_ASSERT(!in->has_target);
}

/* Instructions the entry text does not contain, from one buffer. */
static void test_more_flags(void)
{
	/* as/objdump of:
	 *   mov %cr3,%rax; wrmsr; rdmsr; wrgsbase %rax; rdgsbase %rax;
	 *   mov %fs:0x8,%rax; lea -8(%rsp),%rsp; and $-16,%rsp; xchg %rax,%rsp;
	 *   leave; pop %rsp; mov %eax,%ss; popfq; pushfq; hlt; ud2; lfence;
	 *   iretl; call *%rax; jmp *(%rax); movq $0,%gs:0x30(,%rax,8); int3 */
	static const uint8_t b[] = {
		0x0f, 0x20, 0xd8, 0x0f, 0x30, 0x0f, 0x32, 0xf3, 0x48, 0x0f, 0xae, 0xd8,
		0xf3, 0x48, 0x0f, 0xae, 0xc8, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00,
		0x00, 0x00, 0x48, 0x8d, 0x64, 0x24, 0xf8, 0x48, 0x83, 0xe4, 0xf0, 0x48,
		0x94, 0xc9, 0x5c, 0x8e, 0xd0, 0x9d, 0x9c, 0xf4, 0x0f, 0x0b, 0x0f, 0xae,
		0xe8, 0xcf, 0xff, 0xd0, 0xff, 0x20, 0x65, 0x48, 0xc7, 0x04, 0xc5, 0x30,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcc,
	};
	static const uint64_t want[] = {
		INSN_CR3_READ, INSN_WRMSR, INSN_RDMSR, INSN_WRGSBASE, INSN_RDGSBASE,
		INSN_FS_MEM | INSN_MEM_READ, INSN_LOADS_RSP, INSN_LOADS_RSP, INSN_LOADS_RSP,
		INSN_LOADS_RSP, INSN_LOADS_RSP, INSN_LOADS_SS, INSN_POPF, INSN_PUSHF, INSN_HLT,
		INSN_UD, INSN_FENCE, INSN_IRET, INSN_CALL | INSN_INDIRECT,
		INSN_JMP | INSN_INDIRECT | INSN_MEM_READ, INSN_GS_MEM | INSN_MEM_WRITE, INSN_INT,
	};
	struct code_range c;

	KT_ASSERT_OK(analysis__decode(b, sizeof(b), 0x1000, &c));
	CU_ASSERT_EQUAL_FATAL(c.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < c.n; i++) {
		if ((c.insns[i].flags & want[i]) != want[i]) {
			char m[256], t[128];

			snprintf(m, sizeof(m), "insn %zu (%s): flags 0x%llx lack 0x%llx", i,
				 analysis__text(&c.insns[i], t, sizeof(t)),
				 (unsigned long long)c.insns[i].flags, (unsigned long long)want[i]);
			CU_FAIL(m);
		}
	}
	/* the gs store with an index register */
	CU_ASSERT_EQUAL(c.insns[20].mem[0].index, X86_REG_RAX);
	CU_ASSERT_EQUAL(c.insns[20].mem[0].scale, 8);
	/* lea touches no memory */
	CU_ASSERT_EQUAL(c.insns[6].nmem, 0);
	CU_ASSERT(!(c.insns[6].flags & (INSN_MEM_READ | INSN_MEM_WRITE)));
	/* iretl is an iret too; the CR3 read is no write */
	CU_ASSERT(!(c.insns[0].flags & INSN_CR3_WRITE));
	analysis__free(&c);
}

static void test_lookup(void)
{
	const struct insn *in;

	/* every byte of an instruction finds it; only its start is "at" */
	in = analysis__containing(&code, ENTRY_BASE + 0x05);
	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	KT_ASSERT_EQ_U64(in->addr, ENTRY_BASE + 0x03);
	CU_ASSERT_PTR_NULL(analysis__at(&code, ENTRY_BASE + 0x05));
	CU_ASSERT_EQUAL(analysis__index(&code, ENTRY_BASE), 0);
	CU_ASSERT_EQUAL(analysis__index(&code, ENTRY_BASE + 0xbf), (long)code.n - 1);
	CU_ASSERT_PTR_NOT_NULL(analysis__at(&code, ENTRY_BASE + 0xbf));
	CU_ASSERT_PTR_NULL(analysis__containing(&code, ENTRY_BASE + sizeof(entry_bytes)));
	CU_ASSERT_PTR_NULL(analysis__containing(&code, ENTRY_BASE - 1));
	CU_ASSERT_PTR_NULL(analysis__at(&code, 0));
	CU_ASSERT_PTR_NULL(analysis__at(NULL, ENTRY_BASE));
	/* each instruction start maps to itself */
	for (size_t i = 0; i < code.n; i++)
		CU_ASSERT_PTR_EQUAL(analysis__at(&code, code.insns[i].addr), &code.insns[i]);
}

static void test_format(void)
{
	struct symbol syms[] = {
		{ .addr = ENTRY_SYSCALL_64, .size = 0x74, .name = "entry_SYSCALL_64", .is_func = true },
		{ .addr = ENTRY_TO_USER_CR3, .size = 0xd, .name = "to_user_cr3", .is_func = true },
		{ .addr = ENTRY_ASM_EXC_GP, .size = 0x40, .name = "asm_exc_gp", .is_func = true },
	};
	struct symtab t = { .syms = syms, .n = 3 };
	char buf[256];

	CU_ASSERT_STRING_EQUAL(analysis__format(&t, at(0x03), buf, sizeof(buf)),
			       "entry_SYSCALL_64+0x3: movq %rsp, %gs:0x18");
	CU_ASSERT_STRING_EQUAL(analysis__format(&t, at(0x00), buf, sizeof(buf)),
			       "entry_SYSCALL_64: swapgs");
	CU_ASSERT_STRING_EQUAL(analysis__format(&t, at(0x99), buf, sizeof(buf)),
			       "asm_exc_gp+0x18: movq %rsp, %rdi");
	CU_ASSERT_STRING_EQUAL(analysis__format(NULL, at(0x1f), buf, sizeof(buf)),
			       "0xffffffff8100001f: movq %rax, %cr3");
	/* a short buffer truncates, never overflows */
	analysis__format(&t, at(0x03), buf, 8);
	CU_ASSERT_EQUAL(strlen(buf), 7);
}

static void test_decode_one(void)
{
	struct insn in;
	static const uint8_t sysret[] = { 0x48, 0x0f, 0x07, 0xcc, 0xcc };
	static const uint8_t truncated[] = { 0x65, 0x48, 0x8b, 0x24 };   /* mov %gs:...,%rsp cut short */

	KT_ASSERT_OK(analysis__decode_one(sysret, sizeof(sysret), 0xffffffff81000067ULL, &in));
	CU_ASSERT((in.flags & INSN_SYSRET) != 0);
	CU_ASSERT_EQUAL(in.size, 3);
	KT_ASSERT_EQ_U64(in.addr, 0xffffffff81000067ULL);

	CU_ASSERT_EQUAL(analysis__decode_one(truncated, sizeof(truncated), 0x1000, &in), -1);
	CU_ASSERT((in.flags & INSN_BAD) != 0);
	CU_ASSERT_EQUAL(in.size, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "invalid instruction at 0x1000"));
	CU_ASSERT_EQUAL(analysis__decode_one(sysret, 0, 0x1000, &in), -1);
	CU_ASSERT_EQUAL(analysis__decode_one(NULL, 4, 0x1000, &in), -1);
	CU_ASSERT_EQUAL(analysis__decode_one(sysret, 4, 0x1000, NULL), -1);
	CU_ASSERT_EQUAL(analysis__decode(sysret, 0, 0x1000, &(struct code_range){0}), -1);
}

/* Random bytes: every byte covered, no crash, lookups consistent. */
static void test_garbage(void)
{
	uint64_t r = 0x243f6a8885a308d3ULL;
	uint8_t *buf = malloc(65536);
	struct insn one;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (int round = 0; round < 8; round++) {
		struct code_range c;
		size_t len = 4096 + (size_t)round * 7919, covered = 0;

		for (size_t i = 0; i < len; i++) {
			r ^= r << 13; r ^= r >> 7; r ^= r << 17;
			buf[i] = (uint8_t)r;
		}
		if (round == 7)
			memset(buf, 0xff, len);   /* ff ff ...: invalid forms */
		KT_ASSERT_OK(analysis__decode(buf, len, 0xffffffffffff0000ULL - len, &c));
		for (size_t i = 0; i < c.n; i++) {
			covered += c.insns[i].size;
			CU_ASSERT(c.insns[i].size >= 1 && c.insns[i].size <= 15);
		}
		CU_ASSERT_EQUAL(covered, len);
		for (size_t off = 0; off < len; off += 97)
			CU_ASSERT_PTR_NOT_NULL(analysis__containing(&c, c.base + off));
		for (size_t off = 0; off + 16 <= len; off += 131)
			analysis__decode_one(buf + off, 16, off, &one);
		analysis__free(&c);
	}
	/* a range that would wrap around the address space */
	struct code_range w;
	CU_ASSERT_EQUAL(analysis__decode(buf, 16, UINT64_MAX - 4, &w), -1);
	free(buf);
}

static CU_TestInfo tests[] = {
	{ "the decode covers the range, instruction by instruction", test_covers_range },
	{ "flags: swapgs, gs operands, cr3, RSP, branches, exits", test_flags },
	{ "flags: msr, fsgsbase, RSP loads, SS, popf, indirect", test_more_flags },
	{ "lookup by address", test_lookup },
	{ "sym+off formatter", test_format },
	{ "decode one instruction (the trace hot path)", test_decode_one },
	{ "garbage bytes never crash", test_garbage },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const struct kt_suite suite = {
		.name = "analysis", .needs_kvm = false, .setup = setup, .teardown = teardown, .tests = tests,
	};

	return kt_main(&suite);
}
