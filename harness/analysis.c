/* SPDX-License-Identifier: MIT */
/*
 * Capstone decoding into struct insn.  Everything an oracle might ask about
 * an instruction is computed here once, as flags and small arrays, so the
 * callers never touch capstone's detail structures (whose layout changes
 * between capstone releases).
 */
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "analysis.h"

/* One handle per thread: capstone handles are not thread-safe, and opening
 * one per call would dominate the single-instruction decode of a trace. */
static _Thread_local csh cs_handle;
static _Thread_local bool cs_ready;
static _Thread_local cs_insn *cs_scratch;

static int cs__get(csh *out)
{
	if (!cs_ready) {
		cs_err err = cs_open(CS_ARCH_X86, CS_MODE_64, &cs_handle);

		if (err != CS_ERR_OK)
			return vmm__fail("capstone: cs_open: %s", cs_strerror(err));
		/* AT&T: what kernel engineers read in objdump and in entry_64.S. */
		cs_option(cs_handle, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
		cs_option(cs_handle, CS_OPT_DETAIL, CS_OPT_ON);
		cs_scratch = cs_malloc(cs_handle);
		if (!cs_scratch) {
			cs_close(&cs_handle);
			return vmm__fail("capstone: out of memory");
		}
		cs_ready = true;
	}
	*out = cs_handle;
	return 0;
}

void analysis__fini(void)
{
	if (!cs_ready)
		return;
	cs_free(cs_scratch, 1);
	cs_scratch = NULL;
	cs_close(&cs_handle);
	cs_ready = false;
}

/* ---- registers ------------------------------------------------------------- */

static const uint16_t gpr_families[][5] = {
	{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH },
	{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH },
	{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
	{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
	{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL, 0 },
	{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL, 0 },
	{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL, 0 },
	{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL, 0 },
	{ X86_REG_RIP, X86_REG_EIP, X86_REG_IP, 0, 0 },
	{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B, 0 },
	{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B, 0 },
	{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B, 0 },
	{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B, 0 },
	{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B, 0 },
	{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B, 0 },
	{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B, 0 },
	{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B, 0 },
	{ X86_REG_EFLAGS, 0, 0, 0, 0 },
};

unsigned analysis__reg64(unsigned reg)
{
	if (reg == X86_REG_INVALID)
		return reg;
	for (size_t f = 0; f < sizeof(gpr_families) / sizeof(gpr_families[0]); f++)
		for (size_t i = 0; i < 5; i++)
			if (gpr_families[f][i] == reg)
				return gpr_families[f][0];
	return reg;
}

const char *analysis__reg_name(unsigned reg)
{
	csh h;
	const char *name;

	if (reg == X86_REG_INVALID || cs__get(&h))
		return "?";
	name = cs_reg_name(h, reg);
	return name ? name : "?";
}

static bool regs__has(const uint16_t *regs, unsigned n, unsigned reg)
{
	unsigned want = analysis__reg64(reg);

	for (unsigned i = 0; i < n; i++)
		if (analysis__reg64(regs[i]) == want)
			return true;
	return false;
}

bool analysis__reads_reg(const struct insn *in, unsigned reg)
{
	return regs__has(in->regs_read, in->nregs_read, reg);
}

bool analysis__writes_reg(const struct insn *in, unsigned reg)
{
	return regs__has(in->regs_write, in->nregs_write, reg);
}

/* ---- one instruction --------------------------------------------------------- */

static bool insn__in_group(const cs_insn *ci, uint8_t group)
{
	for (uint8_t i = 0; i < ci->detail->groups_count; i++)
		if (ci->detail->groups[i] == group)
			return true;
	return false;
}

static void insn__bad(const uint8_t *buf, size_t len, uint64_t addr, struct insn *out)
{
	memset(out, 0, sizeof(*out));
	out->addr = addr;
	out->size = 1;
	out->bytes[0] = len ? buf[0] : 0;
	out->flags = INSN_BAD;
	snprintf(out->mnemonic, sizeof(out->mnemonic), "(bad)");
}

/* Opcode-level facts that capstone's groups do not give directly. */
static uint64_t insn__id_flags(unsigned id)
{
	switch (id) {
	case X86_INS_SWAPGS:   return INSN_SWAPGS;
	case X86_INS_IRET:
	case X86_INS_IRETD:
	case X86_INS_IRETQ:    return INSN_IRET;
	case X86_INS_SYSRET:   return INSN_SYSRET;
	case X86_INS_SYSEXIT:  return INSN_SYSEXIT;
	case X86_INS_CLI:      return INSN_CLI;
	case X86_INS_STI:      return INSN_STI;
	case X86_INS_POPF:
	case X86_INS_POPFD:
	case X86_INS_POPFQ:    return INSN_POPF;
	case X86_INS_PUSHF:
	case X86_INS_PUSHFD:
	case X86_INS_PUSHFQ:   return INSN_PUSHF;
	case X86_INS_CALL:     return INSN_CALL;
	case X86_INS_RET:      return INSN_RET;
	case X86_INS_JMP:      return INSN_JMP;
	case X86_INS_HLT:      return INSN_HLT;
	case X86_INS_WRMSR:    return INSN_WRMSR;
	case X86_INS_RDMSR:    return INSN_RDMSR;
	case X86_INS_WRGSBASE: return INSN_WRGSBASE;
	case X86_INS_RDGSBASE: return INSN_RDGSBASE;
	case X86_INS_WRFSBASE: return INSN_WRFSBASE;
	case X86_INS_RDFSBASE: return INSN_RDFSBASE;
	case X86_INS_SYSCALL:
	case X86_INS_SYSENTER: return INSN_SYSCALL;
	case X86_INS_INT:
	case X86_INS_INT1:
	case X86_INS_INT3:
	case X86_INS_INTO:     return INSN_INT;
	case X86_INS_UD2:
	case X86_INS_UD0:      return INSN_UD;
	case X86_INS_LJMP:
	case X86_INS_LCALL:
	case X86_INS_RETF:
	case X86_INS_RETFQ:    return INSN_FAR_XFER;
	case X86_INS_LFENCE:
	case X86_INS_MFENCE:
	case X86_INS_SFENCE:   return INSN_FENCE;
	case X86_INS_POP:      return 0;  /* pop %ss is caught by its operand */
	default:               return 0;
	}
}

static void insn__fill(csh h, const cs_insn *ci, struct insn *out)
{
	const cs_x86 *x = &ci->detail->x86;
	cs_regs rr, rw;
	uint8_t nrr = 0, nrw = 0;

	memset(out, 0, sizeof(*out));
	out->addr = ci->address;
	out->size = (uint8_t)ci->size;
	memcpy(out->bytes, ci->bytes, ci->size < sizeof(out->bytes) ? ci->size : sizeof(out->bytes));
	out->id = ci->id;
	snprintf(out->mnemonic, sizeof(out->mnemonic), "%s", ci->mnemonic);
	snprintf(out->op_str, sizeof(out->op_str), "%s", ci->op_str);
	out->flags = insn__id_flags(ci->id);

	if (insn__in_group(ci, X86_GRP_JUMP) && !(out->flags & INSN_JMP) && ci->id != X86_INS_LJMP)
		out->flags |= INSN_JCC;
	if (insn__in_group(ci, X86_GRP_PRIVILEGE))
		out->flags |= INSN_PRIVILEGED;

	for (uint8_t i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		switch (op->type) {
		case X86_OP_REG:
			if (op->reg == X86_REG_CR3)
				/* capstone marks the destination written; in AT&T the
				 * destination is also the last operand, which we trust
				 * when the access bits are missing. */
				out->flags |= (op->access & CS_AC_WRITE) || (!op->access && i == x->op_count - 1)
					      ? INSN_CR3_WRITE : INSN_CR3_READ;
			if (analysis__reg64(op->reg) == X86_REG_RSP && (op->access & CS_AC_WRITE))
				out->flags |= INSN_LOADS_RSP;
			if (op->reg == X86_REG_SS && (op->access & CS_AC_WRITE))
				out->flags |= INSN_LOADS_SS;
			if (out->flags & (INSN_CALL | INSN_JMP | INSN_JCC))
				out->flags |= INSN_INDIRECT;
			break;
		case X86_OP_MEM:
			if (out->flags & (INSN_CALL | INSN_JMP))
				out->flags |= INSN_INDIRECT;
			/* lea computes an address: no memory is touched. */
			if (ci->id == X86_INS_LEA)
				break;
			if (out->nmem < INSN_MAX_MEM) {
				struct insn_mem *m = &out->mem[out->nmem++];

				m->segment = op->mem.segment;
				m->base = op->mem.base;
				m->index = op->mem.index;
				m->scale = (uint8_t)op->mem.scale;
				m->disp = op->mem.disp;
				/* No access bits at all means capstone does not know:
				 * assume a read, the conservative side for the
				 * "what does this touch" oracles. */
				m->read = (op->access & CS_AC_READ) || !op->access;
				m->write = (op->access & CS_AC_WRITE) != 0;
				/* capstone 4.0.2 marks the memory operand of
				 * test/cmp/bt read-write; they only read it. */
				if (ci->id == X86_INS_TEST || ci->id == X86_INS_CMP || ci->id == X86_INS_BT)
					m->write = false;
				if (m->read)
					out->flags |= INSN_MEM_READ;
				if (m->write)
					out->flags |= INSN_MEM_WRITE;
			}
			if (op->mem.segment == X86_REG_GS)
				out->flags |= INSN_GS_MEM;
			if (op->mem.segment == X86_REG_FS)
				out->flags |= INSN_FS_MEM;
			break;
		case X86_OP_IMM:
			if (out->flags & (INSN_CALL | INSN_JMP | INSN_JCC)) {
				out->has_target = true;
				out->target = (uint64_t)op->imm;
			}
			break;
		default:
			break;
		}
	}
	if (ci->id == X86_INS_LEAVE)
		out->flags |= INSN_LOADS_RSP;

	if (cs_regs_access(h, ci, rr, &nrr, rw, &nrw) == CS_ERR_OK) {
		for (uint8_t i = 0; i < nrr && out->nregs_read < INSN_MAX_REGS; i++)
			out->regs_read[out->nregs_read++] = rr[i];
		for (uint8_t i = 0; i < nrw && out->nregs_write < INSN_MAX_REGS; i++)
			out->regs_write[out->nregs_write++] = rw[i];
	}
	if (analysis__writes_reg(out, X86_REG_RSP) || (out->flags & INSN_LOADS_RSP))
		out->flags |= INSN_WRITES_RSP;
}

int analysis__decode_one(const uint8_t *buf, size_t len, uint64_t addr, struct insn *out)
{
	csh h;
	const uint8_t *p = buf;
	size_t left = len;
	uint64_t a = addr;

	if (!out)
		return vmm__fail("analysis: no output instruction");
	if (!buf || !len) {
		insn__bad(buf, 0, addr, out);
		return vmm__fail("analysis: no bytes to decode at 0x%llx", (unsigned long long)addr);
	}
	if (cs__get(&h)) {
		insn__bad(buf, len, addr, out);
		return -1;
	}
	if (!cs_disasm_iter(h, &p, &left, &a, cs_scratch)) {
		insn__bad(buf, len, addr, out);
		return vmm__fail("analysis: invalid instruction at 0x%llx (byte 0x%02x)",
				 (unsigned long long)addr, buf[0]);
	}
	insn__fill(h, cs_scratch, out);
	return 0;
}

/* ---- ranges --------------------------------------------------------------- */

int analysis__decode(const uint8_t *buf, size_t len, uint64_t base, struct code_range *out)
{
	csh h;
	size_t cap, off = 0;

	if (!out)
		return vmm__fail("analysis: no output range");
	memset(out, 0, sizeof(*out));
	if (!buf || !len)
		return vmm__fail("analysis: empty code range at 0x%llx", (unsigned long long)base);
	if (base + len < base)
		return vmm__fail("analysis: code range at 0x%llx wraps around", (unsigned long long)base);
	if (cs__get(&h))
		return -1;
	/* x86 averages ~4 bytes an instruction; grow if the code is denser. */
	cap = len / 3 + 16;
	out->insns = malloc(cap * sizeof(*out->insns));
	if (!out->insns)
		return vmm__fail("analysis: out of memory for %zu instructions", cap);
	out->base = base;
	out->len = len;

	while (off < len) {
		const uint8_t *p = buf + off;
		size_t left = len - off;
		uint64_t a = base + off;
		struct insn *in;

		if (out->n == cap) {
			struct insn *bigger = realloc(out->insns, 2 * cap * sizeof(*bigger));

			if (!bigger) {
				analysis__free(out);
				return vmm__fail("analysis: out of memory for %zu instructions", 2 * cap);
			}
			out->insns = bigger;
			cap *= 2;
		}
		in = &out->insns[out->n++];
		if (cs_disasm_iter(h, &p, &left, &a, cs_scratch)) {
			insn__fill(h, cs_scratch, in);
		} else {
			/* Resynchronise one byte later: a linear sweep must cover
			 * every byte so that lookups by address never fall in a
			 * hole. */
			insn__bad(buf + off, len - off, base + off, in);
			out->nbad++;
		}
		off += in->size;
	}
	return 0;
}

void analysis__free(struct code_range *c)
{
	if (!c)
		return;
	free(c->insns);
	memset(c, 0, sizeof(*c));
}

long analysis__index(const struct code_range *c, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!c || !c->n || addr < c->base || addr - c->base >= c->len)
		return -1;
	hi = c->n;
	/* Find the last insn with insn.addr <= addr. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->insns[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return (long)lo;
}

const struct insn *analysis__containing(const struct code_range *c, uint64_t addr)
{
	long i = analysis__index(c, addr);

	if (i < 0)
		return NULL;
	if (addr - c->insns[i].addr >= c->insns[i].size)
		return NULL;
	return &c->insns[i];
}

const struct insn *analysis__at(const struct code_range *c, uint64_t addr)
{
	const struct insn *in = analysis__containing(c, addr);

	return in && in->addr == addr ? in : NULL;
}

/* ---- text -------------------------------------------------------------------- */

char *analysis__text(const struct insn *in, char *buf, size_t len)
{
	if (!buf || !len)
		return buf;
	if (!in)
		snprintf(buf, len, "(none)");
	else if (in->op_str[0])
		snprintf(buf, len, "%s %s", in->mnemonic, in->op_str);
	else
		snprintf(buf, len, "%s", in->mnemonic);
	return buf;
}

char *analysis__format(const struct symtab *t, const struct insn *in, char *buf, size_t len)
{
	char where[128], text[160];

	if (!buf || !len)
		return buf;
	if (!in) {
		snprintf(buf, len, "(none)");
		return buf;
	}
	if (t)
		sym__describe(t, in->addr, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "0x%llx", (unsigned long long)in->addr);
	snprintf(buf, len, "%s: %s", where, analysis__text(in, text, sizeof(text)));
	return buf;
}
