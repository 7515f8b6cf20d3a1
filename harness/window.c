/* SPDX-License-Identifier: MIT */
/*
 * The static window map (see window.h for the rules).  A plain worklist
 * dataflow: states are small bitmasks merged by union, so every state only
 * grows and the fixpoint is reached after at most a few passes per
 * instruction.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "window.h"

/* Internal call targets: the rets reachable from each, and the sites that
 * call it, so a ret can hand its state back to the right return sites. */
struct callee {
	size_t idx;                   /* index of the call target */
	size_t *sites, nsites;        /* indices of the call instructions */
	size_t *rets, nrets;          /* indices of the rets it reaches */
};

struct builder {
	const struct code_range *c;
	const struct win_ops *ops;
	struct win_map *m;
	struct callee *callees;
	size_t ncallees;
	size_t **ret_owners;          /* per insn: callee slots owning a ret */
	size_t *nret_owners;
	size_t *queue;                /* circular worklist */
	bool *queued;
	size_t qhead, qlen;
	struct win_state *cur;        /* per insn, this origin's run */
	unsigned origin;              /* of this run: WIN_USER, WIN_KERNEL, 0 */
};

/* ---- small helpers -------------------------------------------------------- */

static int push_idx(size_t **arr, size_t *n, size_t v)
{
	size_t *bigger;

	for (size_t i = 0; i < *n; i++)
		if ((*arr)[i] == v)
			return 0;
	bigger = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!bigger)
		return vmm__fail("window: out of memory");
	*arr = bigger;
	(*arr)[(*n)++] = v;
	return 0;
}

static int add_pred(struct win_insn *w, size_t from)
{
	uint32_t *bigger;

	for (uint32_t i = 0; i < w->npreds; i++)
		if (w->preds[i] == from)
			return 0;
	bigger = realloc(w->preds, (w->npreds + 1) * sizeof(*bigger));
	if (!bigger)
		return vmm__fail("window: out of memory");
	w->preds = bigger;
	w->preds[w->npreds++] = (uint32_t)from;
	return 0;
}

int window__add_note(struct win_note **notes, size_t *n, uint64_t addr, const char *fmt, ...)
{
	struct win_note note = { .addr = addr }, *bigger;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note.what, sizeof(note.what), fmt, ap);
	va_end(ap);
	/* Instructions are revisited until the fixpoint: say things once. */
	for (size_t i = 0; i < *n; i++)
		if ((*notes)[i].addr == addr && !strcmp((*notes)[i].what, note.what))
			return 0;
	bigger = realloc(*notes, (*n + 1) * sizeof(*bigger));
	if (!bigger)
		return vmm__fail("window: out of memory");
	*notes = bigger;
	(*notes)[(*n)++] = note;
	return 0;
}

#define note(m, addr, ...) window__add_note(&(m)->notes, &(m)->nnotes, (addr), __VA_ARGS__)

static bool state__merge(struct win_state *into, const struct win_state *s)
{
	struct win_state old = *into;

	into->gs |= s->gs;
	into->cr3 |= s->cr3;
	into->stack |= s->stack;
	into->irq |= s->irq;
	return memcmp(&old, into, sizeof(old)) != 0;
}

bool window__reached(const struct win_state *s)
{
	return s && (s->gs || s->cr3 || s->stack || s->irq);
}

/* Index of the instruction starting at addr, -1 outside the range, -2 if
 * addr is inside the range but in the middle of an instruction. */
static long target_index(const struct code_range *c, uint64_t addr)
{
	long i = analysis__index(c, addr);

	if (i < 0)
		return -1;
	return c->insns[i].addr == addr ? i : -2;
}

/* Paths end here: nothing after them executes in this context. */
static bool insn__ends_path(const struct insn *in)
{
	return in->flags & (INSN_IRET | INSN_SYSRET | INSN_SYSEXIT | INSN_UD |
			    INSN_FAR_XFER | INSN_BAD);
}

/* ---- transfer ------------------------------------------------------------- */

/* The built-in rule for RSP loads nobody classified: arithmetic on RSP
 * itself (sub $N, and $-16, lea -8(%rsp)) stays on the same stack;
 * anything that loads RSP from elsewhere is unknown. */
unsigned window__rsp_default(const struct insn *in)
{
	unsigned gprs = 0;

	switch (in->id) {
	case X86_INS_ADD:
	case X86_INS_SUB:
	case X86_INS_AND:
		return in->op_str[0] == '$' ? WIN_SAME : WIN_UNKNOWN;
	case X86_INS_LEA:
		for (unsigned r = 0; r < in->nregs_read; r++)
			if (analysis__reg64(in->regs_read[r]) != X86_REG_RSP)
				gprs++;
		return analysis__reads_reg(in, X86_REG_RSP) && !gprs ? WIN_SAME : WIN_UNKNOWN;
	default:
		return WIN_UNKNOWN;
	}
}

static void transfer(struct builder *b, size_t i, const struct win_state *before,
		     struct win_state *after)
{
	const struct insn *in = &b->c->insns[i];
	const struct win_ops *o = b->ops;
	unsigned r;

	*after = *before;
	if (in->flags & INSN_SWAPGS)
		after->gs = (uint8_t)((before->gs & WIN_UNKNOWN) |
				      ((before->gs & WIN_USER) ? WIN_KERNEL : 0) |
				      ((before->gs & WIN_KERNEL) ? WIN_USER : 0));
	if (in->flags & INSN_CR3_WRITE) {
		r = o && o->classify_cr3 ? o->classify_cr3(b->c, i, before, o->ctx) : WIN_UNKNOWN;
		if (r != WIN_SAME)
			after->cr3 = (uint8_t)r;
	}
	if (in->flags & (INSN_WRGSBASE | INSN_WRMSR)) {
		if (o && o->classify_gs)
			r = o->classify_gs(b->c, i, before, o->ctx);
		else
			r = (in->flags & INSN_WRGSBASE) ? WIN_UNKNOWN : WIN_SAME;
		if (r != WIN_SAME)
			after->gs = (uint8_t)r;
	}
	if (in->flags & INSN_CLI)
		after->irq = WIN_IRQ_OFF;
	if (in->flags & INSN_STI)
		after->irq = WIN_IRQ_ON;
	if (in->flags & INSN_POPF) {
		r = o && o->classify_popf ? o->classify_popf(b->c, i, before, o->ctx) : WIN_UNKNOWN;
		if (r != WIN_SAME)
			after->irq = (uint8_t)r;
	}
	if (in->flags & INSN_LOADS_RSP) {
		r = o && o->classify_rsp ? o->classify_rsp(b->c, i, before, o->ctx)
					 : window__rsp_default(in);
		if (r != WIN_SAME)
			after->stack = (uint8_t)r;
	}
}

/* ---- the worklist ----------------------------------------------------------- */

static void enqueue(struct builder *b, size_t i)
{
	size_t n = b->c->n;

	if (b->queued[i])
		return;
	b->queued[i] = true;
	b->queue[(b->qhead + b->qlen) % n] = i;
	b->qlen++;
}

static int flow(struct builder *b, size_t from, size_t to, const struct win_state *s)
{
	if (add_pred(&b->m->at[to], from))
		return -1;
	if (state__merge(&b->cur[to], s))
		enqueue(b, to);
	return 0;
}

static struct callee *callee__find(struct builder *b, size_t idx)
{
	for (size_t k = 0; k < b->ncallees; k++)
		if (b->callees[k].idx == idx)
			return &b->callees[k];
	return NULL;
}

/* A direct branch: into the range, out of it, or into the middle of an
 * instruction (which a linear sweep cannot follow). */
static int branch(struct builder *b, size_t i, const struct win_state *s, const char *what)
{
	const struct insn *in = &b->c->insns[i];
	long t = target_index(b->c, in->target);

	if (t >= 0)
		return flow(b, i, (size_t)t, s);
	if (t == -2)
		return note(b->m, in->addr, "%s into the middle of an instruction (0x%llx)",
			    what, (unsigned long long)in->target);
	return note(b->m, in->addr, "%s leaves the range to 0x%llx: path not followed",
		    what, (unsigned long long)in->target);
}

static int fallthrough(struct builder *b, size_t i, const struct win_state *s)
{
	if (i + 1 < b->c->n)
		return flow(b, i, i + 1, s);
	return note(b->m, b->c->insns[i].addr, "execution falls off the end of the range");
}

static int step(struct builder *b, size_t i)
{
	const struct insn *in = &b->c->insns[i];
	struct win_state s;

	transfer(b, i, &b->cur[i], &s);

	if (in->flags & INSN_BAD)
		return note(b->m, in->addr, "undecodable bytes reached");
	if (insn__ends_path(in))
		return 0;
	if ((in->flags & INSN_CR3_WRITE) && !(b->ops && b->ops->classify_cr3))
		if (note(b->m, in->addr, "CR3 write not classified (no classifier)"))
			return -1;

	if (in->flags & INSN_RET) {
		/* Back to every reached site that calls a function owning
		 * this ret; rets nobody calls (in the range) end the path. */
		for (size_t k = 0; k < b->nret_owners[i]; k++) {
			struct callee *ce = &b->callees[b->ret_owners[i][k]];

			for (size_t j = 0; j < ce->nsites; j++) {
				size_t site = ce->sites[j];

				if (window__reached(&b->cur[site]) && site + 1 < b->c->n)
					if (flow(b, i, site + 1, &s))
						return -1;
			}
		}
		return 0;
	}
	if (in->flags & INSN_JMP) {
		if (in->flags & INSN_INDIRECT)
			return note(b->m, in->addr, "indirect jmp: targets unknown, path not followed");
		return in->has_target ? branch(b, i, &s, "jmp") : 0;
	}
	if (in->flags & INSN_JCC) {
		/* A test of the origin: this run follows only its own edge. */
		unsigned taken_if = b->origin && b->ops && b->ops->classify_branch
				    ? b->ops->classify_branch(b->c, i, b->ops->ctx) : 0;
		bool take = !taken_if || taken_if == b->origin;
		bool fall = !taken_if || taken_if != b->origin;

		if (take && in->has_target && branch(b, i, &s, "branch"))
			return -1;
		return fall ? fallthrough(b, i, &s) : 0;
	}
	if (in->flags & INSN_CALL) {
		long t = in->has_target ? target_index(b->c, in->target) : -1;
		struct callee *ce;

		if (in->flags & INSN_INDIRECT) {
			if (note(b->m, in->addr, "indirect call: assumed to return with windows preserved"))
				return -1;
			return fallthrough(b, i, &s);
		}
		if (t == -2)
			return note(b->m, in->addr, "call into the middle of an instruction (0x%llx)",
				    (unsigned long long)in->target);
		if (t < 0)   /* a C handler: windows preserved across it */
			return fallthrough(b, i, &s);
		if (flow(b, i, (size_t)t, &s))
			return -1;
		/* A call reached late still gets what the callee's rets
		 * already know. */
		ce = callee__find(b, (size_t)t);
		for (size_t j = 0; ce && j < ce->nrets; j++) {
			size_t r = ce->rets[j];

			if (window__reached(&b->cur[r]) && i + 1 < b->c->n)
				if (flow(b, r, i + 1, &b->cur[r]))
					return -1;
		}
		return 0;
	}
	return fallthrough(b, i, &s);
}

/* ---- internal calls ------------------------------------------------------------ */

/* The rets a callee reaches without following its own calls (those return
 * to it) and without leaving through iret/sysret or indirect jumps. */
static int callee__scan(struct builder *b, size_t slot, uint32_t *stamp, size_t *stack)
{
	const struct code_range *c = b->c;
	struct callee *ce = &b->callees[slot];
	size_t sp = 0;
	uint32_t mark = (uint32_t)slot + 1;

	stack[sp++] = ce->idx;
	stamp[ce->idx] = mark;
	while (sp) {
		size_t i = stack[--sp], next[2];
		const struct insn *in = &c->insns[i];
		int nn = 0;
		long t;

		if (insn__ends_path(in))
			continue;
		if (in->flags & INSN_RET) {
			if (push_idx(&ce->rets, &ce->nrets, i) ||
			    push_idx(&b->ret_owners[i], &b->nret_owners[i], slot))
				return -1;
			continue;
		}
		if ((in->flags & (INSN_JMP | INSN_JCC)) && in->has_target && !(in->flags & INSN_INDIRECT)) {
			t = target_index(c, in->target);
			if (t >= 0)
				next[nn++] = (size_t)t;
		}
		if (!(in->flags & INSN_JMP) && i + 1 < c->n)
			next[nn++] = i + 1;
		for (int k = 0; k < nn; k++) {
			if (stamp[next[k]] == mark)
				continue;
			stamp[next[k]] = mark;
			stack[sp++] = next[k];
		}
	}
	return 0;
}

static int callees__find(struct builder *b)
{
	const struct code_range *c = b->c;
	uint32_t *stamp;
	size_t *stack;
	int ret = 0;

	for (size_t i = 0; i < c->n; i++) {
		const struct insn *in = &c->insns[i];
		struct callee *ce, *bigger;
		long t;

		if (!(in->flags & INSN_CALL) || !in->has_target || (in->flags & INSN_INDIRECT))
			continue;
		t = target_index(c, in->target);
		if (t < 0)
			continue;
		ce = callee__find(b, (size_t)t);
		if (!ce) {
			bigger = realloc(b->callees, (b->ncallees + 1) * sizeof(*bigger));
			if (!bigger)
				return vmm__fail("window: out of memory");
			b->callees = bigger;
			ce = &b->callees[b->ncallees++];
			memset(ce, 0, sizeof(*ce));
			ce->idx = (size_t)t;
		}
		if (push_idx(&ce->sites, &ce->nsites, i))
			return -1;
	}
	if (!b->ncallees)
		return 0;
	stamp = calloc(c->n, sizeof(*stamp));
	/* Each instruction is pushed at most once per scan, plus two
	 * successors of the last one popped. */
	stack = malloc((c->n + 2) * sizeof(*stack));
	if (!stamp || !stack) {
		free(stamp);
		free(stack);
		return vmm__fail("window: out of memory");
	}
	for (size_t k = 0; k < b->ncallees && !ret; k++)
		ret = callee__scan(b, k, stamp, stack);
	free(stamp);
	free(stack);
	return ret;
}

/* ---- build ---------------------------------------------------------------------- */

static void builder__free(struct builder *b)
{
	for (size_t k = 0; k < b->ncallees; k++) {
		free(b->callees[k].sites);
		free(b->callees[k].rets);
	}
	free(b->callees);
	if (b->ret_owners)
		for (size_t i = 0; i < b->c->n; i++)
			free(b->ret_owners[i]);
	free(b->ret_owners);
	free(b->nret_owners);
	free(b->queue);
	free(b->queued);
	free(b->cur);
}

int window__build(const struct code_range *code, const struct win_entry *entries,
		  size_t nentries, const struct win_ops *ops, struct win_map *out)
{
	struct builder b = { .c = code, .ops = ops, .m = out };
	int ret = -1;

	if (!out)
		return vmm__fail("window: no output map");
	memset(out, 0, sizeof(*out));
	if (!code || !code->n || !code->insns)
		return vmm__fail("window: no decoded code");
	if (!entries || !nentries)
		return vmm__fail("window: no entry points");
	if (code->n > UINT32_MAX)
		return vmm__fail("window: %zu instructions is too many", code->n);
	out->code = code;
	out->at = calloc(code->n, sizeof(*out->at));
	b.ret_owners = calloc(code->n, sizeof(*b.ret_owners));
	b.nret_owners = calloc(code->n, sizeof(*b.nret_owners));
	b.queue = malloc(code->n * sizeof(*b.queue));
	b.queued = calloc(code->n, sizeof(*b.queued));
	b.cur = calloc(code->n, sizeof(*b.cur));
	if (!out->at || !b.ret_owners || !b.nret_owners || !b.queue || !b.queued || !b.cur) {
		vmm__fail("window: out of memory for %zu instructions", code->n);
		goto out;
	}
	for (size_t e = 0; e < nentries; e++) {
		long t = target_index(code, entries[e].addr);
		const struct win_state *st = &entries[e].state;

		if (t < 0) {
			vmm__fail("window: entry 0x%llx is not an instruction start in [0x%llx, 0x%llx)",
				  (unsigned long long)entries[e].addr, (unsigned long long)code->base,
				  (unsigned long long)(code->base + code->len));
			goto out;
		}
		if (!st->gs || !st->cr3 || !st->stack || !st->irq) {
			vmm__fail("window: entry 0x%llx has an empty initial state",
				  (unsigned long long)entries[e].addr);
			goto out;
		}
		if (entries[e].origin != 0 && entries[e].origin != WIN_USER &&
		    entries[e].origin != WIN_KERNEL) {
			vmm__fail("window: entry 0x%llx: origin must be WIN_USER, WIN_KERNEL or 0",
				  (unsigned long long)entries[e].addr);
			goto out;
		}
		out->at[t].is_entry = true;
	}
	if (callees__find(&b))
		goto out;
	/* One run per origin; see window.h for why. */
	for (unsigned run = 0; run < 3; run++) {
		static const unsigned origins[3] = { WIN_USER, WIN_KERNEL, 0 };
		bool any = false;

		b.origin = origins[run];
		memset(b.cur, 0, code->n * sizeof(*b.cur));
		for (size_t e = 0; e < nentries; e++) {
			if (entries[e].origin != b.origin)
				continue;
			size_t t = (size_t)target_index(code, entries[e].addr);

			state__merge(&b.cur[t], &entries[e].state);
			enqueue(&b, t);
			any = true;
		}
		if (!any)
			continue;
		while (b.qlen) {
			size_t i = b.queue[b.qhead];

			b.qhead = (b.qhead + 1) % code->n;
			b.qlen--;
			b.queued[i] = false;
			out->iterations++;
			if (step(&b, i))
				goto out;
		}
		for (size_t i = 0; i < code->n; i++) {
			state__merge(&out->at[i].in, &b.cur[i]);
			if (b.origin == WIN_USER)
				out->at[i].from_user = b.cur[i];
			else if (b.origin == WIN_KERNEL)
				out->at[i].from_kernel = b.cur[i];
		}
	}
	ret = 0;
out:
	builder__free(&b);
	if (ret)
		window__free(out);
	return ret;
}

void window__free(struct win_map *m)
{
	if (!m)
		return;
	if (m->at && m->code)
		for (size_t i = 0; i < m->code->n; i++)
			free(m->at[i].preds);
	free(m->at);
	free(m->notes);
	memset(m, 0, sizeof(*m));
}

/* ---- queries ------------------------------------------------------------------- */

int window__at(const struct win_map *m, uint64_t addr, struct win_state *out)
{
	long i;

	if (!m || !m->code || !m->at)
		return vmm__fail("window: no map");
	i = target_index(m->code, addr);
	if (i < 0)
		return vmm__fail("window: 0x%llx is not an instruction start of the mapped range",
				 (unsigned long long)addr);
	if (out)
		*out = m->at[i].in;
	return 0;
}

int window__at_origin(const struct win_map *m, uint64_t addr, unsigned origin,
		      struct win_state *out)
{
	long i;

	if (!m || !m->code || !m->at)
		return vmm__fail("window: no map");
	if (origin != WIN_USER && origin != WIN_KERNEL)
		return vmm__fail("window: origin must be WIN_USER or WIN_KERNEL");
	i = target_index(m->code, addr);
	if (i < 0)
		return vmm__fail("window: 0x%llx is not an instruction start of the mapped range",
				 (unsigned long long)addr);
	if (out)
		*out = origin == WIN_USER ? m->at[i].from_user : m->at[i].from_kernel;
	return 0;
}

unsigned window__branch_cs_rpl(const struct code_range *c, size_t i, void *ctx)
{
	const struct insn *j, *t;

	if (!c || i == 0 || i >= c->n)
		return 0;
	j = &c->insns[i];
	t = &c->insns[i - 1];
	if (t->id != X86_INS_TEST || t->nmem != 1 || analysis__reg64(t->mem[0].base) != X86_REG_RSP ||
	    t->mem[0].index || t->mem[0].segment || strncmp(t->op_str, "$3,", 3))
		return 0;
	/* RPL 0 sets ZF: jz/je is taken for kernel-mode events. */
	if (j->id == X86_INS_JE)
		return WIN_KERNEL;
	if (j->id == X86_INS_JNE)
		return WIN_USER;
	return 0;
}

static bool dim__fits(unsigned seen, unsigned allowed)
{
	if (!seen)
		return true;
	if (allowed & WIN_UNKNOWN)
		return true;
	return (seen & allowed) == seen;
}

bool window__check(const struct win_map *m, uint64_t addr, const struct win_state *seen,
		   char *why, size_t len)
{
	struct win_state st;
	char a[64], b2[64];

	if (why && len)
		why[0] = '\0';
	if (!seen || window__at(m, addr, &st)) {
		if (why && len)
			snprintf(why, len, "0x%llx is not in the map", (unsigned long long)addr);
		return false;
	}
	if (!window__reached(&st)) {
		if (why && len)
			snprintf(why, len, "the map says 0x%llx is unreachable", (unsigned long long)addr);
		return false;
	}
#define CHECK(dim, label, namefn) \
	if (!dim__fits(seen->dim, st.dim)) { \
		if (why && len) \
			snprintf(why, len, label " %s, map says %s", \
				 namefn(seen->dim, a, sizeof(a)), namefn(st.dim, b2, sizeof(b2))); \
		return false; \
	}
	CHECK(gs, "GS", window__side_name)
	CHECK(cr3, "CR3", window__side_name)
	CHECK(stack, "stack", window__stack_name)
	CHECK(irq, "IRQs", window__irq_name)
#undef CHECK
	return true;
}

/* ---- names and the printable map ---------------------------------------------------- */

char *window__side_name(unsigned v, char *buf, size_t len)
{
	const char *s;

	if (!v)
		s = "-";
	else if (v & WIN_UNKNOWN)
		s = "unknown";
	else if ((v & WIN_BOTH) == WIN_BOTH)
		s = "both";
	else
		s = (v & WIN_USER) ? "user" : "kernel";
	snprintf(buf, len, "%s", s);
	return buf;
}

char *window__irq_name(unsigned v, char *buf, size_t len)
{
	const char *s;

	if (!v)
		s = "-";
	else if (v & WIN_UNKNOWN)
		s = "unknown";
	else if ((v & (WIN_IRQ_ON | WIN_IRQ_OFF)) == (WIN_IRQ_ON | WIN_IRQ_OFF))
		s = "both";
	else
		s = (v & WIN_IRQ_ON) ? "on" : "off";
	snprintf(buf, len, "%s", s);
	return buf;
}

char *window__stack_name(unsigned v, char *buf, size_t len)
{
	static const char *const names[] = {
		[KINJECT_STACK_TASK] = "task", [KINJECT_STACK_IRQ] = "irq",
		[KINJECT_STACK_IST] = "ist", [KINJECT_STACK_ENTRY] = "entry",
		[KINJECT_STACK_ESPFIX] = "espfix", [KINJECT_STACK_USER] = "user",
	};
	size_t used = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	if (!v || (v & WIN_UNKNOWN)) {
		snprintf(buf, len, "%s", v ? "unknown" : "-");
		return buf;
	}
	for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (!names[k] || !(v & WIN_STACK(k)))
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? "|" : "", names[k]);
		if (n < 0 || (size_t)n >= len - used) {
			buf[used] = '\0';   /* whole names only */
			break;
		}
		used += (size_t)n;
	}
	return buf;
}

char *window__state_str(const struct win_state *s, char *buf, size_t len)
{
	char g[16], c[16], st[64], q[16];

	snprintf(buf, len, "gs=%s cr3=%s stack=%s irq=%s",
		 window__side_name(s->gs, g, sizeof(g)), window__side_name(s->cr3, c, sizeof(c)),
		 window__stack_name(s->stack, st, sizeof(st)), window__irq_name(s->irq, q, sizeof(q)));
	return buf;
}

void window__print(FILE *f, const struct win_map *m, const struct symtab *t)
{
	if (!f || !m || !m->code || !m->at)
		return;
	fprintf(f, "# %-16s  %-32s %-48s %-7s %-7s %-16s %s\n",
		"address", "where", "instruction", "gs", "cr3", "stack", "irq");
	for (size_t i = 0; i < m->code->n; i++) {
		const struct insn *in = &m->code->insns[i];
		const struct win_state *s = &m->at[i].in;
		char where[128], text[320], g[16], c[16], st[64], q[16];

		if (t)
			sym__describe(t, in->addr, where, sizeof(where));
		else
			snprintf(where, sizeof(where), "-");
		analysis__text(in, text, sizeof(text));
		/* Name branch targets, as objdump does: "callq 0x... <do_irq>". */
		if (t && in->has_target) {
			char tgt[128];
			size_t used = strlen(text);

			snprintf(text + used, sizeof(text) - used, " <%s>",
				 sym__describe(t, in->target, tgt, sizeof(tgt)));
		}
		fprintf(f, "%c %016llx  %-32s %-48s %-7s %-7s %-16s %s\n",
			m->at[i].is_entry ? '>' : ' ', (unsigned long long)in->addr, where, text,
			window__side_name(s->gs, g, sizeof(g)), window__side_name(s->cr3, c, sizeof(c)),
			window__stack_name(s->stack, st, sizeof(st)), window__irq_name(s->irq, q, sizeof(q)));
	}
	for (size_t k = 0; k < m->nnotes; k++) {
		char where[128];

		if (t)
			sym__describe(t, m->notes[k].addr, where, sizeof(where));
		else
			snprintf(where, sizeof(where), "0x%llx", (unsigned long long)m->notes[k].addr);
		fprintf(f, "# note: %s: %s\n", where, m->notes[k].what);
	}
}
