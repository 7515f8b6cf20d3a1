/* SPDX-License-Identifier: MIT */
/*
 * Mutation testing of the oracles (mutate.h, docs/mutate.md).
 *
 * Generation walks the decoded entry text once per class and matches an
 * instruction pattern; labels of the variant only fence the region where a
 * class's pattern means what the class is about (e.g. the saved-IF test is
 * the one between retint_kernel and retint_kernel_preempt).  Every mutant
 * is a list of case-file patches, so its killing case replays with
 * `kinject run` like any other case.
 *
 * Running: the built-in driver cases (one injection each, chosen to reach
 * a path: return to kernel, NMI in a user-GS window, IRQ-stack switch...)
 * in an order that puts the class's likely killers first, then the rest,
 * then the regression cases of cases/; the first case with a finding kills
 * the mutant.  A mutant no case kills is checked for reachability: every
 * case again with one more step that stops at the mutated bytes.
 */
#include <capstone/capstone.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "kinject.h"
#include "mutate.h"
#include "entrymap.h"
#include "oracle.h"
#include "quirks.h"

static const char *const class_names[MUT_NCLASSES] = {
	[MUT_SWAPGS] = "swapgs",
	[MUT_CR3] = "cr3",
	[MUT_ESPFIX] = "espfix",
	[MUT_PREEMPT_IF] = "preempt-if",
	[MUT_RESCHED] = "resched",
	[MUT_IRQSTACK] = "irqstack",
	[MUT_PARANOID_CS] = "paranoid-cs",
	[MUT_REGS] = "regs",
	[MUT_FLAGS] = "flags",
};

static const char *const class_summaries[MUT_NCLASSES] = {
	[MUT_SWAPGS] = "drop a swapgs (NOP of the same length)",
	[MUT_CR3] = "drop a write to CR3 (NOPs)",
	[MUT_ESPFIX] = "skip the branch to the ESPFIX return (NOPs: fall through to the normal IRET)",
	[MUT_PREEMPT_IF] = "ignore the saved IF in the return-to-kernel preemption decision",
	[MUT_RESCHED] = "leave the exit-to-user loop after the work without re-checking with IRQs off",
	[MUT_IRQSTACK] = "mark the IRQ stack in use after switching RSP to it instead of before",
	[MUT_PARANOID_CS] = "paranoid entry decides the GS base from the saved CS instead of the GS base MSR",
	[MUT_REGS] = "drop one GPR save or restore of the frame (NOPs)",
	[MUT_FLAGS] = "drop the CLD of an interrupt/exception/NMI entry (NOP): DF of the interrupted code reaches C",
};

const char *mutate__class_name(enum mutant_class c)
{
	return c < MUT_NCLASSES ? class_names[c] : "?";
}

const char *mutate__class_summary(enum mutant_class c)
{
	return c < MUT_NCLASSES ? class_summaries[c] : "?";
}

const char *mutate__status_name(enum mutant_status s)
{
	switch (s) {
	case MUT_KILLED: return "KILLED";
	case MUT_SURVIVED: return "SURVIVED";
	case MUT_NOT_REACHED: return "NOT-REACHED";
	default: return "ERROR";
	}
}

/* ---- generation ---------------------------------------------------------- */

/* The recommended multi-byte NOPs, 1 to 9 bytes. */
static const uint8_t nops[9][9] = {
	{ 0x90 },
	{ 0x66, 0x90 },
	{ 0x0f, 0x1f, 0x00 },
	{ 0x0f, 0x1f, 0x40, 0x00 },
	{ 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	{ 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	{ 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
	{ 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
	{ 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

static void fill_nops(uint8_t *p, size_t len)
{
	while (len) {
		size_t n = len > 9 ? 9 : len;
		memcpy(p, nops[n - 1], n);
		p += n;
		len -= n;
	}
}

static uint64_t sym_addr(const struct symtab *t, const char *name)
{
	const struct symbol *s = t ? sym__find(t, name) : NULL;
	return s ? s->addr : 0;
}

static bool has_rip_mem(const struct insn *in)
{
	for (unsigned k = 0; k < in->nmem; k++)
		if (in->mem[k].base == X86_REG_RIP)
			return true;
	return false;
}

static bool name_taken(const struct mutant_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->m[i].name, name))
			return true;
	return false;
}

/* Adds a mutant whose patch is `len` bytes at `addr`, split into case
 * patches of at most CASE_MAX_PATCH_BYTES. */
static struct mutant *add_mutant(struct mutant_set *s, const struct symtab *t,
				 const struct code_range *code, enum mutant_class cls,
				 uint64_t addr, const uint8_t *bytes, size_t len, const char *what)
{
	struct mutant *m, *nm;
	char where[CASE_WHERE_MAX], base[MUTANT_NAME_MAX];
	const struct insn *in = analysis__at(code, addr);

	if (len > CASE_MAX_PATCH_BYTES * MUTANT_MAX_PATCHES)
		return NULL;
	nm = realloc(s->m, (s->n + 1) * sizeof(*s->m));
	if (!nm)
		return NULL;
	s->m = nm;
	m = &s->m[s->n];
	memset(m, 0, sizeof(*m));
	m->cls = cls;
	m->site = addr;
	snprintf(m->what, sizeof(m->what), "%s", what);
	if (in)
		analysis__format(t, in, m->site_desc, sizeof(m->site_desc));
	else
		sym__describe(t, addr, m->site_desc, sizeof(m->site_desc));
	sym__describe(t, addr, where, sizeof(where));
	snprintf(base, sizeof(base), "%s-%.80s", class_names[cls], where);
	snprintf(m->name, sizeof(m->name), "%s", base);
	for (unsigned k = 2; name_taken(s, m->name); k++)
		snprintf(m->name, sizeof(m->name), "%.80s-%u", base, k);
	for (size_t off = 0; off < len; off += CASE_MAX_PATCH_BYTES) {
		struct case_patch *p = &m->patches[m->npatches++];
		size_t n = len - off > CASE_MAX_PATCH_BYTES ? CASE_MAX_PATCH_BYTES : len - off;

		sym__describe(t, addr + off, p->where, sizeof(p->where));
		p->addr = addr + off;
		memcpy(p->bytes, bytes + off, n);
		p->len = n;
	}
	s->n++;
	s->per_class[cls]++;
	return m;
}

static struct mutant *add_nop_mutant(struct mutant_set *s, const struct symtab *t,
				     const struct code_range *code, enum mutant_class cls,
				     const struct insn *in, const char *what_prefix)
{
	uint8_t buf[16];
	char what[ENGINE_TEXT_MAX], text[128];

	fill_nops(buf, in->size);
	snprintf(what, sizeof(what), "%s'%s' -> %u-byte NOP", what_prefix,
		 analysis__text(in, text, sizeof(text)), in->size);
	return add_mutant(s, t, code, cls, in->addr, buf, in->size, what);
}

/* (1) every swapgs. */
static int gen_swapgs(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	for (size_t i = 0; i < c->n; i++)
		if ((c->insns[i].flags & INSN_SWAPGS) &&
		    !add_nop_mutant(s, t, c, MUT_SWAPGS, &c->insns[i], ""))
			return -1;
	return 0;
}

/* (2) every mov to CR3.  The description says which way it switches, from
 * the instructions that computed the value (and/or of an immediate mask),
 * or that it puts back a saved value. */
static int gen_cr3(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];
		const char *kind = "";

		if (!(in->flags & INSN_CR3_WRITE))
			continue;
		for (size_t k = i; k-- > 0 && i - k <= 6;) {
			const struct insn *p = &c->insns[k];
			if (p->flags & INSN_CR3_READ)
				break;
			if (!strncmp(p->mnemonic, "and", 3) && p->op_str[0] == '$') {
				kind = "kernel CR3: ";
				break;
			}
			if (!strncmp(p->mnemonic, "or", 2) && p->op_str[0] == '$') {
				kind = "user CR3: ";
				break;
			}
		}
		if (!*kind && !strstr(in->op_str, "%rax") && !strstr(in->op_str, "%rdi") &&
		    !strstr(in->op_str, "%rsp") && !strstr(in->op_str, "%rdx"))
			kind = "restore CR3: ";
		if (!add_nop_mutant(s, t, c, MUT_CR3, in, kind))
			return -1;
	}
	return 0;
}

/* (3) every conditional jump to return_via_espfix. */
static int gen_espfix(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	uint64_t espfix = sym_addr(t, "return_via_espfix");

	if (!espfix)
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];
		char what[ENGINE_TEXT_MAX], prev[128];

		if (!(in->flags & INSN_JCC) || !in->has_target || in->target != espfix)
			continue;
		snprintf(what, sizeof(what), "after '%s': ",
			 i ? analysis__text(&c->insns[i - 1], prev, sizeof(prev)) : "?");
		if (!add_nop_mutant(s, t, c, MUT_ESPFIX, in, what))
			return -1;
	}
	return 0;
}

/* (4) the test of the frame's IF between retint_kernel and its preempting
 * branch, and the conditional jump after it: (a) the jump NOPed (the check
 * is gone, the other conditions still apply), (b) the test replaced by a
 * jump straight to the preempting branch. */
static int gen_preempt_if(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	uint64_t lo = sym_addr(t, "retint_kernel"), hi = sym_addr(t, "retint_kernel_preempt");

	if (!lo || !hi || hi <= lo)
		return 0;
	for (size_t i = 0; i + 1 < c->n; i++) {
		const struct insn *in = &c->insns[i], *j = &c->insns[i + 1];
		uint8_t buf[16];
		char what[ENGINE_TEXT_MAX], text[128];
		int64_t rel;

		if (in->addr < lo || in->addr >= hi || strncmp(in->mnemonic, "test", 4) ||
		    in->nmem != 1 || in->mem[0].base != X86_REG_RSP ||
		    in->mem[0].disp != KINJECT_FRAME_RFLAGS || !(j->flags & INSN_JCC))
			continue;
		if (!add_nop_mutant(s, t, c, MUT_PREEMPT_IF, j, "saved-IF check removed: "))
			return -1;
		rel = (int64_t)(hi - (in->addr + 2));
		if (in->size >= 2 && rel >= -128 && rel <= 127) {
			buf[0] = 0xeb;
			buf[1] = (uint8_t)(int8_t)rel;
			fill_nops(buf + 2, in->size - 2);
		} else if (in->size >= 5) {
			int32_t r32 = (int32_t)(hi - (in->addr + 5));
			buf[0] = 0xe9;
			memcpy(buf + 1, &r32, 4);
			fill_nops(buf + 5, in->size - 5);
		} else {
			continue;
		}
		snprintf(what, sizeof(what), "'%s' -> jmp retint_kernel_preempt (preempt whatever "
			 "the saved IF, count and need_resched)", analysis__text(in, text, sizeof(text)));
		if (!add_mutant(s, t, c, MUT_PREEMPT_IF, in->addr, buf, in->size, what))
			return -1;
	}
	return 0;
}

/* (9) every CLD outside the SYSCALL and int $0x80 entries: those are
 * entered by an instruction whose flags the caller sets (FMASK clears DF
 * for SYSCALL; int $0x80 with DF set is not exercised), the others by
 * events that arrive whatever DF the interrupted code has. */
static int gen_flags(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];
		const struct symbol *f = sym__at(t, in->addr);

		if (strcmp(in->mnemonic, "cld") || !f || !strncmp(f->name, "entry_SYSCALL", 13) ||
		    !strncmp(f->name, "entry_INT80", 11))
			continue;
		if (!add_nop_mutant(s, t, c, MUT_FLAGS, in, "DF not cleared: "))
			return -1;
	}
	return 0;
}

/* (5) after every call to exit_to_user_work, the jump back to the loop's
 * check: NOPed, the loop is left at once (the next instruction is its
 * exit label). */
static int gen_resched(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	uint64_t work = sym_addr(t, "exit_to_user_work");

	if (!work)
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];

		if (!(in->flags & INSN_CALL) || !in->has_target || in->target != work)
			continue;
		for (size_t k = i + 1; k < c->n && k <= i + 4; k++) {
			const struct insn *j = &c->insns[k];
			if ((j->flags & INSN_JMP) && j->has_target && j->target < in->addr) {
				if (!add_nop_mutant(s, t, c, MUT_RESCHED, j,
						    "re-check after exit work skipped: "))
					return -1;
				break;
			}
		}
	}
	return 0;
}

/* (6) the in-use mark (a store to %gs:IRQ_STACK_INUSE of $1) moved after
 * the RSP load from %gs:IRQ_STACK_TOP that follows it: the instruction
 * bytes are rotated, same total length.  Refused if a moved instruction is
 * RIP-relative or a branch. */
static int gen_irqstack(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *mk = &c->insns[i];
		uint8_t buf[CASE_MAX_PATCH_BYTES * MUTANT_MAX_PATCHES];
		char what[ENGINE_TEXT_MAX], text[128];
		size_t r = 0, len = 0;

		if (strncmp(mk->mnemonic, "mov", 3) || mk->nmem != 1 || !mk->mem[0].write ||
		    mk->mem[0].segment != X86_REG_GS ||
		    mk->mem[0].disp != KINJECT_PCPU_IRQ_STACK_INUSE || strncmp(mk->op_str, "$1,", 3))
			continue;
		for (size_t k = i + 1; k < c->n && k <= i + 4; k++) {
			const struct insn *j = &c->insns[k];
			if (has_rip_mem(j) || (j->flags & (INSN_JMP | INSN_JCC | INSN_CALL | INSN_RET)))
				break;
			if ((j->flags & INSN_LOADS_RSP) && j->nmem == 1 &&
			    j->mem[0].segment == X86_REG_GS &&
			    j->mem[0].disp == KINJECT_PCPU_IRQ_STACK_TOP) {
				r = k;
				break;
			}
		}
		if (!r || has_rip_mem(mk))
			continue;
		for (size_t k = i + 1; k <= r; k++) {
			memcpy(buf + len, c->insns[k].bytes, c->insns[k].size);
			len += c->insns[k].size;
		}
		memcpy(buf + len, mk->bytes, mk->size);
		struct mutant *m;
		snprintf(what, sizeof(what), "'%s' moved after the RSP switch to the IRQ stack",
			 analysis__text(mk, text, sizeof(text)));
		m = add_mutant(s, t, c, MUT_IRQSTACK, mk->addr, buf, len + mk->size, what);
		if (!m)
			return -1;
		m->target_stop = mk->addr + len;   /* the mark's new place: on the stack, unmarked */
	}
	return 0;
}

/* (7) In paranoid_entry, the span from the load of the MSR number before
 * `rdmsr` to the `wrmsr` that installs this CPU's GS base, replaced (same
 * length) by the trust-the-saved-CS logic of old kernels:
 *     movq   $kinject_percpu, %r12       assume the kernel GS base (what exit restores)
 *     testb  $3, 8+CS(%rsp)              the saved CS (frame above the return address)
 *     jz     1f
 *     swapgs                             "from user"
 * 1:  NOPs
 * Needs kinject_percpu to be a sign-extended 32-bit address. */
static int gen_paranoid_cs(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	uint64_t lo = sym_addr(t, "paranoid_entry"), hi = sym_addr(t, "paranoid_entry_after_gs");
	uint64_t percpu = sym_addr(t, "kinject_percpu");

	if (!lo || !hi || !percpu || (uint64_t)(int64_t)(int32_t)percpu != percpu)
		return 0;
	for (size_t i = 1; i < c->n; i++) {
		const struct insn *rd = &c->insns[i], *first = &c->insns[i - 1];
		size_t w = 0;

		if (rd->addr < lo || rd->addr >= hi || !(rd->flags & INSN_RDMSR) ||
		    strncmp(first->mnemonic, "mov", 3) || !strstr(first->op_str, "%ecx"))
			continue;
		for (size_t k = i + 1; k < c->n && k <= i + 12; k++)
			if (c->insns[k].flags & INSN_WRMSR) {
				w = k;
				break;
			}
		if (!w)
			continue;
		uint8_t buf[CASE_MAX_PATCH_BYTES * MUTANT_MAX_PATCHES];
		uint64_t end = c->insns[w].addr + c->insns[w].size;
		size_t len = end - first->addr, p = 0;
		int32_t imm = (int32_t)percpu, disp = 8 + KINJECT_FRAME_CS;

		if (len < 20 || len > sizeof(buf))
			continue;
		buf[p++] = 0x49; buf[p++] = 0xc7; buf[p++] = 0xc4;           /* movq $imm32, %r12 */
		memcpy(buf + p, &imm, 4); p += 4;
		buf[p++] = 0xf6; buf[p++] = 0x84; buf[p++] = 0x24;           /* testb $3, disp32(%rsp) */
		memcpy(buf + p, &disp, 4); p += 4;
		buf[p++] = 0x03;
		buf[p++] = 0x74; buf[p++] = 0x03;                            /* jz +3 */
		buf[p++] = 0x0f; buf[p++] = 0x01; buf[p++] = 0xf8;           /* swapgs */
		fill_nops(buf + p, len - p);

		/* Check the encoding with the decoder before anyone runs it. */
		struct code_range chk;
		if (analysis__decode(buf, len, first->addr, &chk))
			return -1;
		bool ok = !chk.nbad && chk.n >= 4 && !strncmp(chk.insns[1].mnemonic, "test", 4) &&
			  (chk.insns[3].flags & INSN_SWAPGS) && chk.insns[2].has_target &&
			  chk.insns[2].target == chk.insns[4 < chk.n ? 4 : 3].addr;
		analysis__free(&chk);
		if (!ok)
			return vmm__fail("mutate: the paranoid-cs replacement did not decode as written");
		if (!add_mutant(s, t, c, MUT_PARANOID_CS, first->addr, buf, len,
				"GS-base MSR read/write -> R12 = kernel GS base; swapgs only if the "
				"saved CS has RPL 3"))
			return -1;
	}
	return 0;
}

/* (8) GPR saves and restores: runs of at least 8 consecutive register
 * pushes, register pops, or loads of a register from (%rdi)-relative frame
 * slots.  Three mutants per run: its first, middle and last instruction.
 *
 * Equivalent mutants are not generated.  On a return to kernel mode (no
 * SWAPGS on the straight line after the restore run), a lost restore of a
 * callee-saved register is invisible: only ABI-conforming C code ran since
 * the save, and nothing rewrites a kernel frame's callee-saved slots.
 * There the pick moves inward to the nearest caller-saved register of the
 * run.  On the way to user mode sigreturn rewrites whole frames, so the
 * callee-saved restores stay (the signals and ss16 scenarios rewrite
 * those slots and check them after the return). */
enum reg_op { REG_NONE, REG_PUSH, REG_POP, REG_LOAD };

static enum reg_op reg_op_of(const struct insn *in)
{
	if (in->id == X86_INS_PUSH && !in->nmem && in->op_str[0] == '%')
		return REG_PUSH;
	if (in->id == X86_INS_POP && !in->nmem && in->op_str[0] == '%' &&
	    strcmp(in->op_str, "%rsp"))
		return REG_POP;
	if (in->id == X86_INS_MOV && in->nmem == 1 && in->mem[0].read &&
	    in->mem[0].base == X86_REG_RDI && !in->mem[0].segment &&
	    strrchr(in->op_str, '%') > strchr(in->op_str, ')'))
		return REG_LOAD;
	return REG_NONE;
}

/* The pop at index p of the run [lo, hi) made to pop into another register
 * of the run with an encoding of the same length: one popped later (its
 * own pop overwrites the value again: only p's register is not restored),
 * else one popped earlier (then that one is clobbered too). */
static int add_balanced_pop(struct mutant_set *s, const struct symtab *t,
			    const struct code_range *c, size_t lo, size_t hi, size_t p)
{
	const struct insn *in = &c->insns[p];
	char what[ENGINE_TEXT_MAX], a[64], b[64];
	size_t order[64], n = 0;

	for (size_t k = p + 1; k < hi && n < 64; k++)
		order[n++] = k;
	for (size_t k = p; k-- > lo && n < 64;)
		order[n++] = k;
	for (size_t q = 0; q < n; q++) {
		const struct insn *o = &c->insns[order[q]];
		if (o->size != in->size || !memcmp(o->bytes, in->bytes, in->size))
			continue;
		snprintf(what, sizeof(what), "restore (pop) lost: '%s' -> '%s' (stack kept balanced)",
			 analysis__text(in, a, sizeof(a)), analysis__text(o, b, sizeof(b)));
		struct mutant *m = add_mutant(s, t, c, MUT_REGS, in->addr, o->bytes, o->size, what);
		char where[CASE_WHERE_MAX];
		if (!m)
			return -1;
		sym__describe(t, in->addr, where, sizeof(where));
		snprintf(m->name, sizeof(m->name), "regs-lost-%.80s", where);
		return 0;
	}
	return 0;
}

static bool callee_saved(unsigned reg)
{
	switch (reg) {
	case X86_REG_RBX: case X86_REG_RBP: case X86_REG_R12: case X86_REG_R13:
	case X86_REG_R14: case X86_REG_R15:
		return true;
	default:
		return false;
	}
}

/* The GPR a pop or frame load writes (not RSP). */
static unsigned restored_reg(const struct insn *in)
{
	for (unsigned k = 0; k < in->nregs_write; k++)
		if (in->regs_write[k] != X86_REG_RSP)
			return in->regs_write[k];
	return X86_REG_INVALID;
}

/* Does the straight line from insns[j] reach a SWAPGS (a return to user
 * mode) before a jump, call, return or IRET leaves it? */
static bool leads_to_user(const struct code_range *c, size_t j)
{
	for (size_t k = j; k < c->n && k < j + 48; k++) {
		const struct insn *in = &c->insns[k];
		if (in->flags & INSN_SWAPGS)
			return true;
		if ((in->flags & (INSN_IRET | INSN_SYSRET)) || in->id == X86_INS_JMP ||
		    in->id == X86_INS_CALL || in->id == X86_INS_RET)
			return false;
	}
	return false;
}

/* Pick p of the restore run [lo, hi), moved inward (towards the middle)
 * past callee-saved registers; p itself if the run has no other. */
static size_t killable_pick(const struct code_range *c, size_t lo, size_t hi, size_t p)
{
	size_t mid = lo + (hi - lo) / 2;

	for (size_t d = 0; d < hi - lo; d++) {
		size_t q = p <= mid ? p + d : p - d;
		if (q >= lo && q < hi && !callee_saved(restored_reg(&c->insns[q])))
			return q;
	}
	return p;
}

static int gen_regs(struct mutant_set *s, const struct code_range *c, const struct symtab *t)
{
	static const char *const op_names[] = { "", "save (push)", "restore (pop)",
						"restore (load from the frame)" };
	size_t i = 0;

	while (i < c->n) {
		enum reg_op op = reg_op_of(&c->insns[i]);
		size_t j = i + 1;

		if (op == REG_NONE) {
			i++;
			continue;
		}
		while (j < c->n && reg_op_of(&c->insns[j]) == op)
			j++;
		if (j - i >= 8) {
			size_t pick[3] = { i, i + (j - i) / 2, j - 1 };
			if (op != REG_PUSH && !leads_to_user(c, j))
				for (unsigned k = 0; k < 3; k++)
					pick[k] = killable_pick(c, i, j, pick[k]);
			for (unsigned k = 0; k < 3; k++) {
				char what[64];
				snprintf(what, sizeof(what), "%s dropped: ", op_names[op]);
				if (!add_nop_mutant(s, t, c, MUT_REGS, &c->insns[pick[k]], what))
					return -1;
			}
			/* A NOPed pop also shifts the stack; the balanced form
			 * keeps the frame walk intact and loses only the value. */
			for (unsigned k = 0; op == REG_POP && k < 3; k++)
				if (add_balanced_pop(s, t, c, i, j, pick[k]))
					return -1;
		}
		i = j;
	}
	return 0;
}

int mutate__generate(const struct code_range *code, const struct symtab *t, struct mutant_set *out)
{
	int (*const gens[MUT_NCLASSES])(struct mutant_set *, const struct code_range *,
					const struct symtab *) = {
		gen_swapgs, gen_cr3, gen_espfix, gen_preempt_if, gen_resched, gen_irqstack,
		gen_paranoid_cs, gen_regs, gen_flags,
	};

	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k < MUT_NCLASSES; k++)
		if (gens[k](out, code, t)) {
			mutate__free(out);
			return vmm__error()[0] ? -1 : vmm__fail("mutate: out of memory");
		}
	return 0;
}

int mutate__generate_guest(const char *elf, const char *variant, struct mutant_set *out)
{
	struct guest_opts o = { .elf = elf, .variant = variant, .scenario = "kthreads" };
	struct guest g;
	struct verdict v;
	struct entrymap m;
	int rc;

	memset(&g, 0, sizeof(g));
	if (guest__boot(&g, &o))
		return -1;
	if (!guest__run_to_ready(&g, &v, KINJECT_BOOT_MAX_EXITS)) {
		guest__destroy(&g);
		return vmm__fail("mutate: the guest did not reach READY: %s: %s", v.what, v.detail);
	}
	if (entrymap__build(&g, &m)) {
		guest__destroy(&g);
		return -1;
	}
	rc = mutate__generate(&m.code, &g.img.symtab, out);
	entrymap__free(&m);
	guest__destroy(&g);
	return rc;
}

void mutate__free(struct mutant_set *s)
{
	free(s->m);
	memset(s, 0, sizeof(*s));
}

/* ---- the cases ------------------------------------------------------------ */

/* Built-in drivers: one injection each, early in the scenario (a mutant
 * that crashes the guest later is still judged: the crash comes after the
 * injection).  %K is replaced by the address of kthread_loop (a present
 * kernel address: the #PF there is spurious). */
struct driver {
	const char *name, *scenario, *step;
	const char *mode;                       /* "trace", or NULL: the default */
	const char *step2;                      /* a nested second step, or NULL */
};

static const struct driver drivers[] = {
	{ "k-early-nm", "kthreads", "stop at variant_switch_to hit 1 ; inject exception nm", NULL, NULL },
	{ "k-irq", "kthreads", "stop at hc_raise_irq hit 3 when cpl=0 if=1 ; inject irq 0xff", NULL, NULL },
	{ "k-resched", "kthreads", "stop at hc_raise_irq hit 7 when cpl=0 if=1 ; inject irq 0xfd", NULL, NULL },
	{ "k-resched-irqs-off", "kthreads",
	  "stop at hc_raise_irq hit 1 when cpl=0 if=0 ; inject irq 0xfd force", NULL, NULL },
	{ "k-nmi", "kthreads", "stop at hc_raise_irq hit 2 when cpl=0 if=1 ; inject nmi", NULL, NULL },
	{ "k-pf", "kthreads", "stop at kthread_loop hit 3 when cpl=0 ; inject exception pf error 0x0 cr2 %K", NULL, NULL },
	{ "k-db", "kthreads", "stop at kthread_loop hit 3 when cpl=0 ; inject exception db dr6 0x4000", NULL, NULL },
	{ "p-resched", "preempt", "stop at hc_raise_irq hit 5 when cpl=0 if=1 ; inject irq 0xfd", NULL, NULL },
	{ "u-nmi-iret", "user-spin", "stop at irq_return_iret hit 1 when cpl=0 ; inject nmi", NULL, NULL },
	{ "u-db-iret", "user-spin", "stop at irq_return_iret hit 1 when cpl=0 ; inject exception db dr6 0x4000", NULL, NULL },
	{ "u-pf-iret", "user-spin",
	  "stop at irq_return_iret hit 3 when cpl=0 ; inject exception pf error 0x0 cr2 0x401000", NULL, NULL },
	{ "sig-nmi-iret", "signals", "stop at irq_return_iret hit 1 when cpl=0 ; inject nmi", NULL, NULL },
	{ "ss16-nmi-iret", "ss16", "stop at irq_return_iret hit 1 when cpl=0 ; inject nmi", NULL, NULL },
	{ "sys-nmi-iret", "syscalls", "stop at irq_return_iret hit 1 when cpl=0 ; inject nmi", NULL, NULL },
	/* Ring 3 (the VMM stops there by INT3 where hardware breakpoints do
	 * not fire): an NMI from user mode, and returns to the interrupted
	 * user context judged by cr3/transparency at the resume. */
	{ "u-irq", "user-spin", "stop at user:user_spin_loop+0x43 hit 5 when cpl=3 ; inject irq 0xff", NULL, NULL },
	{ "u-nmi", "user-spin", "stop at user:user_spin_loop+0x43 hit 5 when cpl=3 ; inject nmi", NULL, NULL },
	/* ss16's compat-mode spin: the return goes through ESPFIX.  The
	 * reschedule IPI runs enough C code to clobber the scratch GPRs the
	 * espfix return must reload; the traced IRQ lets the espfix oracle
	 * judge the IRET itself (hosts whose IRET hides the leak). */
	{ "ss16-irq", "ss16", "stop at user:ss16_loop hit 3 when cpl=3 ss16=1 ; inject irq 0xfd", NULL, NULL },
	{ "ss16-nmi", "ss16", "stop at user:ss16_loop hit 3 when cpl=3 ss16=1 ; inject nmi", NULL, NULL },
	{ "ss16-irq-trace", "ss16", "stop at user:ss16_loop hit 3 when cpl=3 ss16=1 ; inject irq 0xff",
	  "trace", NULL },
	/* A signal from ring 3 makes the exit path call exit_to_user_work();
	 * a second one arrives in its IRQs-on window, after its sigpending
	 * test: only the variant's re-test with IRQs off sees it (traced, so
	 * the return to the first signal's handler is judged by exitwork). */
	{ "u-sig-window", "user-spin", "stop at user:user_spin_loop+0x43 hit 5 when cpl=3 ; inject irq 0xfc",
	  "trace", "stop at exit_work_window hit 1 when if=1 ; inject irq 0xfc" },
	/* The SYSCALL path (where the host mis-delivers SYSCALL, the VMM runs
	 * it: vmm/sysemu.c).  Ring 3 right after a SYSRET: cr3 and
	 * transparency at the stop and the resume.  A signal posted inside a
	 * system call (its C code runs with IRQs on) makes the SYSCALL exit
	 * call exit_to_user_work(); the second comes in its window, as in
	 * u-sig-window.  (Hit 2: the first SYSCALL's getpid; hit 1 is the
	 * int $0x80 sigaction before it.  Not a reschedule IPI: the return
	 * from it to the preemptible system call switches at once.) */
	/* DF=1 in ring 3 (signals' DF step, right before its UD2): an IRQ,
	 * a (spurious) page fault and an NMI arrive with it; the entry must clear it
	 * before the C handler (flags). */
	{ "sig-df-irq", "signals", "stop at user:user_signals_df_insn hit 1 when cpl=3 ; inject irq 0xff",
	  NULL, NULL },
	{ "sig-df-pf", "signals",          /* a spurious #PF: a present user page, no signal */
	  "stop at user:user_signals_df_insn hit 1 when cpl=3 ; inject exception pf error 0x4 cr2 0x401000",
	  NULL, NULL },
	{ "sig-df-nmi", "signals", "stop at user:user_signals_df_insn hit 1 when cpl=3 ; inject nmi",
	  NULL, NULL },
	/* ... and in the IRQ entry's window before its CLD (DF still the
	 * user's, at CPL 0): an NMI and a #DB from kernel mode. */
	{ "sig-df-irq-nmi", "signals", "stop at user:user_signals_df_insn hit 1 when cpl=3 ; inject irq 0xff",
	  NULL, "stop at asm_common_interrupt hit 1 when cpl=0 ; inject nmi" },
	{ "sig-df-irq-db", "signals", "stop at user:user_signals_df_insn hit 1 when cpl=3 ; inject irq 0xff",
	  NULL, "stop at asm_common_interrupt hit 1 when cpl=0 ; inject exception db dr6 0x4000" },
	{ "sys-irq-ret", "syscalls", "stop at user:user_syscalls_ret1 hit 2 when cpl=3 ; inject irq 0xff",
	  NULL, NULL },
	{ "sys-sig-window", "syscalls", "stop at task_current hit 2 when cpl=0 if=1 ; inject irq 0xfc",
	  "trace", "stop at exit_work_window hit 1 when if=1 ; inject irq 0xfc" },
};
#define NDRIVERS (sizeof(drivers) / sizeof(drivers[0]))

size_t mutate__ndrivers(void) { return NDRIVERS; }
const char *mutate__driver_name(size_t i) { return i < NDRIVERS ? drivers[i].name : NULL; }

/* The drivers to try first, per class (names; the others follow). */
#define CLASS_FIRST_MAX 8
static const char *const class_first[MUT_NCLASSES][CLASS_FIRST_MAX] = {
	[MUT_SWAPGS] = { "u-nmi-iret", "u-pf-iret", "sig-nmi-iret", "ss16-nmi-iret", "u-nmi" },
	[MUT_CR3] = { "u-irq", "u-nmi-iret", "u-db-iret", "u-pf-iret", "sig-nmi-iret", "u-nmi",
		      "ss16-irq", "sys-irq-ret" },
	[MUT_ESPFIX] = { "ss16-irq-trace", "ss16-irq", "ss16-nmi-iret" },
	[MUT_PREEMPT_IF] = { "k-resched-irqs-off", "k-resched" },
	[MUT_RESCHED] = { "u-sig-window", "sys-sig-window", "u-nmi-iret", "sig-nmi-iret", "p-resched" },
	[MUT_IRQSTACK] = { "k-irq" },
	[MUT_PARANOID_CS] = { "u-nmi-iret", "u-db-iret", "k-nmi", "k-db" },
	[MUT_REGS] = { "k-early-nm", "k-irq", "k-nmi", "k-db", "u-nmi-iret", "u-pf-iret", "u-nmi",
		       "ss16-irq" },
	[MUT_FLAGS] = { "sig-df-irq", "sig-df-pf", "sig-df-nmi", "sig-df-irq-nmi", "sig-df-irq-db" },
};

#define MAX_SCENARIOS 8
struct sess_cache {
	struct session *s[MAX_SCENARIOS];
	unsigned next;
};

struct mutate_ctx {
	struct mutate_opts o;
	char variant[CASE_VARIANT_MAX];
	char elf[4096];
	uint64_t kloop;                      /* kthread_loop, for k-pf */
	struct kcase *regress;               /* regression cases (no patches, expect pass) */
	size_t nregress;
};

static struct session *session_for(struct mutate_ctx *x, struct sess_cache *sc,
				   const struct kcase *c)
{
	/* Judged as the sweep judges: cases end at a converged resume. */
	struct engine_opts eo = { .elf = x->elf, .converge = true };

	for (unsigned i = 0; i < MAX_SCENARIOS; i++)
		if (sc->s[i] && engine__matches(sc->s[i], c))
			return sc->s[i];
	unsigned slot = sc->next;
	sc->next = (sc->next + 1) % MAX_SCENARIOS;
	engine__close(sc->s[slot]);
	sc->s[slot] = engine__open(&eo, c);
	return sc->s[slot];
}

static void cache_close(struct sess_cache *sc)
{
	for (unsigned i = 0; i < MAX_SCENARIOS; i++)
		engine__close(sc->s[i]);
	memset(sc, 0, sizeof(*sc));
}

static bool regress_usable(const struct kcase *c, const char *variant)
{
	return !c->npatches && c->expect == CASE_EXPECT_PASS && !strcmp(c->variant, variant);
}

static int load_regressions(struct mutate_ctx *x)
{
	struct dirent **ents;
	int n;

	if (!x->o.cases_dir)
		return 0;
	n = scandir(x->o.cases_dir, &ents, NULL, alphasort);
	if (n < 0)
		return vmm__fail("mutate: %s: %s", x->o.cases_dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		size_t l = strlen(ents[i]->d_name);
		char path[4096];
		struct kcase c;

		if (l > 5 && !strcmp(ents[i]->d_name + l - 5, ".case")) {
			snprintf(path, sizeof(path), "%s/%s", x->o.cases_dir, ents[i]->d_name);
			if (case__parse_file(path, &c) == 0 && regress_usable(&c, x->variant)) {
				struct kcase *nr = realloc(x->regress, (x->nregress + 1) * sizeof(*nr));
				if (nr) {
					x->regress = nr;
					x->regress[x->nregress++] = c;
				}
			}
		}
		free(ents[i]);
	}
	free(ents);
	return 0;
}

struct mutate_ctx *mutate__open(const struct mutate_opts *o)
{
	struct mutate_ctx *x = calloc(1, sizeof(*x));
	struct elf_image img;

	if (!x) {
		vmm__fail("mutate: out of memory");
		return NULL;
	}
	x->o = *o;
	snprintf(x->variant, sizeof(x->variant), "%s", o->variant ? o->variant : "linux64");
	if (o->elf)
		snprintf(x->elf, sizeof(x->elf), "%s", o->elf);
	else
		kinject__default_guest(x->variant, x->elf, sizeof(x->elf));
	if (elf__open(x->elf, &img, NULL)) {
		free(x);
		return NULL;
	}
	x->kloop = sym_addr(&img.symtab, "kthread_loop");
	elf__free(&img);
	if (load_regressions(x)) {
		mutate__close(x);
		return NULL;
	}
	return x;
}

void mutate__close(struct mutate_ctx *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->nregress; i++)
		case__free(&x->regress[i]);
	free(x->regress);
	free(x);
}

/* Case text: header, the mutant's patches, the steps.  `extra` is one
 * more step line or NULL. */
static int build_case(struct mutate_ctx *x, struct kcase *c, const char *name, const char *title,
		      const char *mode, const char *scenario, const char *const *steps,
		      size_t nsteps, const struct mutant *m, const char *extra)
{
	char text[8192], hex[CASE_MAX_PATCH_BYTES * 2 + 1];
	size_t p = 0;

	p += snprintf(text + p, sizeof(text) - p, "kinject-case %d\ntitle %s\nvariant %s\nscenario %s\n",
		      CASE_VERSION, title, x->variant, scenario);
	if (mode)
		p += snprintf(text + p, sizeof(text) - p, "mode %s\n", mode);
	for (size_t i = 0; m && i < m->npatches && p < sizeof(text); i++) {
		for (size_t k = 0; k < m->patches[i].len; k++)
			snprintf(hex + 2 * k, 3, "%02x", m->patches[i].bytes[k]);
		p += snprintf(text + p, sizeof(text) - p, "patch %s=%s\n", m->patches[i].where, hex);
	}
	for (size_t i = 0; i < nsteps && p < sizeof(text); i++) {
		const char *k = strstr(steps[i], "%K");
		if (k)
			p += snprintf(text + p, sizeof(text) - p, "step %.*s0x%llx%s\n",
				      (int)(k - steps[i]), steps[i], (unsigned long long)x->kloop, k + 2);
		else
			p += snprintf(text + p, sizeof(text) - p, "step %s\n", steps[i]);
	}
	if (extra && p < sizeof(text))
		p += snprintf(text + p, sizeof(text) - p, "step %s\n", extra);
	if (p >= sizeof(text))
		return vmm__fail("%s: case text too long", name);
	return case__parse_string(text, name, c);
}

/* One case of the plan: a driver, the site-targeted case, or a regression. */
struct plan_item {
	const char *name;
	const char *mode;                       /* NULL: the default */
	const char *scenario;
	const char *steps[CASE_MAX_STEPS];
	size_t nsteps;
};

static void step_strings(const struct kcase *c, char buf[][256], const char **out)
{
	for (size_t i = 0; i < c->nsteps; i++) {
		case__step_str(&c->steps[i], buf[i], 256);
		out[i] = buf[i];
	}
}

static void driver_item(const struct driver *d, struct plan_item *it)
{
	memset(it, 0, sizeof(*it));
	it->name = d->name;
	it->mode = d->mode;
	it->scenario = d->scenario;
	it->steps[0] = d->step;
	it->nsteps = 1;
	if (d->step2)
		it->steps[it->nsteps++] = d->step2;
}

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Plan: site-targeted first, the class's drivers, the other drivers, the
 * regression cases.  Items of regression cases point at `rsteps`. */
static size_t make_plan(struct mutate_ctx *x, const struct mutant *m, struct plan_item *plan,
			size_t max, char (*tstep)[256], char (*rsteps)[CASE_MAX_STEPS][256])
{
	bool used[NDRIVERS] = { false };
	size_t n = 0;

	if (m && m->target_stop && m->cls == MUT_IRQSTACK && n < max) {
		snprintf(*tstep, 256, "stop at 0x%llx hit 1 when cpl=0 irq_stack=1 ; inject irq 0xff force",
			 (unsigned long long)m->target_stop);
		memset(&plan[n], 0, sizeof(plan[n]));
		plan[n].name = "site";
		plan[n].scenario = "kthreads";
		plan[n].steps[0] = *tstep;
		plan[n].nsteps = 1;
		n++;
	}
	for (unsigned k = 0; m && k < CLASS_FIRST_MAX && class_first[m->cls][k]; k++)
		for (size_t d = 0; d < NDRIVERS; d++)
			if (!used[d] && !strcmp(drivers[d].name, class_first[m->cls][k]) && n < max) {
				used[d] = true;
				driver_item(&drivers[d], &plan[n++]);
			}
	for (size_t d = 0; d < NDRIVERS && n < max; d++)
		if (!used[d])
			driver_item(&drivers[d], &plan[n++]);
	for (size_t r = 0; r < x->nregress && n < max; r++) {
		const struct kcase *c = &x->regress[r];
		const char *base = strrchr(c->name, '/');
		memset(&plan[n], 0, sizeof(plan[n]));
		plan[n].name = base ? base + 1 : c->name;
		plan[n].mode = c->mode == CASE_MODE_TRACE ? "trace" :
			       c->mode == CASE_MODE_FAST ? "fast" : NULL;
		plan[n].scenario = c->scenario;
		step_strings(c, rsteps[r], plan[n].steps);
		plan[n].nsteps = c->nsteps;
		n++;
	}
	return n;
}

#define PLAN_MAX (NDRIVERS + 64)

int mutate__control(struct mutate_ctx *x, unsigned *ran, unsigned *skipped, char *why, size_t len)
{
	struct plan_item plan[PLAN_MAX];
	char tstep[256], (*rsteps)[CASE_MAX_STEPS][256];
	struct sess_cache sc = { 0 };
	struct case_result *r = calloc(1, sizeof(*r));
	struct kcase *c = calloc(1, sizeof(*c));
	int rc = 0;
	size_t n;

	rsteps = calloc(x->nregress + 1, sizeof(*rsteps));
	if (!r || !c || !rsteps) {
		free(r); free(c); free(rsteps);
		return vmm__fail("mutate: out of memory");
	}
	*ran = *skipped = 0;
	n = make_plan(x, NULL, plan, x->nregress + NDRIVERS > 64 ? 64 : PLAN_MAX, &tstep, rsteps);
	for (size_t i = 0; i < n && !rc; i++) {
		char name[128];
		struct session *s;

		snprintf(name, sizeof(name), "control/%s", plan[i].name);
		if (build_case(x, c, name, "control", plan[i].mode, plan[i].scenario, plan[i].steps,
			       plan[i].nsteps, NULL, NULL)) {
			snprintf(why, len, "%s", vmm__error());
			rc = -1;
			break;
		}
		s = session_for(x, &sc, c);
		memset(r, 0, sizeof(*r));
		if (!s) {
			snprintf(why, len, "%s: %s", name, vmm__error());
			rc = -1;
			break;
		}
		engine__run_case(s, c, r);
		(*ran)++;
		if (x->o.log)
			fprintf(x->o.log, "control  %-26s %6llu ms  %s%s%s\n", plan[i].name,
				(unsigned long long)(r->usec / 1000),
				verdict__name(r->verdict), r->verdict == VERDICT_PASS ? "" : ": ",
				r->verdict == VERDICT_PASS ? "" : r->reason);
		if (r->verdict == VERDICT_SKIP) {
			(*skipped)++;
		} else if (r->nfindings || r->verdict != VERDICT_PASS) {
			if (r->nfindings)
				snprintf(why, len, "%s: %s fired: %s: expected %s, got %s", name,
					 r->findings[0].oracle, r->findings[0].where,
					 r->findings[0].expected, r->findings[0].actual);
			else
				snprintf(why, len, "%s: %s: %s", name, verdict__name(r->verdict), r->reason);
			rc = 1;
		}
		case__free(c);
	}
	cache_close(&sc);
	free(r);
	free(c);
	free(rsteps);
	return rc;
}

static int mkdir_p(const char *dir)
{
	char buf[512];
	size_t l = strlen(dir);

	if (l >= sizeof(buf))
		return -1;
	memcpy(buf, dir, l + 1);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0777) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static void write_killer(struct mutate_ctx *x, const struct mutant *m, struct kcase *c,
			 struct mutant_result *res)
{
	char path[512];
	FILE *f;

	if (!x->o.outdir)
		return;
	if (mkdir_p(x->o.outdir)) {
		snprintf(res->reason, sizeof(res->reason), "cannot create %s: %s", x->o.outdir,
			 strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/%s.case", x->o.outdir, m->name);
	c->expect = CASE_EXPECT_FAIL;
	snprintf(c->oracle, sizeof(c->oracle), "%s", res->oracle);
	f = fopen(path, "w");
	if (!f) {
		snprintf(res->reason, sizeof(res->reason), "%.200s: %s", path, strerror(errno));
		return;
	}
	if (case__write(f, c) == 0)
		snprintf(res->case_path, sizeof(res->case_path), "%s", path);
	else
		snprintf(res->reason, sizeof(res->reason), "%.200s: %.150s", path, vmm__error());
	fclose(f);
}

static const char *site_symbol(const struct mutant *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s", m->site_desc);
	char *e = strpbrk(buf, "+:");
	if (e)
		*e = '\0';
	return buf;
}

/* Why a mutant was not killed, from what is known about this host and
 * about the site's path. */
static void explain(const struct mutant *m, bool reached, char *buf, size_t len)
{
	char sym[ENGINE_TEXT_MAX];

	site_symbol(m, sym, sizeof(sym));
	if (!strncmp(sym, "entry_SYSCALL_compat", 20)) {
		snprintf(buf, len, "%sonly through a compat-mode SYSCALL, which raises #UD on the "
			 "Intel vendor the guest sees (AMD CPUs run it)", reached ? "" : "not reached: ");
	} else if ((!strncmp(sym, "entry_SYSCALL", 13) || !strncmp(sym, "syscall_", 8) ||
		    !strcmp(sym, "entry_SYSRET_64")) && !quirks__works(QUIRK_SYSCALL)) {
		snprintf(buf, len, "%sonly on the SYSCALL/SYSRET path, which this host cannot run "
			 "(ring-3 SYSCALL arrives at CPL 3)", reached ? "" : "not reached: ");
	} else if (!strncmp(sym, "entry_INT80", 11) && !quirks__works(QUIRK_INT80)) {
		snprintf(buf, len, "%sonly through the int $0x80 gate, which this host does not deliver "
			 "from ring 3 (the guest runs int $0x80 from its #UD handler)",
			 reached ? "" : "not reached: ");
	} else if (m->cls == MUT_ESPFIX && strstr(m->what, "$4")) {
		snprintf(buf, len, "%sonly for an LDT stack segment: this host cannot IRET to one, "
			 "so ss16 runs on the GDT's 16-bit SS (ldt=0)", reached ? "" : "not reached: ");
	} else if (!reached) {
		snprintf(buf, len, "not reached by any case on this host");
	} else if (m->cls == MUT_REGS && (strstr(m->what, "%r12'") || strstr(m->what, "%r13'") ||
					  strstr(m->what, "%r14'") || strstr(m->what, "%r15'") ||
					  strstr(m->what, "%rbx'") || strstr(m->what, "%rbp'"))) {
		snprintf(buf, len, "equivalent where only C code runs between save and restore: a "
			 "callee-saved register keeps its value anyway");
	} else {
		snprintf(buf, len, "reached, but no oracle fired in any case");
	}
}

void mutate__run(struct mutate_ctx *x, const struct mutant *m, struct mutant_result *res)
{
	struct plan_item plan[PLAN_MAX];
	char tstep[256], (*rsteps)[CASE_MAX_STEPS][256];
	bool ran_ok[PLAN_MAX] = { false };
	struct sess_cache sc = { 0 };
	struct case_result *r = calloc(1, sizeof(*r));
	struct kcase *c = calloc(1, sizeof(*c));
	uint64_t t0 = now_usec();
	char before_inj[ENGINE_TEXT_MAX] = "";
	size_t n;

	memset(res, 0, sizeof(*res));
	res->status = MUT_ERROR;
	rsteps = calloc(x->nregress + 1, sizeof(*rsteps));
	if (!r || !c || !rsteps) {
		snprintf(res->reason, sizeof(res->reason), "out of memory");
		goto out;
	}
	n = make_plan(x, m, plan, PLAN_MAX, &tstep, rsteps);
	for (size_t i = 0; i < n; i++) {
		char name[256], title[CASE_TITLE_MAX];
		struct session *s;

		snprintf(name, sizeof(name), "%s/%s", m->name, plan[i].name);
		snprintf(title, sizeof(title), "mutant %.60s: %.80s", m->name, plan[i].name);
		if (build_case(x, c, name, title, plan[i].mode, plan[i].scenario, plan[i].steps, plan[i].nsteps,
			       m, NULL)) {
			snprintf(res->reason, sizeof(res->reason), "%s", vmm__error());
			goto out;
		}
		s = session_for(x, &sc, c);
		memset(r, 0, sizeof(*r));
		if (!s) {
			snprintf(res->reason, sizeof(res->reason), "%s: %s", name, vmm__error());
			case__free(c);
			goto out;
		}
		engine__run_case(s, c, r);
		res->cases_run++;
		if (r->nfindings) {
			const struct finding *f = &r->findings[0];
			size_t p = 0;

			res->status = MUT_KILLED;
			res->first = *f;
			snprintf(res->oracle, sizeof(res->oracle), "%s", f->oracle);
			snprintf(res->killer, sizeof(res->killer), "%s", name);
			for (size_t k = 0; k < r->nfindings && p < sizeof(res->oracles); k++)
				if (!strstr(res->oracles, r->findings[k].oracle))
					p += snprintf(res->oracles + p, sizeof(res->oracles) - p, "%s%s",
						      p ? "," : "", r->findings[k].oracle);
			write_killer(x, m, c, res);
			case__free(c);
			goto out;
		}
		if (r->verdict == VERDICT_ERROR && !before_inj[0] &&
		    strstr(r->reason, "before any injection"))
			snprintf(before_inj, sizeof(before_inj), "%.40s: %.140s", plan[i].name, r->reason);
		ran_ok[i] = r->steps_done == c->nsteps;
		case__free(c);
	}

	/* Not killed: was the mutated code reached at all?  Each scenario by
	 * itself, then every case that ran with a stop at the site after it. */
	char site[CASE_WHERE_MAX + 64];
	bool reached = false;
	snprintf(site, sizeof(site), "stop at 0x%llx hit 1 ; inject exception nm force",
		 (unsigned long long)m->site);
	for (size_t i = 0; i < n && !reached; i++) {
		bool first_of_scenario = true;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(plan[k].scenario, plan[i].scenario))
				first_of_scenario = false;
		for (int pass = 0; pass < 2 && !reached; pass++) {
			struct session *s;
			char name[256];

			/* pass 1: built-in drivers only (the regression cases
			 * repeat their injections). */
			if ((pass == 0 && !first_of_scenario) || (pass == 1 && !ran_ok[i]) ||
			    (pass == 1 && strstr(plan[i].name, ".case")))
				continue;
			snprintf(name, sizeof(name), "%s/reach-%s", m->name, plan[i].name);
			if (build_case(x, c, name, "reach", plan[i].mode, plan[i].scenario, plan[i].steps,
				       pass ? plan[i].nsteps : 0, m, site))
				continue;
			s = session_for(x, &sc, c);
			if (s) {
				memset(r, 0, sizeof(*r));
				engine__run_case(s, c, r);
				res->cases_run++;
				reached = r->steps_done == c->nsteps;
			}
			case__free(c);
		}
	}
	explain(m, reached, res->reason, sizeof(res->reason));
	if (before_inj[0] && strlen(res->reason) + 40 < sizeof(res->reason))
		snprintf(res->reason + strlen(res->reason), sizeof(res->reason) - strlen(res->reason),
			 " (a case errored: %.300s)", before_inj);
	res->status = reached ? MUT_SURVIVED : MUT_NOT_REACHED;
out:
	cache_close(&sc);
	res->usec = now_usec() - t0;
	free(r);
	free(c);
	free(rsteps);
}

