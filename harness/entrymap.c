/* SPDX-License-Identifier: MIT */
/*
 * The entry map (see entrymap.h and docs/map.md).  Three parts:
 *
 *   1. what the READY guest tells: IDT gates, TSS stacks, SYSCALL/SYSENTER
 *      MSRs, the per-CPU area, the entry text bytes;
 *   2. classifiers for window.h, built on a backward abstract evaluation
 *      of one register along the control-flow graph of the entry text
 *      (a tiny value domain: constant with unknown bits, "read from CR3
 *      with bits forced", per-CPU slot, "RSP at site S", MSR halves);
 *   3. contexts: one dataflow per origin (user, kernel, and "kernel mode
 *      inside a user window" for code that compares the saved RIP with an
 *      exit instruction), repeated until the merged map is stable, because
 *      a restored value ("CR3 as found", "the stack saved in RBX") is
 *      classified with the state the previous pass found at its save site.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "entrymap.h"
#include "kinject.h"

#define MSR_EFER            0xc0000080u
#define MSR_LSTAR           0xc0000082u
#define MSR_CSTAR           0xc0000083u
#define MSR_SFMASK          0xc0000084u
#define MSR_GS_BASE         0xc0000101u
#define MSR_KERNEL_GS_BASE  0xc0000102u
#define MSR_SYSENTER_ESP    0x175u
#define MSR_SYSENTER_EIP    0x176u
#define RFLAGS_IF           (1ULL << 9)
#define CR3_NOFLUSH         (1ULL << 63)
#define CR3_PCID_MASK       0xfffULL

#define MAXV         16        /* abstract values (paths) per query */
#define MAXDEPTH     400       /* instructions walked back on one path */
#define STEP_BUDGET  200000    /* per classifier call */
#define MAXPASS      6
#define MAXCTX       12

/* ---- operands, decoded once with our own capstone handle (Intel order) ---- */

struct xop {
	uint8_t type;                 /* X86_OP_* */
	uint8_t size;
	uint16_t reg;
	int64_t imm;
	uint16_t seg, base, index;
	int64_t disp;
};
struct xdet {
	uint8_t n;
	struct xop op[3];
};

/* ---- abstract values ---------------------------------------------------- */

enum av_kind {
	AV_UNK,
	AV_CONST,     /* c, with `taint` bits unknown */
	AV_CR3,       /* the CR3 read at `site`, then ones/zeros forced, taint unknown;
	               * k1/k0: what branches proved about the value read */
	AV_PCPU,      /* per-CPU slot at offset c, plus add */
	AV_RSP,       /* RSP at `site` plus add; reloaded: RSP changed stack since */
	AV_MSRLO, AV_MSRHI, AV_MSRHIUP, AV_MSR,   /* rdmsr `msr` at `site` */
};
struct aval {
	uint8_t kind;
	bool reloaded;
	uint32_t msr, site;
	uint64_t c, taint, ones, zeros, k1, k0;
	int64_t add;
};

enum ctx_kind { CTX_USER, CTX_KERNEL, CTX_WINDOW, CTX_OTHER };

struct ctxdef {
	enum ctx_kind kind;
	uint64_t window_rip;          /* CTX_WINDOW: the instruction interrupted */
	uint8_t gs, cr3;              /* CTX_KERNEL: GS and CR3 of the interrupted code */
	struct win_map map;           /* this pass */
	struct win_map prev;          /* the pass before (zeroed if none) */
};

struct emb {
	struct guest *g;
	struct entrymap *m;
	const struct code_range *c;
	struct xdet *det;
	uint32_t **preds;
	uint32_t *npreds;
	bool *internal_call;          /* direct call into the range */
	uint8_t percpu[KINJECT_PCPU_SIZE];
	bool percpu_ok;
	struct ctxdef *cur;           /* context of the running build */
	struct win_map *prev_merged;  /* merged map of the pass before, or NULL */
	unsigned steps;
	bool overflow;
	size_t setup_notes;           /* notes from reading the guest, before any pass */
	csh cs;
};

/* ---- small helpers -------------------------------------------------------- */

#define add_note(m, addr, ...) window__add_note(&(m)->notes, &(m)->nnotes, (addr), __VA_ARGS__)

static bool pti_on(const struct kinject_layout *l)
{
	uint64_t strip = ~(CR3_PCID_MASK | CR3_NOFLUSH);

	return l->user_cr3 && ((l->kernel_cr3 ^ l->user_cr3) & strip);
}

/* Stack kinds whose range (start, end] holds addr: a stack's top is its
 * own (RSP right after loading a top), its lowest byte is not (RSP there
 * means the stack is full). */
static unsigned stack_bits(const struct kinject_layout *l, uint64_t addr)
{
	unsigned bits = 0;
	uint64_t n = l->nstacks < KINJECT_LAYOUT_MAX_STACKS ? l->nstacks : KINJECT_LAYOUT_MAX_STACKS;

	for (uint64_t k = 0; k < n; k++) {
		const struct kinject_range *r = &l->stacks[k];

		if (r->kind == 0 || r->kind > KINJECT_STACK_USER)
			continue;
		if (addr > r->start && addr <= r->end)
			bits |= WIN_STACK(r->kind);
	}
	return bits;
}

/* ---- guest facts ------------------------------------------------------------ */

static int read_msr(struct guest *g, uint32_t idx, uint64_t *val)
{
	*val = 0;
	return vcpu__get_msrs(g->vm, &idx, val, 1);
}

static int decode_operands(struct emb *b)
{
	const struct code_range *c = b->c;
	cs_insn *ci;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &b->cs) != CS_ERR_OK)
		return vmm__fail("entrymap: capstone cs_open failed");
	cs_option(b->cs, CS_OPT_DETAIL, CS_OPT_ON);
	ci = cs_malloc(b->cs);
	b->det = calloc(c->n, sizeof(*b->det));
	if (!ci || !b->det) {
		if (ci)
			cs_free(ci, 1);
		return vmm__fail("entrymap: out of memory");
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];
		const uint8_t *code = in->bytes;
		size_t size = in->size;
		uint64_t addr = in->addr;

		if (in->flags & INSN_BAD)
			continue;
		if (!cs_disasm_iter(b->cs, &code, &size, &addr, ci))
			continue;
		const cs_x86 *x = &ci->detail->x86;
		struct xdet *d = &b->det[i];

		d->n = x->op_count < 3 ? x->op_count : 3;
		for (unsigned k = 0; k < d->n; k++) {
			const cs_x86_op *o = &x->operands[k];
			struct xop *p = &d->op[k];

			p->type = (uint8_t)o->type;
			p->size = o->size;
			if (o->type == X86_OP_REG) {
				p->reg = (uint16_t)o->reg;
			} else if (o->type == X86_OP_IMM) {
				p->imm = o->imm;
			} else if (o->type == X86_OP_MEM) {
				p->seg = (uint16_t)o->mem.segment;
				p->base = (uint16_t)o->mem.base;
				p->index = (uint16_t)o->mem.index;
				p->disp = o->mem.disp;
			}
		}
	}
	cs_free(ci, 1);
	return 0;
}

static int pred_add(struct emb *b, size_t to, size_t from)
{
	uint32_t *bigger;

	for (uint32_t k = 0; k < b->npreds[to]; k++)
		if (b->preds[to][k] == from)
			return 0;
	bigger = realloc(b->preds[to], (b->npreds[to] + 1) * sizeof(*bigger));
	if (!bigger)
		return vmm__fail("entrymap: out of memory");
	b->preds[to] = bigger;
	b->preds[to][b->npreds[to]++] = (uint32_t)from;
	return 0;
}

static bool ends_path(const struct insn *in)
{
	return in->flags & (INSN_IRET | INSN_SYSRET | INSN_SYSEXIT | INSN_UD | INSN_FAR_XFER | INSN_BAD);
}

static long at_index(const struct code_range *c, uint64_t addr)
{
	long i = analysis__index(c, addr);

	return i >= 0 && c->insns[i].addr == addr ? i : -1;
}

/* The rets a callee reaches (following its own internal calls as returning). */
static int callee_rets(struct emb *b, size_t entry, size_t site)
{
	const struct code_range *c = b->c;
	size_t *stack = malloc((c->n + 2) * sizeof(*stack)), sp = 0;
	bool *seen = calloc(c->n, sizeof(*seen));
	int ret = 0;

	if (!stack || !seen) {
		free(stack);
		free(seen);
		return vmm__fail("entrymap: out of memory");
	}
	stack[sp++] = entry;
	seen[entry] = true;
	while (sp && !ret) {
		size_t i = stack[--sp], next[2];
		const struct insn *in = &c->insns[i];
		int nn = 0;
		long t;

		if (ends_path(in))
			continue;
		if (in->flags & INSN_RET) {
			if (site + 1 < c->n)
				ret = pred_add(b, site + 1, i);
			continue;
		}
		if ((in->flags & (INSN_JMP | INSN_JCC)) && in->has_target && !(in->flags & INSN_INDIRECT)) {
			t = at_index(c, in->target);
			if (t >= 0)
				next[nn++] = (size_t)t;
		}
		if (!(in->flags & INSN_JMP) && i + 1 < c->n)
			next[nn++] = i + 1;
		for (int k = 0; k < nn; k++)
			if (!seen[next[k]]) {
				seen[next[k]] = true;
				stack[sp++] = next[k];
			}
	}
	free(stack);
	free(seen);
	return ret;
}

/* Predecessors for the backward walk: the return site of an internal call
 * has the callee's rets as predecessors, the callee's entry the call. */
static int build_cfg(struct emb *b)
{
	const struct code_range *c = b->c;

	b->preds = calloc(c->n, sizeof(*b->preds));
	b->npreds = calloc(c->n, sizeof(*b->npreds));
	b->internal_call = calloc(c->n, sizeof(*b->internal_call));
	if (!b->preds || !b->npreds || !b->internal_call)
		return vmm__fail("entrymap: out of memory");
	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];
		long t = in->has_target && !(in->flags & INSN_INDIRECT) ? at_index(c, in->target) : -1;

		if (ends_path(in) || (in->flags & INSN_RET))
			continue;
		if (in->flags & INSN_CALL) {
			if (t >= 0) {
				b->internal_call[i] = true;
				if (pred_add(b, (size_t)t, i) || callee_rets(b, (size_t)t, i))
					return -1;
			} else if (i + 1 < c->n && pred_add(b, i + 1, i)) {
				return -1;
			}
			continue;
		}
		if ((in->flags & (INSN_JMP | INSN_JCC)) && t >= 0 && pred_add(b, (size_t)t, i))
			return -1;
		if (!(in->flags & INSN_JMP) && i + 1 < c->n && pred_add(b, i + 1, i))
			return -1;
	}
	return 0;
}

/* ---- the value domain -------------------------------------------------------- */

static struct aval av_unk(void)
{
	return (struct aval){ .kind = AV_UNK };
}

static struct aval av_const(uint64_t v, uint64_t taint)
{
	return (struct aval){ .kind = AV_CONST, .c = v & ~taint, .taint = taint };
}

static bool mem_read_u64(struct emb *b, uint64_t va, uint64_t *v)
{
	*v = 0;
	return vm__read_gva(b->g->vm, 0, va, v, sizeof(*v)) == 0;
}

static struct aval pcpu_const(struct emb *b, const struct aval *a)
{
	uint64_t v;

	if (!b->percpu_ok || a->c + 8 > KINJECT_PCPU_SIZE)
		return av_unk();
	memcpy(&v, b->percpu + a->c, sizeof(v));
	return av_const(v + (uint64_t)a->add, 0);
}

/* The value of a memory operand: a per-CPU slot, or guest memory as it is
 * at READY (code and set-up data; documented in docs/map.md). */
static struct aval mem_value(struct emb *b, size_t i, const struct xop *o)
{
	const struct insn *in = &b->c->insns[i];
	uint64_t va, v;

	if (o->seg == X86_REG_GS) {
		if (o->base || o->index || o->disp < 0 || o->disp >= KINJECT_PCPU_SIZE)
			return av_unk();
		return (struct aval){ .kind = AV_PCPU, .c = (uint64_t)o->disp };
	}
	if (o->seg && o->seg != X86_REG_DS)
		return av_unk();
	if (o->base == X86_REG_RIP && !o->index)
		va = in->addr + in->size + (uint64_t)o->disp;
	else if (!o->base && !o->index)
		va = (uint64_t)o->disp;
	else
		return av_unk();
	if (va >= b->m->layout.percpu && va < b->m->layout.percpu + KINJECT_PCPU_SIZE)
		return (struct aval){ .kind = AV_PCPU, .c = va - b->m->layout.percpu };
	if (!mem_read_u64(b, va, &v))
		return av_unk();
	return av_const(v, 0);
}

static uint64_t taint_up(uint64_t t)
{
	return t ? ~((t & -t) - 1) : 0;
}

/* a OP b for and/or/xor/add/sub/shl/shr/btr/bts; width 4 truncates. */
static struct aval av_apply(struct emb *b, unsigned op, struct aval a, struct aval v, unsigned width)
{
	struct aval r = av_unk();

	if (v.kind == AV_PCPU)
		v = pcpu_const(b, &v);
	if (a.kind == AV_PCPU && op != X86_INS_ADD && op != X86_INS_SUB)
		a = pcpu_const(b, &a);
	if (op == X86_INS_OR && a.kind != AV_CONST && v.kind == AV_CONST && a.kind != AV_CR3 &&
	    a.kind != AV_MSRHIUP && a.kind != AV_MSRLO) {
		struct aval t = a;   /* or is commutative: keep the interesting side left */
		a = v;
		v = t;
	}
	if (op == X86_INS_OR && (a.kind == AV_MSRLO || a.kind == AV_MSRHIUP) && v.kind == AV_CONST) {
		struct aval t = a;
		a = v;
		v = t;
	}
	switch (a.kind) {
	case AV_CONST:
		if (v.kind == AV_CONST) {
			uint64_t known_a = ~a.taint, known_v = ~v.taint;

			switch (op) {
			case X86_INS_AND:
				r = av_const(a.c & v.c, (a.taint & (v.c | v.taint)) | (v.taint & (a.c | a.taint)));
				break;
			case X86_INS_OR:
				r = av_const(a.c | v.c, (a.taint | v.taint) & ~((a.c & known_a) | (v.c & known_v)));
				break;
			case X86_INS_XOR:
				r = av_const(a.c ^ v.c, a.taint | v.taint);
				break;
			case X86_INS_ADD:
				r = av_const(a.c + v.c, taint_up(a.taint | v.taint));
				break;
			case X86_INS_SUB:
				r = av_const(a.c - v.c, taint_up(a.taint | v.taint));
				break;
			case X86_INS_SHL:
				if (!v.taint)
					r = av_const(a.c << (v.c & 63), a.taint << (v.c & 63));
				break;
			case X86_INS_SHR:
				if (!v.taint)
					r = av_const(a.c >> (v.c & 63), a.taint >> (v.c & 63));
				break;
			case X86_INS_BTR:
				if (!v.taint)
					r = av_const(a.c & ~(1ULL << (v.c & 63)), a.taint & ~(1ULL << (v.c & 63)));
				break;
			case X86_INS_BTS:
				if (!v.taint)
					r = av_const(a.c | (1ULL << (v.c & 63)), a.taint & ~(1ULL << (v.c & 63)));
				break;
			}
		} else if (op == X86_INS_OR && v.kind == AV_CR3) {
			r = av_apply(b, op, v, a, width);
			return r;
		}
		break;
	case AV_UNK:
		/* Unknown AND a constant: only the constant's bits may be set. */
		if (op == X86_INS_AND && v.kind == AV_CONST && !v.taint)
			r = av_const(0, width == 4 ? (v.c & 0xffffffffULL) : v.c);
		break;
	case AV_CR3:
		if (v.kind != AV_CONST || width != 8)
			break;
		r = a;
		switch (op) {
		case X86_INS_AND:
			if (v.taint)
				return av_unk();
			r.zeros |= ~v.c;
			r.ones &= v.c;
			r.taint &= v.c;
			break;
		case X86_INS_OR:
			r.ones |= v.c;
			r.zeros &= ~v.c;
			r.taint = (r.taint | v.taint) & ~v.c;
			break;
		case X86_INS_BTR:
		case X86_INS_BTS: {
			uint64_t bit = 1ULL << (v.c & 63);

			if (v.taint)
				return av_unk();
			if (op == X86_INS_BTR) {
				r.zeros |= bit;
				r.ones &= ~bit;
			} else {
				r.ones |= bit;
				r.zeros &= ~bit;
			}
			r.taint &= ~bit;
			break;
		}
		default:
			return av_unk();
		}
		return r;
	case AV_PCPU:
	case AV_RSP:
		if (v.kind != AV_CONST || v.taint || width != 8)
			break;
		r = a;
		if (op == X86_INS_ADD)
			r.add += (int64_t)v.c;
		else if (op == X86_INS_SUB)
			r.add -= (int64_t)v.c;
		else if (!(a.kind == AV_RSP && op == X86_INS_AND))   /* alignment keeps the stack */
			r = av_unk();
		return r;
	case AV_MSRHI:
		if (op == X86_INS_SHL && v.kind == AV_CONST && v.c == 32 && width == 8) {
			r = a;
			r.kind = AV_MSRHIUP;
		}
		break;
	case AV_MSRHIUP:
	case AV_MSRLO:
		if (op == X86_INS_OR && width == 8 && (v.kind == AV_MSRLO || v.kind == AV_MSRHIUP) &&
		    v.kind != a.kind && v.site == a.site && v.msr == a.msr) {
			r = a;
			r.kind = AV_MSR;
		}
		break;
	case AV_MSR:
		if (op == X86_INS_SHR && v.kind == AV_CONST && v.c == 32 && width == 8) {
			r = a;
			r.kind = AV_MSRHI;
		}
		break;
	}
	if (width == 4) {
		if (r.kind == AV_CONST)
			r = av_const(r.c & 0xffffffffULL, r.taint & 0xffffffffULL);
		else if (r.kind == AV_MSR)
			r.kind = AV_MSRLO;
		else if (r.kind != AV_MSRLO && r.kind != AV_MSRHI)
			r = av_unk();
	}
	return r;
}

/* A branch proved (v & mask) == 0 (is_zero) or != 0.  false: impossible. */
static bool av_fact(struct aval *v, uint64_t mask, bool is_zero)
{
	bool single = mask && !(mask & (mask - 1));

	switch (v->kind) {
	case AV_CONST:
		if (is_zero)
			return !(v->c & mask);
		if (single && !(mask & v->taint))
			return (v->c & mask) != 0;
		return true;
	case AV_CR3:
		if (is_zero) {
			if (v->ones & mask)
				return false;
			v->k0 |= mask & ~v->zeros & ~v->taint;
			return !(v->k1 & v->k0);
		}
		if (!single)
			return true;
		if (v->zeros & mask)
			return false;
		if (!(v->ones & mask) && !(v->taint & mask))
			v->k1 |= mask;
		return !(v->k1 & v->k0);
	default:
		return true;
	}
}

static bool av_same(const struct aval *a, const struct aval *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static int av_push(struct emb *b, struct aval *out, int n, int max, const struct aval *v)
{
	for (int k = 0; k < n; k++)
		if (av_same(&out[k], v))
			return n;
	if (n >= max) {
		b->overflow = true;
		return n;
	}
	out[n] = *v;
	return n + 1;
}

static bool caller_saved(unsigned reg)
{
	switch (reg) {
	case X86_REG_RAX: case X86_REG_RCX: case X86_REG_RDX: case X86_REG_RSI:
	case X86_REG_RDI: case X86_REG_R8: case X86_REG_R9: case X86_REG_R10: case X86_REG_R11:
		return true;
	default:
		return false;
	}
}

static bool op_is_reg(const struct xop *o, unsigned reg)
{
	return o->type == X86_OP_REG && analysis__reg64(o->reg) == reg;
}

/* Does this instruction move RSP to another stack (as far as we can tell)? */
static bool changes_stack(const struct insn *in)
{
	return (in->flags & INSN_LOADS_RSP) && window__rsp_default(in) != WIN_SAME;
}

static int vals_before(struct emb *b, size_t i, unsigned reg, int depth, bool rl,
		       struct aval *out, int max);

/* Origin resolution of branch p for the running context (window.h's
 * classify_branch): WIN_USER, WIN_KERNEL or 0. */
static unsigned ctx_branch(struct emb *b, size_t i);

static int vals_after(struct emb *b, size_t j, unsigned reg, int depth, bool rl,
		      struct aval *out, int max)
{
	const struct insn *in = &b->c->insns[j];
	const struct xdet *d = &b->det[j];
	struct aval l[MAXV], r[MAXV], v;
	int nl, nr, n = 0;
	unsigned width = 8;

	if (in->flags & INSN_CALL) {
		if (!b->internal_call[j] && caller_saved(reg))
			return av_push(b, out, 0, max, &(struct aval){ .kind = AV_UNK });
		if (reg == X86_REG_RSP && b->internal_call[j]) {
			/* walked back from the callee: its return address is pushed */
			nl = vals_before(b, j, reg, depth + 1, rl, l, MAXV);
			for (int k = 0; k < nl; k++) {
				v = av_apply(b, X86_INS_SUB, l[k], av_const(8, 0), 8);
				n = av_push(b, out, n, max, &v);
			}
			return n;
		}
		return vals_before(b, j, reg, depth + 1, rl, out, max);
	}
	if (!analysis__writes_reg(in, reg))
		return vals_before(b, j, reg, depth + 1, rl || changes_stack(in), out, max);

	/* Implicit stack-pointer moves while following RSP itself. */
	if (reg == X86_REG_RSP && (in->flags & (INSN_RET)) ) {
		nl = vals_before(b, j, reg, depth + 1, rl, l, MAXV);
		for (int k = 0; k < nl; k++) {
			v = av_apply(b, X86_INS_ADD, l[k], av_const(8, 0), 8);
			n = av_push(b, out, n, max, &v);
		}
		return n;
	}
	if (reg == X86_REG_RSP && (in->id == X86_INS_PUSH || in->id == X86_INS_PUSHFQ ||
				   (in->id == X86_INS_POP && !(d->n && op_is_reg(&d->op[0], X86_REG_RSP))) ||
				   in->id == X86_INS_POPFQ)) {
		bool push = in->id == X86_INS_PUSH || in->id == X86_INS_PUSHFQ;

		nl = vals_before(b, j, reg, depth + 1, rl, l, MAXV);
		for (int k = 0; k < nl; k++) {
			v = av_apply(b, push ? X86_INS_SUB : X86_INS_ADD, l[k], av_const(8, 0), 8);
			n = av_push(b, out, n, max, &v);
		}
		return n;
	}

	if (in->id == X86_INS_RDMSR) {
		struct aval ec[MAXV];
		int ne = vals_before(b, j, X86_REG_RCX, depth + 1, rl, ec, MAXV);

		for (int k = 0; k < ne; k++) {
			if (ec[k].kind != AV_CONST || ec[k].taint)
				v = av_unk();
			else
				v = (struct aval){ .kind = reg == X86_REG_RAX ? AV_MSRLO :
						   reg == X86_REG_RDX ? AV_MSRHI : AV_UNK,
						   .msr = (uint32_t)ec[k].c, .site = (uint32_t)j };
			n = av_push(b, out, n, max, &v);
		}
		return n;
	}

	if (!d->n || !op_is_reg(&d->op[0], reg))
		return av_push(b, out, 0, max, &(struct aval){ .kind = AV_UNK });
	width = d->op[0].size;
	if (width != 8 && width != 4)
		return av_push(b, out, 0, max, &(struct aval){ .kind = AV_UNK });

	switch (in->id) {
	case X86_INS_MOV:
	case X86_INS_MOVABS: {
		const struct xop *s = &d->op[1];

		if (d->n < 2)
			break;
		if (s->type == X86_OP_IMM) {
			v = av_const(width == 4 ? (uint64_t)s->imm & 0xffffffffULL : (uint64_t)s->imm, 0);
			return av_push(b, out, 0, max, &v);
		}
		if (s->type == X86_OP_MEM) {
			v = mem_value(b, j, s);
			if (width == 4)
				v = av_apply(b, X86_INS_AND, v, av_const(0xffffffffULL, 0), 4);
			return av_push(b, out, 0, max, &v);
		}
		if (s->type != X86_OP_REG)
			break;
		if (s->reg == X86_REG_CR3 && width == 8) {
			v = (struct aval){ .kind = AV_CR3, .site = (uint32_t)j };
			return av_push(b, out, 0, max, &v);
		}
		if (analysis__reg64(s->reg) == X86_REG_RSP && width == 8) {
			v = (struct aval){ .kind = AV_RSP, .site = (uint32_t)j, .reloaded = rl };
			return av_push(b, out, 0, max, &v);
		}
		if (analysis__reg64(s->reg) == s->reg || width == 4) {
			nl = vals_before(b, j, analysis__reg64(s->reg), depth + 1, rl, l, MAXV);
			for (int k = 0; k < nl; k++) {
				v = width == 4 ? av_apply(b, X86_INS_AND, l[k], av_const(0xffffffffULL, 0), 4) : l[k];
				if (width == 4 && l[k].kind == AV_MSR)
					v = l[k], v.kind = AV_MSRLO;
				n = av_push(b, out, n, max, &v);
			}
			return n;
		}
		break;
	}
	case X86_INS_LEA: {
		const struct xop *s = &d->op[1];

		if (d->n < 2 || s->type != X86_OP_MEM || s->index || s->seg || width != 8)
			break;
		if (s->base == X86_REG_RIP) {
			v = av_const(in->addr + in->size + (uint64_t)s->disp, 0);
			return av_push(b, out, 0, max, &v);
		}
		if (analysis__reg64(s->base) == X86_REG_RSP) {
			v = (struct aval){ .kind = AV_RSP, .site = (uint32_t)j, .reloaded = rl, .add = s->disp };
			return av_push(b, out, 0, max, &v);
		}
		if (!s->base)
			break;
		nl = vals_before(b, j, analysis__reg64(s->base), depth + 1, rl, l, MAXV);
		for (int k = 0; k < nl; k++) {
			v = av_apply(b, X86_INS_ADD, l[k], av_const((uint64_t)s->disp, 0), 8);
			n = av_push(b, out, n, max, &v);
		}
		return n;
	}
	case X86_INS_XOR:
		if (d->n >= 2 && d->op[1].type == X86_OP_REG &&
		    analysis__reg64(d->op[1].reg) == reg) {
			v = av_const(0, 0);
			return av_push(b, out, 0, max, &v);
		}
		/* fall through */
	case X86_INS_AND:
	case X86_INS_OR:
	case X86_INS_ADD:
	case X86_INS_SUB:
	case X86_INS_SHL:
	case X86_INS_SHR:
	case X86_INS_BTR:
	case X86_INS_BTS: {
		const struct xop *s = &d->op[1];

		if (d->n < 2)
			break;
		nl = vals_before(b, j, reg, depth + 1, rl, l, MAXV);
		if (s->type == X86_OP_IMM) {
			r[0] = av_const(s->size == 4 && width == 4 ? (uint64_t)s->imm & 0xffffffffULL
								  : (uint64_t)s->imm, 0);
			nr = 1;
		} else if (s->type == X86_OP_MEM) {
			r[0] = mem_value(b, j, s);
			nr = 1;
		} else if (s->type == X86_OP_REG) {
			nr = vals_before(b, j, analysis__reg64(s->reg), depth + 1, rl, r, MAXV);
		} else {
			break;
		}
		for (int k = 0; k < nl; k++)
			for (int q = 0; q < nr; q++) {
				v = av_apply(b, in->id, l[k], r[q], width);
				n = av_push(b, out, n, max, &v);
			}
		return n;
	}
	default:
		break;
	}
	return av_push(b, out, 0, max, &(struct aval){ .kind = AV_UNK });
}

/* The facts a conditional branch p proves about reg on the edge to i. */
static bool edge_facts(struct emb *b, size_t p, size_t i, unsigned reg, struct aval *v)
{
	const struct insn *j = &b->c->insns[p], *t;
	const struct xdet *d;
	bool taken, is_zero;

	if (!(j->flags & INSN_JCC) || p == 0 || (j->id != X86_INS_JE && j->id != X86_INS_JNE))
		return true;
	t = &b->c->insns[p - 1];
	d = &b->det[p - 1];
	if (t->id != X86_INS_TEST || d->n != 2 || !op_is_reg(&d->op[0], reg) || d->op[1].type != X86_OP_IMM)
		return true;
	taken = j->has_target && j->target == b->c->insns[i].addr && p + 1 != i;
	is_zero = (j->id == X86_INS_JE) == taken;
	return av_fact(v, (uint64_t)d->op[1].imm & (d->op[0].size == 4 ? 0xffffffffULL : ~0ULL), is_zero);
}

static int vals_before(struct emb *b, size_t i, unsigned reg, int depth, bool rl,
		       struct aval *out, int max)
{
	struct aval tmp[MAXV];
	int n = 0;

	if (++b->steps > STEP_BUDGET)
		b->overflow = true;
	if (b->overflow || depth > MAXDEPTH || !b->npreds[i])
		return av_push(b, out, 0, max, &(struct aval){ .kind = AV_UNK });
	for (uint32_t k = 0; k < b->npreds[i]; k++) {
		size_t p = b->preds[i][k];
		const struct insn *pi = &b->c->insns[p];
		int nt;

		/* Code this context did not reach last pass is no path. */
		if (b->cur->prev.at && !window__reached(&b->cur->prev.at[p].in))
			continue;
		if ((pi->flags & INSN_JCC) && b->cur->kind != CTX_OTHER) {
			unsigned r = ctx_branch(b, p);
			unsigned origin = b->cur->kind == CTX_USER ? WIN_USER : WIN_KERNEL;
			bool taken = pi->has_target && pi->target == b->c->insns[i].addr && p + 1 != i;

			if (r && (taken ? r != origin : r == origin))
				continue;   /* this context never takes this edge */
		}
		nt = vals_after(b, p, reg, depth, rl, tmp, MAXV);
		for (int q = 0; q < nt; q++)
			if (edge_facts(b, p, i, reg, &tmp[q]))
				n = av_push(b, out, n, max, &tmp[q]);
		if (b->overflow)
			break;
	}
	return n;
}

/* Values of reg before insn i, or -1 if the walk gave up. */
static int eval(struct emb *b, size_t i, unsigned reg, struct aval *out)
{
	int n;

	b->steps = 0;
	b->overflow = false;
	n = vals_before(b, i, reg, 0, false, out, MAXV);
	if (b->overflow) {
		add_note(b->m, b->c->insns[i].addr, "classifier: too many paths while tracing %s: unknown",
			 analysis__reg_name(reg));
		return -1;
	}
	return n;
}

/* ---- classifiers ------------------------------------------------------------- */

static const struct win_state *prev_at(struct emb *b, uint32_t site)
{
	if (!b->cur->prev.at)
		return NULL;
	return &b->cur->prev.at[site].in;
}

static unsigned cr3_of_const(struct emb *b, uint64_t v, uint64_t taint)
{
	const struct kinject_layout *l = &b->m->layout;
	uint64_t masks[2] = { ~CR3_NOFLUSH & ~taint, ~(CR3_NOFLUSH | CR3_PCID_MASK) & ~taint };

	if (!pti_on(l))
		return ((v ^ l->kernel_cr3) & masks[1]) ? WIN_UNKNOWN : WIN_KERNEL;
	for (int k = 0; k < 2; k++) {
		/* Unknown bits must not hide the difference between the two. */
		if ((l->kernel_cr3 ^ l->user_cr3) & ~masks[k] & ~(CR3_NOFLUSH | CR3_PCID_MASK))
			return WIN_UNKNOWN;
		if (!((v ^ l->kernel_cr3) & masks[k]))
			return WIN_KERNEL;
		if (!((v ^ l->user_cr3) & masks[k]))
			return WIN_USER;
	}
	return WIN_UNKNOWN;
}

static unsigned cr3_of_value(struct emb *b, const struct aval *v, const struct win_state *before)
{
	const struct kinject_layout *l = &b->m->layout;

	switch (v->kind) {
	case AV_CONST:
		return cr3_of_const(b, v->c, v->taint);
	case AV_PCPU:
		if (v->add == 0 && v->c == KINJECT_PCPU_KERNEL_CR3)
			return WIN_KERNEL;
		if (v->add == 0 && v->c == KINJECT_PCPU_USER_CR3)
			return pti_on(l) ? WIN_USER : WIN_KERNEL;
		{
			struct aval k = pcpu_const(b, v);

			return k.kind == AV_CONST ? cr3_of_const(b, k.c, 0) : WIN_UNKNOWN;
		}
	case AV_CR3: {
		uint64_t cand[2] = { l->kernel_cr3, l->user_cr3 };
		unsigned cls[2] = { 0, 0 }, res = 0;
		int alive = 0;

		for (int k = 0; k < (pti_on(l) ? 2 : 1); k++) {
			if ((cand[k] & v->k0) || (cand[k] & v->k1) != v->k1)
				continue;
			cls[k] = cr3_of_const(b, (cand[k] & ~v->zeros) | v->ones, v->taint);
			res |= cls[k];
			alive++;
		}
		if (alive == 2 && cls[0] == WIN_KERNEL && cls[1] == WIN_USER) {
			/* Written back as read: the CR3 the read found. */
			const struct win_state *s = prev_at(b, v->site);

			return s && s->cr3 ? s->cr3 : WIN_UNKNOWN;
		}
		return alive ? res : WIN_UNKNOWN;
	}
	default:
		return WIN_UNKNOWN;
	}
}

static unsigned combine(unsigned acc, unsigned r, unsigned same)
{
	if (r == WIN_SAME)
		r = same;
	if ((acc | r) & WIN_UNKNOWN)
		return WIN_UNKNOWN;
	return acc | r;
}

static unsigned classify_cr3(const struct code_range *c, size_t i, const struct win_state *before, void *ctx)
{
	struct emb *b = ctx;
	const struct xdet *d = &b->det[i];
	struct aval v[MAXV];
	unsigned res = 0;
	int n;

	if (d->n < 2 || d->op[1].type != X86_OP_REG)
		return WIN_UNKNOWN;
	n = eval(b, i, analysis__reg64(d->op[1].reg), v);
	if (n <= 0)
		return WIN_UNKNOWN;
	for (int k = 0; k < n; k++)
		res = combine(res, cr3_of_value(b, &v[k], before), before->cr3);
	if (res & WIN_UNKNOWN)
		add_note(b->m, c->insns[i].addr, "CR3 write: source value not recognised: unknown");
	return res ? res : WIN_UNKNOWN;
}

static unsigned gs_of_base(struct emb *b, const struct aval *lo, const struct aval *hi)
{
	if (lo->kind == AV_CONST && hi->kind == AV_CONST) {
		uint64_t base = ((hi->c & 0xffffffffULL) << 32) | (lo->c & 0xffffffffULL);

		if (((hi->taint & 0xffffffffULL) | (lo->taint & 0xffffffffULL)))
			return WIN_UNKNOWN;
		return base == b->m->layout.percpu ? WIN_KERNEL : WIN_USER;
	}
	if (lo->kind == AV_MSRLO && hi->kind == AV_MSRHI && lo->site == hi->site &&
	    lo->msr == MSR_GS_BASE && hi->msr == MSR_GS_BASE) {
		const struct win_state *s = prev_at(b, lo->site);

		return s && s->gs ? s->gs : WIN_UNKNOWN;
	}
	return WIN_UNKNOWN;
}

static unsigned classify_gs(const struct code_range *c, size_t i, const struct win_state *before, void *ctx)
{
	struct emb *b = ctx;
	const struct insn *in = &c->insns[i];
	struct aval ec[MAXV], lo[MAXV], hi[MAXV];
	unsigned res = 0;
	int ne, nl, nh;

	if (in->flags & INSN_WRGSBASE) {
		const struct xdet *d = &b->det[i];

		if (!d->n || d->op[0].type != X86_OP_REG)
			return WIN_UNKNOWN;
		nl = eval(b, i, analysis__reg64(d->op[0].reg), lo);
		for (int k = 0; k < nl; k++) {
			struct aval v = lo[k].kind == AV_PCPU ? pcpu_const(b, &lo[k]) : lo[k], h = v;

			if (v.kind == AV_CONST) {
				h = av_const(v.c >> 32, v.taint >> 32);
			} else if (v.kind == AV_MSR) {
				v.kind = AV_MSRLO;
				h.kind = AV_MSRHI;
			}
			res = combine(res, gs_of_base(b, &v, &h), before->gs);
		}
		return nl > 0 && res ? res : WIN_UNKNOWN;
	}
	/* wrmsr: only MSR_GS_BASE changes the GS base in use. */
	ne = eval(b, i, X86_REG_RCX, ec);
	if (ne <= 0)
		return WIN_UNKNOWN;
	for (int k = 0; k < ne; k++)
		if (ec[k].kind != AV_CONST || (ec[k].taint & 0xffffffffULL))
			return WIN_UNKNOWN;
	for (int k = 0; k < ne; k++) {
		if ((uint32_t)ec[k].c != MSR_GS_BASE)
			continue;
		nl = eval(b, i, X86_REG_RAX, lo);
		nh = eval(b, i, X86_REG_RDX, hi);
		if (nl <= 0 || nh <= 0)
			return WIN_UNKNOWN;
		for (int p = 0; p < nl; p++)
			for (int q = 0; q < nh; q++)
				res = combine(res, gs_of_base(b, &lo[p], &hi[q]), before->gs);
		return res ? res : WIN_UNKNOWN;
	}
	return WIN_SAME;
}

static unsigned stack_of_value(struct emb *b, const struct aval *v0)
{
	struct aval v = *v0;

	if (v.kind == AV_PCPU) {
		int64_t a = v.add < 0 ? -v.add : v.add;

		if (a < 0x10000) {
			if (v.c == KINJECT_PCPU_TOP_OF_STACK)
				return WIN_STACK_TASK;
			if (v.c == KINJECT_PCPU_IRQ_STACK_TOP)
				return WIN_STACK_IRQ;
			if (v.c == KINJECT_PCPU_ENTRY_STACK_TOP)
				return WIN_STACK_ENTRY;
		}
		v = pcpu_const(b, &v);
	}
	if (v.kind == AV_CONST) {
		uint64_t lo = v.c & ~v.taint, hi = v.c | v.taint;
		unsigned k1 = stack_bits(&b->m->layout, lo), k2 = stack_bits(&b->m->layout, hi);

		return k1 && k1 == k2 ? k1 : WIN_UNKNOWN;
	}
	if (v.kind == AV_RSP) {
		const struct win_state *s;

		if (!v.reloaded)
			return WIN_SAME;
		s = prev_at(b, v.site);
		return s && s->stack ? s->stack : WIN_UNKNOWN;
	}
	return WIN_UNKNOWN;
}

/* RSP when SYSRET/SYSEXIT runs is the user's by definition: an RSP load
 * followed straight (no branch, no other RSP load) by one loads it. */
static bool feeds_sysret(const struct code_range *c, size_t i)
{
	for (size_t k = i + 1; k < c->n && k < i + 16; k++) {
		const struct insn *in = &c->insns[k];

		if (in->flags & (INSN_SYSRET | INSN_SYSEXIT))
			return true;
		if (in->flags & (INSN_LOADS_RSP | INSN_JMP | INSN_JCC | INSN_CALL | INSN_RET) ||
		    ends_path(in))
			return false;
	}
	return false;
}

static unsigned classify_rsp(const struct code_range *c, size_t i, const struct win_state *before, void *ctx)
{
	struct emb *b = ctx;
	const struct insn *in = &c->insns[i];
	const struct xdet *d = &b->det[i];
	struct aval v[MAXV];
	unsigned res = 0;
	int n = 0;

	if (window__rsp_default(in) == WIN_SAME)
		return WIN_SAME;
	/* Arithmetic on an RSP that holds no stack (scratch) keeps it so. */
	if ((before->stack & WIN_UNKNOWN) && in->id != X86_INS_MOV && in->id != X86_INS_MOVABS &&
	    in->id != X86_INS_LEA && in->id != X86_INS_POP && in->id != X86_INS_LEAVE)
		return WIN_UNKNOWN;
	switch (in->id) {
	case X86_INS_MOV:
	case X86_INS_MOVABS:
		if (d->n < 2 || !op_is_reg(&d->op[0], X86_REG_RSP))
			break;
		if (d->op[1].type == X86_OP_REG && d->op[1].reg == X86_REG_CR3) {
			add_note(b->m, in->addr, "RSP holds a CR3 value (scratch): no stack");
			return WIN_UNKNOWN;
		}
		if (d->op[1].type == X86_OP_MEM) {
			v[0] = mem_value(b, i, &d->op[1]);
			n = 1;
		} else if (d->op[1].type == X86_OP_IMM) {
			v[0] = av_const((uint64_t)d->op[1].imm, 0);
			n = 1;
		} else if (d->op[1].type == X86_OP_REG) {
			n = eval(b, i, analysis__reg64(d->op[1].reg), v);
		}
		break;
	case X86_INS_LEA:
		/* lea off(%reg), %rsp: RSP = reg + off */
		if (d->n == 2 && d->op[1].type == X86_OP_MEM && !d->op[1].index && d->op[1].base &&
		    d->op[1].base != X86_REG_RIP) {
			n = eval(b, i, analysis__reg64(d->op[1].base), v);
			for (int k = 0; k < n; k++)
				v[k] = av_apply(b, X86_INS_ADD, v[k], av_const((uint64_t)d->op[1].disp, 0), 8);
		}
		break;
	case X86_INS_LEAVE:
		n = eval(b, i, X86_REG_RBP, v);
		break;
	default:
		break;
	}
	for (int k = 0; k < n; k++)
		res = combine(res, stack_of_value(b, &v[k]), before->stack);
	if ((n <= 0 || !res || (res & WIN_UNKNOWN)) && feeds_sysret(c, i))
		return WIN_STACK_USER;
	if (n <= 0 || !res || (res & WIN_UNKNOWN)) {
		add_note(b->m, in->addr, "RSP load: stack not recognised: unknown");
		return WIN_UNKNOWN;
	}
	return res;
}

/* Origin tests: the saved CS (window__branch_cs_rpl), and a compare of the
 * saved RIP with an instruction A of the entry text that runs in kernel
 * mode with user GS or CR3 (an exit IRET that can fault): only the
 * "interrupted at A" context takes the equal edge. */
static bool rip_compare(struct emb *b, size_t i, uint64_t *target)
{
	const struct insn *j = &b->c->insns[i];
	const struct xdet *d;

	if (i == 0 || (j->id != X86_INS_JE && j->id != X86_INS_JNE))
		return false;
	d = &b->det[i - 1];
	if (b->c->insns[i - 1].id != X86_INS_CMP || d->n != 2 || d->op[0].type != X86_OP_MEM ||
	    d->op[1].type != X86_OP_IMM || d->op[0].seg || analysis__reg64(d->op[0].base) != X86_REG_RSP)
		return false;
	if (at_index(b->c, (uint64_t)d->op[1].imm) < 0)
		return false;
	*target = (uint64_t)d->op[1].imm;
	return true;
}

static bool is_window_rip(struct emb *b, uint64_t a)
{
	long k = at_index(b->c, a);
	const struct win_state *s;

	if (!b->prev_merged || k < 0)
		return false;
	s = &b->prev_merged->at[k].from_user;
	return (s->gs & WIN_USER) || (s->cr3 & WIN_USER && pti_on(&b->m->layout));
}

static unsigned ctx_branch(struct emb *b, size_t i)
{
	unsigned r = window__branch_cs_rpl(b->c, i, NULL);
	uint64_t a;
	bool eq_taken;

	if (b->cur->kind == CTX_OTHER)
		return 0;
	if (r || b->cur->kind == CTX_USER || !rip_compare(b, i, &a) || !is_window_rip(b, a))
		return r;
	eq_taken = b->cur->kind == CTX_WINDOW && b->cur->window_rip == a;
	/* Every kernel-side context runs as origin WIN_KERNEL. */
	if (b->c->insns[i].id == X86_INS_JE)
		return eq_taken ? WIN_KERNEL : WIN_USER;
	return eq_taken ? WIN_USER : WIN_KERNEL;
}

/* "test $imm, %reg; je/jne" on a value read from CR3 (or a constant): the
 * outcome is decided when this context knows which CR3 the read found. */
static unsigned value_branch(struct emb *b, size_t i)
{
	const struct insn *j = &b->c->insns[i];
	const struct xdet *d = i ? &b->det[i - 1] : NULL;
	const struct kinject_layout *l = &b->m->layout;
	struct aval v[MAXV];
	uint64_t mask;
	int n, outcome = -1;

	if (!d || b->cur->kind == CTX_OTHER || (j->id != X86_INS_JE && j->id != X86_INS_JNE) ||
	    b->c->insns[i - 1].id != X86_INS_TEST ||
	    d->n != 2 || d->op[0].type != X86_OP_REG || d->op[1].type != X86_OP_IMM)
		return 0;
	mask = (uint64_t)d->op[1].imm & (d->op[0].size == 4 ? 0xffffffffULL : ~0ULL);
	n = eval(b, i - 1, analysis__reg64(d->op[0].reg), v);
	if (n <= 0)
		return 0;
	for (int k = 0; k < n; k++) {
		uint64_t val, taint;
		int zero;

		if (v[k].kind == AV_CR3) {
			const struct win_state *s = prev_at(b, v[k].site);

			if (!s || (s->cr3 != WIN_KERNEL && s->cr3 != WIN_USER))
				return 0;
			val = s->cr3 == WIN_USER && pti_on(l) ? l->user_cr3 : l->kernel_cr3;
			val = (val & ~v[k].zeros) | v[k].ones;
			taint = v[k].taint;
		} else if (v[k].kind == AV_CONST) {
			val = v[k].c;
			taint = v[k].taint;
		} else {
			return 0;
		}
		if (mask & taint)
			return 0;
		zero = !(val & mask);
		if (outcome >= 0 && outcome != zero)
			return 0;
		outcome = zero;
	}
	if (outcome < 0)
		return 0;
	{
		unsigned self = b->cur->kind == CTX_USER ? WIN_USER : WIN_KERNEL;
		unsigned other = self == WIN_USER ? WIN_KERNEL : WIN_USER;
		bool taken = (j->id == X86_INS_JE) == (outcome == 1);

		return taken ? self : other;
	}
}

static unsigned classify_branch(const struct code_range *c, size_t i, void *ctx)
{
	struct emb *b = ctx;
	unsigned r = ctx_branch(b, i);

	return r ? r : value_branch(b, i);
}

/* ---- reading the READY guest ------------------------------------------------ */

static int read_tss(struct emb *b, const struct kvm_sregs *s)
{
	struct entrymap *m = b->m;
	uint8_t desc[16], tss[0x68];
	uint64_t base;

	if (!s->tr.selector)
		return add_note(m, 0, "no TR loaded: IST and RSP0 stacks unknown");
	if (vm__read_gva(b->g->vm, 0, s->gdt.base + (s->tr.selector & ~7u), desc, sizeof(desc)))
		return add_note(m, 0, "TSS descriptor unreadable: %s", vmm__error());
	base = (uint64_t)desc[2] | (uint64_t)desc[3] << 8 | (uint64_t)desc[4] << 16 |
	       (uint64_t)desc[7] << 24 | (uint64_t)desc[8] << 32 | (uint64_t)desc[9] << 40 |
	       (uint64_t)desc[10] << 48 | (uint64_t)desc[11] << 56;
	if (base != s->tr.base)
		add_note(m, 0, "TSS base 0x%llx in the GDT, 0x%llx cached in TR: using the GDT's",
			 (unsigned long long)base, (unsigned long long)s->tr.base);
	if (vm__read_gva(b->g->vm, 0, base, tss, sizeof(tss)))
		return add_note(m, 0, "TSS at 0x%llx unreadable: %s", (unsigned long long)base, vmm__error());
	m->tss_base = base;
	memcpy(&m->tss_rsp0, tss + 4, 8);
	for (int k = 1; k <= 7; k++)
		memcpy(&m->tss_ist[k], tss + 0x24 + 8 * (k - 1), 8);
	return 0;
}

static unsigned stack_of_top(struct emb *b, uint64_t top)
{
	unsigned k = top ? stack_bits(&b->m->layout, top) : 0;

	return k ? k : WIN_UNKNOWN;
}

static int entry_add(struct entrymap *m, const struct entrymap_entry *e)
{
	struct entrymap_entry *bigger = realloc(m->entries, (m->nentries + 1) * sizeof(*bigger));

	if (!bigger)
		return vmm__fail("entrymap: out of memory");
	m->entries = bigger;
	m->entries[m->nentries++] = *e;
	return 0;
}

static int find_entries(struct emb *b, const struct kvm_sregs *s)
{
	struct entrymap *m = b->m;
	const struct kinject_layout *l = &m->layout;
	unsigned user_cr3 = pti_on(l) ? WIN_USER : WIN_KERNEL;
	uint8_t idt[256 * 16];
	size_t ngates = ((size_t)s->idt.limit + 1) / 16;
	uint64_t efer = 0, val;

	if (ngates > 256)
		ngates = 256;
	m->idt_base = s->idt.base;
	if (ngates && vm__read_gva(b->g->vm, 0, s->idt.base, idt, ngates * 16))
		return vmm__fail("IDT at 0x%llx unreadable: %s", (unsigned long long)s->idt.base, vmm__error());
	for (size_t v = 0; v < ngates; v++) {
		struct entrymap_entry e = { .kind = ENTRYMAP_IDT, .vector = (int)v };
		struct idt_gate g;
		unsigned type;

		idt_gate__decode(idt + 16 * v, &g);
		if (!g.present)
			continue;
		m->idt_present++;
		type = g.type;
		e.addr = g.offset;
		e.ist = g.ist;
		e.dpl = g.dpl;
		e.trap_gate = type == 0xf;
		if (type != 0xe && type != 0xf) {
			add_note(m, e.addr, "IDT vector 0x%02zx: gate type 0x%x is not a 64-bit interrupt/trap gate",
				 v, type);
			continue;
		}
		if (!entrymap__in_text(m, e.addr)) {
			m->idt_outside++;
			add_note(m, e.addr, "IDT vector 0x%02zx points outside the entry text: not mapped", v);
			continue;
		}
		if (at_index(b->c, e.addr) < 0) {
			add_note(m, e.addr, "IDT vector 0x%02zx points into the middle of an instruction", v);
			continue;
		}
		e.origins = WIN_USER | WIN_KERNEL;
		e.from_user = (struct win_state){
			.gs = WIN_USER, .cr3 = (uint8_t)user_cr3,
			.stack = (uint8_t)stack_of_top(b, e.ist ? m->tss_ist[e.ist] : m->tss_rsp0),
			.irq = e.trap_gate ? WIN_IRQ_ON : WIN_IRQ_OFF,
		};
		/* From kernel mode: on the interrupted kernel stack, or anywhere
		 * at all for IST gates (NMI, #DB, #MC, #DF can hit the windows). */
		e.from_kernel = (struct win_state){
			.gs = e.ist ? WIN_BOTH : WIN_KERNEL,
			.cr3 = (uint8_t)(e.ist ? (WIN_KERNEL | user_cr3) : WIN_KERNEL),
			.stack = (uint8_t)(e.ist ? stack_of_top(b, m->tss_ist[e.ist])
						 : WIN_STACK_TASK | WIN_STACK_IRQ | WIN_STACK_IST),
			.irq = e.trap_gate ? WIN_IRQ_ON | WIN_IRQ_OFF : WIN_IRQ_OFF,
		};
		if (entry_add(m, &e))
			return -1;
	}

	read_msr(b->g, MSR_EFER, &efer);
	read_msr(b->g, MSR_SFMASK, &m->sfmask);
	if (efer & 1) {
		static const struct { uint32_t msr; enum entrymap_kind kind; } sys[] = {
			{ MSR_LSTAR, ENTRYMAP_LSTAR }, { MSR_CSTAR, ENTRYMAP_CSTAR },
		};

		for (size_t k = 0; k < 2; k++) {
			struct entrymap_entry e = { .kind = sys[k].kind, .vector = -1, .origins = WIN_USER };

			if (read_msr(b->g, sys[k].msr, &val) || !val)
				continue;
			if (sys[k].kind == ENTRYMAP_LSTAR)
				m->lstar = val;
			else
				m->cstar = val;
			if (!entrymap__in_text(m, val) || at_index(b->c, val) < 0) {
				add_note(m, val, "%s points outside the entry text (or mid-instruction): not mapped",
					 sys[k].kind == ENTRYMAP_LSTAR ? "MSR_LSTAR" : "MSR_CSTAR");
				continue;
			}
			e.addr = val;
			/* SYSCALL keeps the user's RSP; FMASK decides IF. */
			e.from_user = (struct win_state){
				.gs = WIN_USER, .cr3 = (uint8_t)user_cr3, .stack = WIN_STACK_USER,
				.irq = (m->sfmask & RFLAGS_IF) ? WIN_IRQ_OFF : WIN_IRQ_ON,
			};
			if (entry_add(m, &e))
				return -1;
		}
	}
	if (!read_msr(b->g, MSR_SYSENTER_EIP, &val) && val) {
		uint64_t esp = 0;
		struct entrymap_entry e = { .kind = ENTRYMAP_SYSENTER, .vector = -1, .origins = WIN_USER };

		m->sysenter_eip = val;
		read_msr(b->g, MSR_SYSENTER_ESP, &esp);
		if (entrymap__in_text(m, val) && at_index(b->c, val) >= 0) {
			e.addr = val;
			e.from_user = (struct win_state){
				.gs = WIN_USER, .cr3 = (uint8_t)user_cr3,
				.stack = (uint8_t)stack_of_top(b, esp), .irq = WIN_IRQ_OFF,
			};
			if (entry_add(m, &e))
				return -1;
		} else {
			add_note(m, val, "MSR_IA32_SYSENTER_EIP points outside the entry text: not mapped");
		}
	}
	if (!m->nentries)
		return vmm__fail("no IDT gate or SYSCALL/SYSENTER MSR points into the entry text [0x%llx, 0x%llx)",
				 (unsigned long long)l->entry_text_start, (unsigned long long)l->entry_text_end);
	return 0;
}

/* ---- contexts, passes, merge ------------------------------------------------- */

static int ctx_build(struct emb *b, struct ctxdef *x)
{
	struct entrymap *m = b->m;
	struct win_entry *ents = calloc(m->nentries + 1, sizeof(*ents));
	struct win_state wstate = { 0 };
	size_t n = 0;
	int ret;
	static const struct win_ops ops = {
		.classify_cr3 = classify_cr3, .classify_gs = classify_gs,
		.classify_rsp = classify_rsp, .classify_branch = classify_branch,
	};
	struct win_ops o = ops;

	if (!ents)
		return vmm__fail("entrymap: out of memory");
	if (x->kind == CTX_WINDOW) {
		long a = at_index(b->c, x->window_rip);

		wstate = b->prev_merged->at[a].from_user;
		if (!pti_on(&m->layout))
			wstate.cr3 = WIN_KERNEL;
	}
	for (size_t k = 0; k < m->nentries; k++) {
		const struct entrymap_entry *e = &m->entries[k];

		switch (x->kind) {
		case CTX_USER:
			if (e->origins & WIN_USER)
				ents[n++] = (struct win_entry){ .addr = e->addr, .state = e->from_user,
								 .origin = WIN_USER };
			break;
		case CTX_KERNEL: {
			struct win_state s = e->from_kernel;

			if (!(e->origins & WIN_KERNEL))
				break;
			if (e->ist) {
				s.gs = x->gs;
				s.cr3 = x->cr3;
			} else if (x->gs != WIN_KERNEL || x->cr3 != WIN_KERNEL) {
				break;   /* non-IST gates: the design's kernel/kernel */
			}
			ents[n++] = (struct win_entry){ .addr = e->addr, .state = s, .origin = WIN_KERNEL };
			break;
		}
		case CTX_OTHER:
			if (e->kind == ENTRYMAP_OTHER)
				ents[n++] = (struct win_entry){ .addr = e->addr, .state = e->from_kernel, .origin = 0 };
			break;
		case CTX_WINDOW:
			/* A fault at A goes through a non-IST gate, on A's stack. */
			if ((e->origins & WIN_KERNEL) && !e->ist && e->kind == ENTRYMAP_IDT) {
				struct win_state s = wstate;

				s.irq = e->trap_gate ? wstate.irq : WIN_IRQ_OFF;
				ents[n++] = (struct win_entry){ .addr = e->addr, .state = s, .origin = WIN_KERNEL };
			}
			break;
		}
	}
	o.ctx = b;
	b->cur = x;
	ret = n ? window__build(b->c, ents, n, &o, &x->map) : 0;
	free(ents);
	return ret;
}

static int merge_maps(struct emb *b, struct ctxdef *xs, size_t nx, struct win_map *out)
{
	const struct code_range *c = b->c;

	memset(out, 0, sizeof(*out));
	out->code = c;
	out->at = calloc(c->n, sizeof(*out->at));
	if (!out->at)
		return vmm__fail("entrymap: out of memory");
	for (size_t k = 0; k < nx; k++) {
		const struct win_map *w = &xs[k].map;

		if (!w->at)
			continue;
		out->iterations += w->iterations;
		for (size_t i = 0; i < c->n; i++) {
			struct win_insn *d = &out->at[i];
			const struct win_insn *s = &w->at[i];
			struct win_state *side = xs[k].kind == CTX_USER ? &d->from_user : &d->from_kernel;

			d->in.gs |= s->in.gs; d->in.cr3 |= s->in.cr3;
			d->in.stack |= s->in.stack; d->in.irq |= s->in.irq;
			side->gs |= s->in.gs; side->cr3 |= s->in.cr3;
			side->stack |= s->in.stack; side->irq |= s->in.irq;
			d->is_entry |= s->is_entry;
			for (uint32_t p = 0; p < s->npreds; p++) {
				bool have = false;

				for (uint32_t q = 0; q < d->npreds && !have; q++)
					have = d->preds[q] == s->preds[p];
				if (have)
					continue;
				uint32_t *bigger = realloc(d->preds, (d->npreds + 1) * sizeof(*bigger));
				if (!bigger)
					return vmm__fail("entrymap: out of memory");
				d->preds = bigger;
				d->preds[d->npreds++] = s->preds[p];
			}
		}
		for (size_t q = 0; q < w->nnotes; q++) {
			bool have = false;

			for (size_t r = 0; r < out->nnotes && !have; r++)
				have = out->notes[r].addr == w->notes[q].addr &&
				       !strcmp(out->notes[r].what, w->notes[q].what);
			if (have)
				continue;
			struct win_note *bigger = realloc(out->notes, (out->nnotes + 1) * sizeof(*bigger));
			if (!bigger)
				return vmm__fail("entrymap: out of memory");
			out->notes = bigger;
			out->notes[out->nnotes++] = w->notes[q];
		}
	}
	return 0;
}

static bool maps_equal(const struct win_map *a, const struct win_map *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a->at[i].in, &b->at[i].in, sizeof(a->at[i].in)) ||
		    memcmp(&a->at[i].from_user, &b->at[i].from_user, sizeof(a->at[i].from_user)) ||
		    memcmp(&a->at[i].from_kernel, &b->at[i].from_kernel, sizeof(a->at[i].from_kernel)))
			return false;
	return true;
}

static int run_passes(struct emb *b)
{
	struct entrymap *m = b->m;
	struct ctxdef xs[MAXCTX], old[MAXCTX];
	size_t nx = 0, nold = 0;
	struct win_map merged = { 0 }, prev = { 0 };
	size_t base_notes = m->nnotes;
	int ret = -1;

	memset(xs, 0, sizeof(xs));
	memset(old, 0, sizeof(old));
	for (unsigned pass = 1; pass <= MAXPASS; pass++) {
		/* This pass's contexts: user, kernel, and one per window RIP. */
		nx = 0;
		xs[nx++] = (struct ctxdef){ .kind = CTX_USER };
		for (size_t k = 0; k < m->nentries; k++)
			if (m->entries[k].kind == ENTRYMAP_OTHER) {
				xs[nx++] = (struct ctxdef){ .kind = CTX_OTHER };
				break;
			}
		/* Kernel mode: one context per GS/CR3 the interrupted code may
		 * have (only IST gates see anything but kernel/kernel), so
		 * tests of "what CR3 did I find" resolve within each. */
		for (unsigned gs = WIN_USER; gs <= WIN_KERNEL; gs++)
			for (unsigned cr3 = WIN_USER; cr3 <= WIN_KERNEL; cr3++)
				if (cr3 == WIN_KERNEL || pti_on(&m->layout))
					xs[nx++] = (struct ctxdef){ .kind = CTX_KERNEL, .gs = (uint8_t)gs,
								    .cr3 = (uint8_t)cr3 };
		if (prev.at) {
			for (size_t i = 0; i < b->c->n && nx < MAXCTX; i++) {
				uint64_t a;
				bool dup = false;

				if (!rip_compare(b, i, &a) || !is_window_rip(b, a))
					continue;
				for (size_t k = 1; k < nx; k++)
					dup |= xs[k].kind == CTX_WINDOW && xs[k].window_rip == a;
				if (!dup)
					xs[nx++] = (struct ctxdef){ .kind = CTX_WINDOW, .window_rip = a };
			}
		}
		/* Each context classifies restores with its own previous pass. */
		for (size_t k = 0; k < nx; k++)
			for (size_t q = 0; q < nold; q++)
				if (old[q].kind == xs[k].kind && old[q].window_rip == xs[k].window_rip &&
				    old[q].gs == xs[k].gs && old[q].cr3 == xs[k].cr3) {
					xs[k].prev = old[q].map;
					memset(&old[q].map, 0, sizeof(old[q].map));
				}
		for (size_t q = 0; q < nold; q++)
			window__free(&old[q].map);
		nold = 0;
		/* Notes are the last pass's: earlier passes guess less. */
		m->nnotes = base_notes;
		for (size_t k = 0; k < nx; k++)
			if (ctx_build(b, &xs[k]))
				goto out;
		if (merge_maps(b, xs, nx, &merged))
			goto out;
		m->passes = pass;
		for (size_t k = 0; k < nx; k++) {
			window__free(&xs[k].prev);
			old[k] = xs[k];
			memset(&xs[k], 0, sizeof(xs[k]));
		}
		nold = nx;
		if (prev.at && maps_equal(&prev, &merged, b->c->n)) {
			m->converged = true;
			break;
		}
		window__free(&prev);
		prev = merged;
		memset(&merged, 0, sizeof(merged));
		b->prev_merged = &prev;
	}
	if (!m->converged) {
		/* the last pass stands */
		add_note(m, 0, "classifiers did not settle after %u passes: the last pass is shown", MAXPASS);
		merged = prev;
		memset(&prev, 0, sizeof(prev));
	}
	m->map = merged;
	memset(&merged, 0, sizeof(merged));
	ret = 0;
out:
	for (size_t q = 0; q < nold; q++)
		window__free(&old[q].map);
	for (size_t k = 0; k < MAXCTX; k++) {
		window__free(&xs[k].map);
		window__free(&xs[k].prev);
	}
	window__free(&merged);
	window__free(&prev);
	b->prev_merged = NULL;
	return ret;
}

/* Function symbols in the entry text that no entry point reaches: entered
 * by kernel code some other way (a context switch "returning" there, say).
 * Returns how many were added as ENTRYMAP_OTHER entries, or -1. */
static int add_unreached(struct emb *b)
{
	const struct symtab *t = b->m->symtab;
	int added = 0;

	if (!t)
		return 0;
	for (size_t k = 0; k < t->n; k++) {
		const struct symbol *s = &t->syms[k];
		struct entrymap_entry e = { .kind = ENTRYMAP_OTHER, .vector = -1, .addr = s->addr };
		long i;

		if (!s->is_func || !entrymap__in_text(b->m, s->addr))
			continue;
		i = at_index(b->c, s->addr);
		if (i < 0 || window__reached(&b->m->map.at[i].in))
			continue;
		/* The ABI's state of kernel C code: kernel GS and CR3, a task,
		 * IRQ or IST stack; IF unknown to us: both. */
		e.from_kernel = (struct win_state){ .gs = WIN_KERNEL, .cr3 = WIN_KERNEL,
			.stack = WIN_STACK_TASK | WIN_STACK_IRQ | WIN_STACK_IST, .irq = WIN_IRQ_ON | WIN_IRQ_OFF };
		if (!added)
			b->m->nnotes = b->setup_notes;   /* the passes will say theirs again */
		if (entry_add(b->m, &e))
			return -1;
		add_note(b->m, s->addr, "reached by no IDT gate or MSR: mapped as entered from kernel C code");
		added++;
	}
	return added;
}

int entrymap__build(struct guest *g, struct entrymap *out)
{
	struct emb b = { .g = g, .m = out };
	const struct kinject_layout *l = &g->layout;
	struct kvm_sregs sregs;
	uint8_t *bytes = NULL;
	size_t len;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!g || !g->vm || !g->ready)
		return vmm__fail("entrymap: the guest has not reached READY");
	out->layout = *l;
	out->symtab = &g->img.symtab;
	if (l->entry_text_end <= l->entry_text_start || l->entry_text_end - l->entry_text_start > (64u << 20))
		return vmm__fail("entrymap: bad entry text range [0x%llx, 0x%llx) in the layout block",
				 (unsigned long long)l->entry_text_start, (unsigned long long)l->entry_text_end);
	len = l->entry_text_end - l->entry_text_start;
	bytes = malloc(len);
	if (!bytes)
		return vmm__fail("entrymap: out of memory");
	/* The bytes as they run (boot-time patching included), not the ELF's. */
	if (vm__read_gva(g->vm, 0, l->entry_text_start, bytes, len) ||
	    analysis__decode(bytes, len, l->entry_text_start, &out->code))
		goto out;
	b.c = &out->code;
	b.percpu_ok = !vm__read_gva(g->vm, 0, l->percpu, b.percpu, sizeof(b.percpu));
	if (!b.percpu_ok)
		add_note(out, l->percpu, "per-CPU area unreadable: slots other than the ABI's are unknown");
	sregs = *vcpu__sregs(g->vm);
	if (read_tss(&b, &sregs) || find_entries(&b, &sregs) || decode_operands(&b) || build_cfg(&b))
		goto out;
	b.setup_notes = out->nnotes;
	if (run_passes(&b))
		goto out;
	switch (add_unreached(&b)) {
	case -1:
		goto out;
	case 0:
		break;
	default:
		window__free(&out->map);
		if (run_passes(&b))
			goto out;
	}
	ret = 0;
out:
	if (b.det)
		cs_close(&b.cs);
	free(b.det);
	if (b.preds)
		for (size_t i = 0; i < b.c->n; i++)
			free(b.preds[i]);
	free(b.preds);
	free(b.npreds);
	free(b.internal_call);
	free(bytes);
	if (ret)
		entrymap__free(out);
	return ret;
}

void entrymap__free(struct entrymap *m)
{
	if (!m)
		return;
	window__free(&m->map);
	analysis__free(&m->code);
	free(m->entries);
	free(m->notes);
	memset(m, 0, sizeof(*m));
}

/* ---- queries ---------------------------------------------------------------------- */

bool entrymap__in_text(const struct entrymap *m, uint64_t rip)
{
	return rip >= m->layout.entry_text_start && rip < m->layout.entry_text_end;
}

long entrymap__boundaries(const struct entrymap *m, bool reached_only, uint64_t **out)
{
	uint64_t *a;
	long n = 0;

	*out = NULL;
	if (!m->code.n || !m->map.at)
		return vmm__fail("entrymap: no map");
	a = malloc(m->code.n * sizeof(*a));
	if (!a)
		return vmm__fail("entrymap: out of memory");
	for (size_t i = 0; i < m->code.n; i++)
		if (!reached_only || window__reached(&m->map.at[i].in))
			a[n++] = m->code.insns[i].addr;
	*out = a;
	return n;
}

const struct insn *entrymap__insn(const struct entrymap *m, uint64_t addr)
{
	return analysis__at(&m->code, addr);
}

int entrymap__state(const struct entrymap *m, uint64_t addr, struct win_state *out)
{
	return window__at(&m->map, addr, out);
}

int entrymap__observe_layout(const struct kinject_layout *l, const struct kvm_regs *regs,
			     const struct kvm_sregs *sregs, struct win_state *out)
{
	uint64_t strip = ~(CR3_PCID_MASK | CR3_NOFLUSH), cr3 = sregs->cr3 & strip;
	int missing = 0;

	memset(out, 0, sizeof(*out));
	out->gs = sregs->gs.base == l->percpu ? WIN_KERNEL : WIN_USER;
	if (cr3 == (l->kernel_cr3 & strip))
		out->cr3 = WIN_KERNEL;
	else if (l->user_cr3 && cr3 == (l->user_cr3 & strip))
		out->cr3 = WIN_USER;
	else
		missing++;
	out->stack = (uint8_t)stack_bits(l, regs->rsp);
	if (!out->stack && regs->rsp < (1ULL << 47))
		out->stack = WIN_STACK_USER;
	if (!out->stack)
		missing++;
	out->irq = (regs->rflags & RFLAGS_IF) ? WIN_IRQ_ON : WIN_IRQ_OFF;
	return missing;
}

int entrymap__observe(const struct guest *g, const struct kvm_regs *regs,
		      const struct kvm_sregs *sregs, struct win_state *out)
{
	return entrymap__observe_layout(&g->layout, regs, sregs, out);
}

bool entrymap__check(const struct entrymap *m, uint64_t rip, const struct win_state *seen,
		     char *why, size_t len)
{
	if (why && len)
		why[0] = '\0';
	if (!entrymap__in_text(m, rip))
		return true;
	return window__check(&m->map, rip, seen, why, len);
}

/* ---- output -------------------------------------------------------------------------- */

static const char *kind_name(enum entrymap_kind k)
{
	switch (k) {
	case ENTRYMAP_IDT:      return "idt";
	case ENTRYMAP_LSTAR:    return "lstar";
	case ENTRYMAP_CSTAR:    return "cstar";
	case ENTRYMAP_SYSENTER: return "sysenter";
	case ENTRYMAP_OTHER:    return "other";
	}
	return "?";
}

static const char *where(const struct entrymap *m, uint64_t a, char *buf, size_t len)
{
	if (m->symtab)
		return sym__describe(m->symtab, a, buf, len);
	snprintf(buf, len, "0x%llx", (unsigned long long)a);
	return buf;
}

struct counts {
	size_t reached, gs_user, cr3_user, stack_switch, irq_on, unknown_gs, unknown_cr3, unknown_stack;
};

static void count(const struct entrymap *m, struct counts *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < m->code.n; i++) {
		const struct win_state *s = &m->map.at[i].in;

		if (!window__reached(s))
			continue;
		c->reached++;
		c->gs_user += (s->gs & WIN_USER) != 0;
		c->cr3_user += (s->cr3 & WIN_USER) != 0;
		c->irq_on += (s->irq & WIN_IRQ_ON) != 0;
		c->unknown_gs += (s->gs & WIN_UNKNOWN) != 0;
		c->unknown_cr3 += (s->cr3 & WIN_UNKNOWN) != 0;
		c->unknown_stack += (s->stack & WIN_UNKNOWN) != 0;
	}
}

void entrymap__print(FILE *f, const struct entrymap *m)
{
	const struct kinject_layout *l = &m->layout;
	struct counts c;
	char a[128], b[128];

	count(m, &c);
	fprintf(f, "# kinject map: variant %.16s, scenario %.32s\n", l->variant, l->scenario);
	fprintf(f, "# entry text [0x%llx, 0x%llx): %zu instructions, %zu reached, %zu undecodable\n",
		(unsigned long long)l->entry_text_start, (unsigned long long)l->entry_text_end,
		m->code.n, c.reached, m->code.nbad);
	fprintf(f, "# cr3: kernel 0x%llx user 0x%llx%s; percpu 0x%llx; TSS 0x%llx rsp0 %s\n",
		(unsigned long long)l->kernel_cr3, (unsigned long long)l->user_cr3,
		pti_on(l) ? "" : " (no PTI)", (unsigned long long)l->percpu,
		(unsigned long long)m->tss_base, where(m, m->tss_rsp0, a, sizeof(a)));
	for (int k = 1; k <= 7; k++)
		if (m->tss_ist[k])
			fprintf(f, "#   ist%d 0x%llx %s (%s stack)\n", k, (unsigned long long)m->tss_ist[k],
				where(m, m->tss_ist[k], a, sizeof(a)),
				window__stack_name(stack_bits(l, m->tss_ist[k]), b, sizeof(b)));
	fprintf(f, "# entry points: %zu (IDT: %u present gates, %u outside the entry text)\n",
		m->nentries, m->idt_present, m->idt_outside);
	/* Runs of gates with one stride (irq stubs) on one line. */
	for (size_t k = 0; k < m->nentries;) {
		const struct entrymap_entry *e = &m->entries[k];
		size_t run = 1;

		if (e->kind == ENTRYMAP_IDT) {
			int64_t stride = k + 1 < m->nentries ? (int64_t)(m->entries[k + 1].addr - e->addr) : 0;

			while (k + run < m->nentries && stride > 0) {
				const struct entrymap_entry *p = &m->entries[k + run - 1], *q = &m->entries[k + run];

				if (q->kind != ENTRYMAP_IDT || q->vector != p->vector + 1 || q->ist != p->ist ||
				    q->dpl != p->dpl || q->trap_gate != p->trap_gate ||
				    (int64_t)(q->addr - p->addr) != stride)
					break;
				run++;
			}
			if (run < 3)
				run = 1;
		}
		if (run > 1)
			fprintf(f, "#   idt 0x%02x-0x%02x -> %s .. %s (stride 0x%llx, ist %u, dpl %u)\n",
				e->vector, m->entries[k + run - 1].vector, where(m, e->addr, a, sizeof(a)),
				where(m, m->entries[k + run - 1].addr, b, sizeof(b)),
				(unsigned long long)(m->entries[k + 1].addr - e->addr), e->ist, e->dpl);
		else if (e->kind == ENTRYMAP_IDT)
			fprintf(f, "#   idt 0x%02x -> %s (ist %u, dpl %u, %s gate)\n", e->vector,
				where(m, e->addr, a, sizeof(a)), e->ist, e->dpl, e->trap_gate ? "trap" : "interrupt");
		else
			fprintf(f, "#   %s -> %s (%s: %s)\n", kind_name(e->kind), where(m, e->addr, a, sizeof(a)),
				e->origins ? "from user" : "from kernel code",
				window__state_str(e->origins ? &e->from_user : &e->from_kernel, b, sizeof(b)));
		k += run;
	}
	fprintf(f, "# windows: %zu instructions with user GS, %zu with user CR3, %zu with IRQs on; "
		"unknown: gs %zu, cr3 %zu, stack %zu\n", c.gs_user, c.cr3_user, c.irq_on,
		c.unknown_gs, c.unknown_cr3, c.unknown_stack);
	fprintf(f, "# classifier passes: %u%s\n", m->passes, m->converged ? " (stable)" : " (NOT stable)");
	window__print(f, &m->map, m->symtab);
	for (size_t k = 0; k < m->nnotes; k++)
		fprintf(f, "# note: %s: %s\n", where(m, m->notes[k].addr, a, sizeof(a)), m->notes[k].what);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void entrymap__print_json(FILE *f, const struct entrymap *m)
{
	const struct kinject_layout *l = &m->layout;
	char a[128], g[16], c3[16], st[64], q[16], text[320];

	fprintf(f, "{\"variant\":");
	snprintf(a, sizeof(a), "%.16s", l->variant);
	json_str(f, a);
	fprintf(f, ",\"scenario\":");
	snprintf(a, sizeof(a), "%.32s", l->scenario);
	json_str(f, a);
	fprintf(f, ",\"entry_text\":[\"0x%llx\",\"0x%llx\"],\"passes\":%u,\"stable\":%s,\"entries\":[",
		(unsigned long long)l->entry_text_start, (unsigned long long)l->entry_text_end,
		m->passes, m->converged ? "true" : "false");
	for (size_t k = 0; k < m->nentries; k++) {
		const struct entrymap_entry *e = &m->entries[k];

		fprintf(f, "%s{\"kind\":\"%s\",\"vector\":%d,\"addr\":\"0x%llx\",\"where\":", k ? "," : "",
			kind_name(e->kind), e->vector, (unsigned long long)e->addr);
		json_str(f, where(m, e->addr, a, sizeof(a)));
		fprintf(f, ",\"ist\":%u,\"dpl\":%u,\"origins\":\"%s\"}", e->ist, e->dpl,
			e->origins == (WIN_USER | WIN_KERNEL) ? "both" : e->origins ? "user" : "none");
	}
	fprintf(f, "],\"insns\":[");
	for (size_t i = 0; i < m->code.n; i++) {
		const struct insn *in = &m->code.insns[i];
		const struct win_state *s = &m->map.at[i].in;

		fprintf(f, "%s\n{\"addr\":\"0x%llx\",\"where\":", i ? "," : "", (unsigned long long)in->addr);
		json_str(f, where(m, in->addr, a, sizeof(a)));
		fprintf(f, ",\"text\":");
		json_str(f, analysis__text(in, text, sizeof(text)));
		fprintf(f, ",\"entry\":%s", m->map.at[i].is_entry ? "true" : "false");
		for (int k = 0; k < 3; k++) {
			static const char *const names[3] = { "", "from_user_", "from_kernel_" };
			const struct win_state *t = k == 0 ? s : k == 1 ? &m->map.at[i].from_user
								       : &m->map.at[i].from_kernel;

			fprintf(f, ",\"%sgs\":\"%s\",\"%scr3\":\"%s\",\"%sstack\":\"%s\",\"%sirq\":\"%s\"",
				names[k], window__side_name(t->gs, g, sizeof(g)),
				names[k], window__side_name(t->cr3, c3, sizeof(c3)),
				names[k], window__stack_name(t->stack, st, sizeof(st)),
				names[k], window__irq_name(t->irq, q, sizeof(q)));
		}
		fputc('}', f);
	}
	fprintf(f, "],\"notes\":[");
	for (size_t k = 0; k < m->map.nnotes + m->nnotes; k++) {
		const struct win_note *n = k < m->map.nnotes ? &m->map.notes[k] : &m->notes[k - m->map.nnotes];

		fprintf(f, "%s{\"where\":", k ? "," : "");
		json_str(f, where(m, n->addr, a, sizeof(a)));
		fprintf(f, ",\"what\":");
		json_str(f, n->what);
		fputc('}', f);
	}
	fprintf(f, "]}\n");
}
