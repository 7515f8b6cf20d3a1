/* SPDX-License-Identifier: MIT */
/*
 * Case files: parser, canonical writer, checks.  The grammar is line
 * oriented and word based (see docs/case-format.md): a line is a keyword and
 * whitespace-separated words, ';' is a word of its own, '#' starts a
 * comment anywhere.  Everything is validated here, so the harness can trust
 * a parsed case except for what needs the guest (symbols: case__resolve).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE          /* open_memstream, strdup */
#endif
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <kinject/abi.h>
#include "case.h"

#define CASE_MAX_WORDS     64
#define CASE_MAX_FILE      (1 << 20)

/* ---- names ---------------------------------------------------------------- */

static const char *const exc_names[32] = {
	[0] = "de", [1] = "db", [2] = "nmi", [3] = "bp", [4] = "of", [5] = "br",
	[6] = "ud", [7] = "nm", [8] = "df", [10] = "ts", [11] = "np", [12] = "ss",
	[13] = "gp", [14] = "pf", [16] = "mf", [17] = "ac", [18] = "mc", [19] = "xm",
	[20] = "ve", [21] = "cp",
};

int case__exception_vector(const char *name)
{
	for (int v = 0; v < 32; v++)
		if (exc_names[v] && !strcmp(exc_names[v], name))
			return v;
	return -1;
}

const char *case__exception_name(unsigned vector)
{
	return vector < 32 ? exc_names[vector] : NULL;
}

bool case__vector_has_error_code(unsigned vector)
{
	switch (vector) {
	case 8: case 10: case 11: case 12: case 13: case 14: case 17: case 21:
		return true;
	default:
		return false;
	}
}

static const char *const pred_names[CASE_NPREDS] = {
	[CASE_PRED_CPL] = "cpl", [CASE_PRED_IF] = "if",
	[CASE_PRED_NMI_BLOCKED] = "nmi_blocked", [CASE_PRED_SHADOW] = "shadow",
	[CASE_PRED_IRQ_STACK] = "irq_stack", [CASE_PRED_SS16] = "ss16",
};

const char *case__pred_name(enum case_pred p)
{
	return (unsigned)p < CASE_NPREDS ? pred_names[p] : "?";
}

/* ---- init, equality, free ------------------------------------------------------ */

void case__init_step(struct case_step *s)
{
	memset(s, 0, sizeof(*s));
	s->stop.hit = 1;
	for (int p = 0; p < CASE_NPREDS; p++)
		s->stop.pred[p] = CASE_ANY;
}

void case__init(struct kcase *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CASE_VERSION;
	for (size_t i = 0; i < CASE_MAX_STEPS; i++)
		case__init_step(&c->steps[i]);
}

void case__free(struct kcase *c)
{
	(void)c;
}

static bool event__equal(const struct case_event *a, const struct case_event *b)
{
	return a->kind == b->kind && a->vector == b->vector &&
	       a->has_error_code == b->has_error_code &&
	       (!a->has_error_code || a->error_code == b->error_code) &&
	       a->has_cr2 == b->has_cr2 && (!a->has_cr2 || a->cr2 == b->cr2) &&
	       a->has_dr6 == b->has_dr6 && (!a->has_dr6 || a->dr6 == b->dr6) &&
	       a->force == b->force;
}

bool case__equal(const struct kcase *a, const struct kcase *b)
{
	if (a->version != b->version || strcmp(a->title, b->title) ||
	    strcmp(a->variant, b->variant) || strcmp(a->scenario, b->scenario) ||
	    strcmp(a->guest, b->guest) || a->npatches != b->npatches || a->nsteps != b->nsteps ||
	    a->budget_exits != b->budget_exits || a->budget_steps != b->budget_steps ||
	    a->mode != b->mode || a->expect != b->expect || strcmp(a->oracle, b->oracle))
		return false;
	for (size_t i = 0; i < a->npatches; i++) {
		const struct case_patch *p = &a->patches[i], *q = &b->patches[i];

		if (strcmp(p->where, q->where) || p->len != q->len || memcmp(p->bytes, q->bytes, p->len))
			return false;
	}
	for (size_t i = 0; i < a->nsteps; i++) {
		const struct case_step *s = &a->steps[i], *t = &b->steps[i];

		if (strcmp(s->stop.where, t->stop.where) || s->stop.hit != t->stop.hit ||
		    memcmp(s->stop.pred, t->stop.pred, sizeof(s->stop.pred)) ||
		    !event__equal(&s->inject, &t->inject))
			return false;
	}
	return true;
}

/* ---- the parser ------------------------------------------------------------------ */

/* Keywords that may appear once, for the duplicate check. */
enum once { ONCE_TITLE, ONCE_VARIANT, ONCE_SCENARIO, ONCE_GUEST, ONCE_MODE, ONCE_EXPECT,
	    ONCE_BUDGET_EXITS, ONCE_BUDGET_STEPS, ONCE_N };
static const char *const once_names[ONCE_N] = {
	"title", "variant", "scenario", "guest", "mode", "expect", "budget exits", "budget steps",
};

struct parser {
	const char *name;
	unsigned line;
	struct kcase *c;
	unsigned seen[ONCE_N];        /* line of the first occurrence, 0 = none */
	char *w[CASE_MAX_WORDS];
	int nw;
	int pos;                      /* next word */
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line: "NAME:LINE: expected X, got Y" (the fmt supplies X and Y). */
static int perr(struct parser *p, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vmm__fail("%s:%u: %s", p->name, p->line, msg);
}

/* How to show the word at i in "got ..." (quoted, shortened). */
static const char *got(struct parser *p, int i, char *buf, size_t len)
{
	if (i >= p->nw)
		snprintf(buf, len, "end of line");
	else if (strlen(p->w[i]) > 40)
		snprintf(buf, len, "'%.40s...'", p->w[i]);
	else
		snprintf(buf, len, "'%s'", p->w[i]);
	return buf;
}

#define GOT(i) got(p, (i), gbuf, sizeof(gbuf))

/* Decimal or 0x hex, no sign, no overflow, nothing trailing. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10;

	if (!s || !*s)
		return false;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return false;
	}
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + d;
	}
	*out = v;
	return true;
}

static bool is_sym_start(char ch)
{
	return isalpha((unsigned char)ch) || ch == '_' || ch == '.' || ch == '$';
}

static bool is_sym_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '$' || ch == '@';
}

#define CASE_USER_PREFIX "user:"

/* "sym", "sym+OFF", "sym-OFF" or an address: the syntax sym__resolve() takes;
 * from version 2 also "user:" before a symbol. */
static bool where_ok(const char *s)
{
	uint64_t v;
	const char *plus;

	if (!s || !*s || strlen(s) >= CASE_WHERE_MAX)
		return false;
	if (!strncmp(s, CASE_USER_PREFIX, strlen(CASE_USER_PREFIX)))
		s += strlen(CASE_USER_PREFIX);    /* a ring-3 label: a symbol follows */
	else if (isdigit((unsigned char)s[0]))
		return parse_u64(s, &v);
	if (!is_sym_start(s[0]))
		return false;
	plus = strpbrk(s, "+-");      /* sym+OFF or sym-OFF, as sym__resolve */
	for (const char *q = s; q < (plus ? plus : s + strlen(s)); q++)
		if (!is_sym_char(*q))
			return false;
	return !plus || parse_u64(plus + 1, &v);
}

static bool name_ok(const char *s, size_t max)
{
	if (!*s || strlen(s) >= max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

static int once(struct parser *p, enum once k)
{
	if (p->seen[k])
		return perr(p, "expected one '%s' line (the first is line %u), got another",
			    once_names[k], p->seen[k]);
	p->seen[k] = p->line;
	return 0;
}

static int expect_eol(struct parser *p)
{
	char gbuf[64];

	if (p->pos < p->nw)
		return perr(p, "expected end of line, got %s", GOT(p->pos));
	return 0;
}

static int parse_name_line(struct parser *p, const char *what, char *dst, size_t max)
{
	char gbuf[64];

	if (p->pos >= p->nw || !name_ok(p->w[p->pos], max))
		return perr(p, "expected a %s name (letters, digits, '_', '-', '.'; at most %zu), got %s",
			    what, max - 1, GOT(p->pos));
	snprintf(dst, max, "%s", p->w[p->pos++]);
	return expect_eol(p);
}

/* STATE: "stop at WHERE [hit N] [when] [PRED=V ...]", up to ';'. */
static int parse_state(struct parser *p, struct case_state *st)
{
	char gbuf[64];
	bool seen_hit = false;

	if (p->pos >= p->nw || strcmp(p->w[p->pos], "stop"))
		return perr(p, "expected 'stop at', got %s", GOT(p->pos));
	p->pos++;
	if (p->pos >= p->nw || strcmp(p->w[p->pos], "at"))
		return perr(p, "expected 'at' after 'stop', got %s", GOT(p->pos));
	p->pos++;
	if (p->pos >= p->nw || !strcmp(p->w[p->pos], ";") || !where_ok(p->w[p->pos]))
		return perr(p, "expected a symbol, symbol+offset or address, got %s", GOT(p->pos));
	if (p->c->version < 2 && !strncmp(p->w[p->pos], CASE_USER_PREFIX, strlen(CASE_USER_PREFIX)))
		return perr(p, "expected 'kinject-case 2' for a %s address, got version %u",
			    CASE_USER_PREFIX, p->c->version);
	snprintf(st->where, sizeof(st->where), "%s", p->w[p->pos++]);

	while (p->pos < p->nw && strcmp(p->w[p->pos], ";")) {
		const char *w = p->w[p->pos];
		const char *eq;
		uint64_t v;
		int k;

		if (!strcmp(w, "hit")) {
			if (seen_hit)
				return perr(p, "expected one 'hit' per step, got another");
			seen_hit = true;
			p->pos++;
			if (p->pos >= p->nw || !parse_u64(p->w[p->pos], &v) || v == 0)
				return perr(p, "expected a hit count >= 1, got %s", GOT(p->pos));
			st->hit = v;
			p->pos++;
			continue;
		}
		if (!strcmp(w, "when")) {
			p->pos++;
			continue;
		}
		eq = strchr(w, '=');
		for (k = 0; eq && k < CASE_NPREDS; k++)
			if (strlen(pred_names[k]) == (size_t)(eq - w) && !strncmp(w, pred_names[k], (size_t)(eq - w)))
				break;
		if (!eq || k == CASE_NPREDS)
			return perr(p, "expected 'hit N', ';' or a predicate (cpl=, if=, nmi_blocked=, shadow=, irq_stack=, ss16=), got %s",
				    GOT(p->pos));
		if (st->pred[k] != CASE_ANY)
			return perr(p, "expected one '%s=' per step, got another", pred_names[k]);
		if (!parse_u64(eq + 1, &v) || (k == CASE_PRED_CPL ? (v != 0 && v != 3) : v > 1))
			return perr(p, "expected %s=%s, got %s", pred_names[k],
				    k == CASE_PRED_CPL ? "0 or 3" : "0 or 1", GOT(p->pos));
		st->pred[k] = (int8_t)v;
		p->pos++;
	}
	return 0;
}

static int parse_event(struct parser *p, struct case_event *ev)
{
	char gbuf[64];
	const char *kind;
	uint64_t v;

	if (p->pos >= p->nw || strcmp(p->w[p->pos], "inject"))
		return perr(p, "expected 'inject' after ';', got %s", GOT(p->pos));
	p->pos++;
	if (p->pos >= p->nw)
		return perr(p, "expected an event (irq, nmi, exception), got end of line");
	kind = p->w[p->pos++];

	if (!strcmp(kind, "irq")) {
		ev->kind = VM_EVENT_IRQ;
		if (p->pos >= p->nw || !parse_u64(p->w[p->pos], &v) || v > 255)
			return perr(p, "expected an IRQ vector 0-255, got %s", GOT(p->pos));
		ev->vector = (uint8_t)v;
		p->pos++;
	} else if (!strcmp(kind, "nmi")) {
		ev->kind = VM_EVENT_NMI;
		ev->vector = 2;
	} else if (!strcmp(kind, "exception")) {
		int n;

		ev->kind = VM_EVENT_EXCEPTION;
		if (p->pos >= p->nw)
			return perr(p, "expected an exception vector (0-31 or de, db, bp, ..., pf), got end of line");
		n = case__exception_vector(p->w[p->pos]);
		if (n < 0) {
			if (!parse_u64(p->w[p->pos], &v))
				return perr(p, "expected an exception vector (0-31 or de, db, bp, ..., pf), got %s",
					    GOT(p->pos));
			if (v > 31)
				return perr(p, "expected an exception vector 0-31 (use 'irq' for 32-255), got %s",
					    GOT(p->pos));
			n = (int)v;
		}
		if (n == 2)
			return perr(p, "expected an exception vector other than 2 (use 'inject nmi'), got %s",
				    GOT(p->pos));
		ev->vector = (uint8_t)n;
		p->pos++;
	} else {
		p->pos--;
		return perr(p, "expected an event (irq, nmi, exception), got %s", GOT(p->pos));
	}

	/* Options, any order, each once. */
	while (p->pos < p->nw) {
		const char *o = p->w[p->pos];
		bool is_exc = ev->kind == VM_EVENT_EXCEPTION;

		if (!strcmp(o, "force")) {
			if (ev->force)
				return perr(p, "expected one 'force', got another");
			ev->force = true;
			p->pos++;
		} else if (is_exc && !strcmp(o, "error")) {
			if (!case__vector_has_error_code(ev->vector))
				return perr(p, "expected no error code for vector %u (it pushes none; only 8, 10-14, 17, 21 do), got 'error'",
					    ev->vector);
			if (ev->has_error_code)
				return perr(p, "expected one 'error', got another");
			p->pos++;
			if (p->pos >= p->nw || !parse_u64(p->w[p->pos], &v) || v > UINT32_MAX)
				return perr(p, "expected a 32-bit error code, got %s", GOT(p->pos));
			ev->has_error_code = true;
			ev->error_code = (uint32_t)v;
			p->pos++;
		} else if (is_exc && !strcmp(o, "cr2")) {
			if (ev->vector != 14)
				return perr(p, "expected 'cr2' only with exception pf, got it with vector %u", ev->vector);
			if (ev->has_cr2)
				return perr(p, "expected one 'cr2', got another");
			p->pos++;
			if (p->pos >= p->nw || !parse_u64(p->w[p->pos], &v))
				return perr(p, "expected a CR2 address, got %s", GOT(p->pos));
			ev->has_cr2 = true;
			ev->cr2 = v;
			p->pos++;
		} else if (is_exc && !strcmp(o, "dr6")) {
			if (ev->vector != 1)
				return perr(p, "expected 'dr6' only with exception db, got it with vector %u", ev->vector);
			if (ev->has_dr6)
				return perr(p, "expected one 'dr6', got another");
			p->pos++;
			if (p->pos >= p->nw || !parse_u64(p->w[p->pos], &v))
				return perr(p, "expected a DR6 value, got %s", GOT(p->pos));
			ev->has_dr6 = true;
			ev->dr6 = v;
			p->pos++;
		} else {
			return perr(p, is_exc ? "expected 'error', 'cr2', 'dr6', 'force' or end of line, got %s"
					      : "expected 'force' or end of line, got %s", GOT(p->pos));
		}
	}
	/* The CPU always pushes an error code for these vectors: default 0. */
	if (ev->kind == VM_EVENT_EXCEPTION && case__vector_has_error_code(ev->vector) &&
	    !ev->has_error_code) {
		ev->has_error_code = true;
		ev->error_code = 0;
	}
	return 0;
}

static int parse_step(struct parser *p)
{
	struct kcase *c = p->c;
	struct case_step *s;
	char gbuf[64];

	if (c->nsteps == CASE_MAX_STEPS)
		return perr(p, "expected at most %d steps, got another", CASE_MAX_STEPS);
	s = &c->steps[c->nsteps];
	case__init_step(s);
	s->line = p->line;
	if (parse_state(p, &s->stop))
		return -1;
	if (p->pos >= p->nw || strcmp(p->w[p->pos], ";"))
		return perr(p, "expected '; inject EVENT' after the stop state, got %s", GOT(p->pos));
	p->pos++;
	if (parse_event(p, &s->inject))
		return -1;
	c->nsteps++;
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* patch WHERE=HEXBYTES */
static int parse_patch(struct parser *p)
{
	struct kcase *c = p->c;
	struct case_patch *pt;
	char gbuf[64], where[CASE_WHERE_MAX];
	const char *w, *eq, *hex;
	size_t hlen;

	if (c->npatches == CASE_MAX_PATCHES)
		return perr(p, "expected at most %d patches, got another", CASE_MAX_PATCHES);
	pt = &c->patches[c->npatches];
	memset(pt, 0, sizeof(*pt));
	pt->line = p->line;
	w = p->pos < p->nw ? p->w[p->pos] : NULL;
	eq = w ? strchr(w, '=') : NULL;
	if (!eq || (size_t)(eq - w) >= sizeof(where))
		return perr(p, "expected SYM+OFF=HEXBYTES, got %s", GOT(p->pos));
	memcpy(where, w, (size_t)(eq - w));
	where[eq - w] = '\0';
	if (!where_ok(where))
		return perr(p, "expected a symbol, symbol+offset or address before '=', got '%s'", where);
	if (p->c->version < 2 && !strncmp(where, CASE_USER_PREFIX, strlen(CASE_USER_PREFIX)))
		return perr(p, "expected 'kinject-case 2' for a %s address, got version %u",
			    CASE_USER_PREFIX, p->c->version);
	hex = eq + 1;
	hlen = strlen(hex);
	if (!hlen || hlen % 2 || hlen / 2 > CASE_MAX_PATCH_BYTES)
		return perr(p, "expected 1 to %d bytes as an even number of hex digits after '=', got '%.70s'",
			    CASE_MAX_PATCH_BYTES, hex);
	for (size_t i = 0; i < hlen; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);

		if (hi < 0 || lo < 0)
			return perr(p, "expected hex digits after '=', got '%.70s'", hex);
		pt->bytes[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	pt->len = hlen / 2;
	snprintf(pt->where, sizeof(pt->where), "%s", where);
	p->pos++;
	if (expect_eol(p))
		return -1;
	c->npatches++;
	return 0;
}

/* Guest options the harness sets itself: the scenario, and the host quirks
 * guest__host_options() (harness/guest.c) finds.  A case may not override
 * them: the guest takes the last of two equal keys. */
static const char *const guest_owned[] = { "scenario", "syscall", "int80", "ldt" };

/* guest KEY=VALUE [KEY=VALUE ...], kept one space apart in c->guest. */
static int parse_guest(struct parser *p)
{
	struct kcase *c = p->c;
	char gbuf[64], key[CASE_GUEST_MAX];
	size_t total = 0, used = 0;
	int first = p->pos;

	if (c->version < 3)
		return perr(p, "expected 'kinject-case 3' for a 'guest' line, got version %u", c->version);
	if (p->pos >= p->nw)
		return perr(p, "expected KEY=VALUE after 'guest', got end of line");
	if (p->nw - first > CASE_GUEST_MAX_OPTS)
		return perr(p, "expected at most %d guest options, got %d", CASE_GUEST_MAX_OPTS,
			    p->nw - first);
	for (int i = first; i < p->nw; i++)
		total += strlen(p->w[i]) + (i > first);
	if (total >= CASE_GUEST_MAX)
		return perr(p, "expected guest options of at most %d characters, got %zu",
			    CASE_GUEST_MAX - 1, total);
	for (; p->pos < p->nw; p->pos++) {
		const char *w = p->w[p->pos], *eq = strchr(w, '=');
		size_t klen = eq ? (size_t)(eq - w) : 0;

		memcpy(key, w, klen);
		key[klen] = '\0';
		if (!eq || !name_ok(key, sizeof(key)) || !name_ok(eq + 1, CASE_GUEST_MAX))
			return perr(p, "expected KEY=VALUE (letters, digits, '_', '-', '.'), got %s",
				    GOT(p->pos));
		for (size_t k = 0; k < sizeof(guest_owned) / sizeof(guest_owned[0]); k++)
			if (!strcmp(key, guest_owned[k]))
				return perr(p, "expected a guest option the harness does not set itself "
					    "(scenario=, syscall=, int80=, ldt= are its own), got %s",
					    GOT(p->pos));
		for (int k = first; k < p->pos; k++)
			if (!strncmp(p->w[k], w, klen + 1))
				return perr(p, "expected each guest option once, got '%s=' again", key);
		used += (size_t)snprintf(c->guest + used, sizeof(c->guest) - used, "%s%s",
					 used ? " " : "", w);
	}
	return 0;
}

static int parse_budget(struct parser *p)
{
	char gbuf[64];
	uint64_t v, *dst;
	enum once k;

	if (p->pos < p->nw && !strcmp(p->w[p->pos], "exits")) {
		k = ONCE_BUDGET_EXITS;
		dst = &p->c->budget_exits;
	} else if (p->pos < p->nw && !strcmp(p->w[p->pos], "steps")) {
		k = ONCE_BUDGET_STEPS;
		dst = &p->c->budget_steps;
	} else {
		return perr(p, "expected 'exits' or 'steps' after 'budget', got %s", GOT(p->pos));
	}
	if (once(p, k))
		return -1;
	p->pos++;
	if (p->pos >= p->nw || !parse_u64(p->w[p->pos], &v) || v == 0)
		return perr(p, "expected a budget >= 1, got %s", GOT(p->pos));
	*dst = v;
	p->pos++;
	return expect_eol(p);
}

static int parse_expect(struct parser *p)
{
	char gbuf[64];
	const char *w = p->pos < p->nw ? p->w[p->pos] : "";

	if (!strcmp(w, "pass")) {
		p->c->expect = CASE_EXPECT_PASS;
		p->pos++;
		return expect_eol(p);
	}
	if (strcmp(w, "fail"))
		return perr(p, "expected 'pass' or 'fail [ORACLE]' after 'expect', got %s", GOT(p->pos));
	p->c->expect = CASE_EXPECT_FAIL;
	p->pos++;
	if (p->pos < p->nw) {
		if (!name_ok(p->w[p->pos], CASE_ORACLE_MAX))
			return perr(p, "expected an oracle name (at most %d letters, digits, '_', '-', '.'), got %s",
				    CASE_ORACLE_MAX - 1, GOT(p->pos));
		snprintf(p->c->oracle, sizeof(p->c->oracle), "%s", p->w[p->pos++]);
	}
	return expect_eol(p);
}

static int parse_mode(struct parser *p)
{
	char gbuf[64];
	const char *w = p->pos < p->nw ? p->w[p->pos] : "";

	if (!strcmp(w, "trace"))
		p->c->mode = CASE_MODE_TRACE;
	else if (!strcmp(w, "fast"))
		p->c->mode = CASE_MODE_FAST;
	else
		return perr(p, "expected 'trace' or 'fast' after 'mode', got %s", GOT(p->pos));
	p->pos++;
	return expect_eol(p);
}

/* The title is the rest of the line, as written (trimmed). */
static int parse_title(struct parser *p, char *rest)
{
	size_t n;

	while (*rest == ' ' || *rest == '\t')
		rest++;
	n = strlen(rest);
	while (n && (rest[n - 1] == ' ' || rest[n - 1] == '\t'))
		rest[--n] = '\0';
	if (!n)
		return perr(p, "expected a title after 'title', got end of line");
	if (n >= CASE_TITLE_MAX)
		return perr(p, "expected a title of at most %d characters, got %zu", CASE_TITLE_MAX - 1, n);
	snprintf(p->c->title, sizeof(p->c->title), "%s", rest);
	return 0;
}

/* Splits a line (comment already cut) into words; ';' is a word of its own. */
static int split(struct parser *p, char *s)
{
	p->nw = 0;
	p->pos = 0;
	while (*s) {
		while (*s == ' ' || *s == '\t')
			*s++ = '\0';
		if (!*s)
			break;
		if (p->nw == CASE_MAX_WORDS)
			return perr(p, "expected at most %d words on a line, got more", CASE_MAX_WORDS);
		if (*s == ';') {
			*s++ = '\0';
			p->w[p->nw++] = ";";
			continue;
		}
		p->w[p->nw++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != ';')
			s++;
		if (*s == ';') {
			/* "if=0;" : the ';' ends the word and is a word itself. */
			*s++ = '\0';
			if (p->nw == CASE_MAX_WORDS)
				return perr(p, "expected at most %d words on a line, got more", CASE_MAX_WORDS);
			p->w[p->nw++] = ";";
		}
	}
	return 0;
}

static int parse_line(struct parser *p, char *line, bool *have_version)
{
	char gbuf[64], *hash, *kw;
	size_t n = strlen(line);

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return perr(p, "expected printable text, got byte 0x%02x", ch);
	}
	hash = strchr(line, '#');
	if (hash)
		*hash = '\0';

	/* The title keeps its spacing: take it before splitting. */
	kw = line;
	while (*kw == ' ' || *kw == '\t')
		kw++;
	if (*have_version && !strncmp(kw, "title", 5) && (kw[5] == ' ' || kw[5] == '\t' || !kw[5])) {
		if (once(p, ONCE_TITLE))
			return -1;
		return parse_title(p, kw + 5);
	}
	if (split(p, line))
		return -1;
	if (!p->nw)
		return 0;

	if (!*have_version) {
		uint64_t v;

		if (strcmp(p->w[0], "kinject-case"))
			return perr(p, "expected 'kinject-case %d' as the first line, got %s", CASE_VERSION, GOT(0));
		if (p->nw < 2 || !parse_u64(p->w[1], &v))
			return perr(p, "expected a format version after 'kinject-case', got %s", GOT(1));
		if (v < CASE_VERSION_MIN || v > CASE_VERSION)
			return perr(p, "expected kinject-case version %d to %d, got %s",
				    CASE_VERSION_MIN, CASE_VERSION, GOT(1));
		p->c->version = (unsigned)v;
		p->pos = 2;
		*have_version = true;
		return expect_eol(p);
	}

	kw = p->w[p->pos++];
	if (!strcmp(kw, "variant"))
		return once(p, ONCE_VARIANT) ? -1 :
		       parse_name_line(p, "variant", p->c->variant, sizeof(p->c->variant));
	if (!strcmp(kw, "scenario"))
		return once(p, ONCE_SCENARIO) ? -1 :
		       parse_name_line(p, "scenario", p->c->scenario, sizeof(p->c->scenario));
	if (!strcmp(kw, "guest"))
		return once(p, ONCE_GUEST) ? -1 : parse_guest(p);
	if (!strcmp(kw, "step"))
		return parse_step(p);
	if (!strcmp(kw, "patch"))
		return parse_patch(p);
	if (!strcmp(kw, "budget"))
		return parse_budget(p);
	if (!strcmp(kw, "mode"))
		return once(p, ONCE_MODE) ? -1 : parse_mode(p);
	if (!strcmp(kw, "expect"))
		return once(p, ONCE_EXPECT) ? -1 : parse_expect(p);
	if (!strcmp(kw, "kinject-case"))
		return perr(p, "expected one 'kinject-case' line (the first), got another");
	return perr(p, "expected a keyword (title, variant, scenario, guest, patch, step, budget, mode, "
		    "expect), got %s", GOT(0));
}

int case__parse_string(const char *text, const char *name, struct kcase *out)
{
	struct parser p = { .name = name ? name : "<string>", .c = out };
	bool have_version = false;
	char *buf, *line, *next;
	int ret = -1;

	if (!out)
		return vmm__fail("%s: no case to parse into", p.name);
	case__init(out);
	snprintf(out->name, sizeof(out->name), "%s", p.name);
	if (!text)
		return vmm__fail("%s: no text", p.name);
	buf = strdup(text);
	if (!buf)
		return vmm__fail("%s: out of memory", p.name);

	for (line = buf; line && *line; line = next) {
		size_t n;

		p.line++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		n = strlen(line);
		if (n && line[n - 1] == '\r')   /* files edited on Windows */
			line[n - 1] = '\0';
		if (parse_line(&p, line, &have_version))
			goto out;
	}
	/* Whole-case checks point at the last line: what is missing would
	 * have come before the end of the file. */
	if (!p.line)
		p.line = 1;          /* an empty file: point at its first line */
	if (!have_version)
		perr(&p, "expected 'kinject-case %d' as the first line, got end of file", CASE_VERSION);
	else if (!p.seen[ONCE_VARIANT])
		perr(&p, "expected a 'variant' line, got end of file");
	else if (!p.seen[ONCE_SCENARIO])
		perr(&p, "expected a 'scenario' line, got end of file");
	else if (!out->nsteps)
		perr(&p, "expected at least one 'step' line, got end of file");
	else if (out->expect == CASE_EXPECT_PASS && out->oracle[0])
		perr(&p, "expected no oracle with 'expect pass', got '%s'", out->oracle);
	else
		ret = 0;
out:
	free(buf);
	if (ret) {
		/* Nothing half-parsed leaks to a caller that ignores -1. */
		char keep[CASE_NAME_MAX];

		snprintf(keep, sizeof(keep), "%s", out->name);
		case__init(out);
		snprintf(out->name, sizeof(out->name), "%s", keep);
	}
	return ret;
}

int case__parse_file(const char *path, struct kcase *out)
{
	FILE *f;
	char *text;
	size_t n;
	int ret;

	if (!path)
		return vmm__fail("case: no file name");
	f = fopen(path, "rb");
	if (!f)
		return vmm__fail("%s: cannot open: %s", path, strerror(errno));
	text = malloc(CASE_MAX_FILE + 1);
	if (!text) {
		fclose(f);
		return vmm__fail("%s: out of memory", path);
	}
	n = fread(text, 1, CASE_MAX_FILE + 1, f);
	if (ferror(f)) {
		ret = vmm__fail("%s: cannot read: %s", path, strerror(errno));
	} else if (n > CASE_MAX_FILE) {
		ret = vmm__fail("%s: expected a case file of at most %d bytes, got more", path, CASE_MAX_FILE);
	} else if (memchr(text, '\0', n)) {
		/* A NUL would silently end the text early: report its line. */
		unsigned line = 1;

		for (const char *q = text; *q; q++)
			line += *q == '\n';
		ret = vmm__fail("%s:%u: expected printable text, got byte 0x00", path, line);
	} else {
		text[n] = '\0';
		ret = case__parse_string(text, path, out);
	}
	free(text);
	fclose(f);
	return ret;
}

/* ---- the writer ---------------------------------------------------------------- */

char *case__event_str(const struct case_event *e, char *buf, size_t len)
{
	const char *name;
	size_t used = 0;
	int n = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	switch (e->kind) {
	case VM_EVENT_IRQ:
		n = snprintf(buf, len, "irq 0x%x", e->vector);
		break;
	case VM_EVENT_NMI:
		n = snprintf(buf, len, "nmi");
		break;
	case VM_EVENT_EXCEPTION:
		name = case__exception_name(e->vector);
		n = name && e->vector != 2 ? snprintf(buf, len, "exception %s", name)
					   : snprintf(buf, len, "exception %u", e->vector);
		break;
	default:
		n = snprintf(buf, len, "?");
		break;
	}
#define APPEND(...) do { \
		used += (n > 0 ? (size_t)n : 0); \
		if (used >= len) return buf; \
		n = snprintf(buf + used, len - used, __VA_ARGS__); \
	} while (0)
	if (e->kind == VM_EVENT_EXCEPTION && e->has_error_code)
		APPEND(" error 0x%x", e->error_code);
	if (e->kind == VM_EVENT_EXCEPTION && e->has_cr2)
		APPEND(" cr2 0x%llx", (unsigned long long)e->cr2);
	if (e->kind == VM_EVENT_EXCEPTION && e->has_dr6)
		APPEND(" dr6 0x%llx", (unsigned long long)e->dr6);
	if (e->force)
		APPEND(" force");
#undef APPEND
	return buf;
}

char *case__step_str(const struct case_step *s, char *buf, size_t len)
{
	char preds[160] = "", ev[128];
	size_t used = 0;

	for (int k = 0; k < CASE_NPREDS; k++) {
		int n;

		if (s->stop.pred[k] == CASE_ANY)
			continue;
		n = snprintf(preds + used, sizeof(preds) - used, "%s%s=%d",
			     used ? " " : " when ", pred_names[k], s->stop.pred[k]);
		if (n < 0 || (size_t)n >= sizeof(preds) - used)
			break;
		used += (size_t)n;
	}
	snprintf(buf, len, "stop at %s hit %llu%s ; inject %s", s->stop.where,
		 (unsigned long long)s->stop.hit, preds, case__event_str(&s->inject, ev, sizeof(ev)));
	return buf;
}

static void write_raw(FILE *f, const struct kcase *c)
{
	char line[512];

	fprintf(f, "kinject-case %u\n", c->version ? c->version : CASE_VERSION);
	if (c->title[0])
		fprintf(f, "title    %s\n", c->title);
	fprintf(f, "variant  %s\n", c->variant);
	fprintf(f, "scenario %s\n", c->scenario);
	if (c->guest[0])
		fprintf(f, "guest    %s\n", c->guest);
	for (size_t i = 0; i < c->npatches && i < CASE_MAX_PATCHES; i++) {
		const struct case_patch *pt = &c->patches[i];

		fprintf(f, "patch    %s=", pt->where);
		for (size_t b = 0; b < pt->len && b < CASE_MAX_PATCH_BYTES; b++)
			fprintf(f, "%02x", pt->bytes[b]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < c->nsteps && i < CASE_MAX_STEPS; i++)
		fprintf(f, "step     %s\n", case__step_str(&c->steps[i], line, sizeof(line)));
	if (c->budget_exits)
		fprintf(f, "budget   exits %llu\n", (unsigned long long)c->budget_exits);
	if (c->budget_steps)
		fprintf(f, "budget   steps %llu\n", (unsigned long long)c->budget_steps);
	if (c->mode != CASE_MODE_DEFAULT)
		fprintf(f, "mode     %s\n", c->mode == CASE_MODE_FAST ? "fast" : "trace");
	if (c->expect == CASE_EXPECT_FAIL)
		fprintf(f, "expect   fail%s%s\n", c->oracle[0] ? " " : "", c->oracle);
	else
		fprintf(f, "expect   pass\n");
}

int case__to_string(const struct kcase *c, char **text)
{
	struct kcase *back;
	char *buf = NULL;
	size_t size = 0;
	FILE *mem;
	int ret;

	if (!c || !text)
		return vmm__fail("case: nothing to write");
	*text = NULL;
	mem = open_memstream(&buf, &size);
	if (!mem)
		return vmm__fail("case: open_memstream: %s", strerror(errno));
	write_raw(mem, c);
	if (fclose(mem)) {
		free(buf);
		return vmm__fail("case: writing to memory failed");
	}
	/* Parse it back: the text must reproduce the very same case, or the
	 * sweep would record a failure that `kinject run` cannot replay. */
	back = malloc(sizeof(*back));
	if (!back) {
		free(buf);
		return vmm__fail("case: out of memory");
	}
	ret = case__parse_string(buf, c->name[0] ? c->name : "<written case>", back);
	if (ret) {
		char why[384];

		snprintf(why, sizeof(why), "%s", vmm__error());
		ret = vmm__fail("case: cannot be written as a case file: %s", why);
	} else if (!case__equal(c, back)) {
		ret = vmm__fail("case: cannot be written as a case file: it does not read back the same "
				"(a title with '#' or control characters, a field out of range?)");
	}
	free(back);
	if (ret) {
		free(buf);
		return ret;
	}
	*text = buf;
	return 0;
}

int case__write(FILE *f, const struct kcase *c)
{
	char *text;
	size_t n;

	if (!f)
		return vmm__fail("case: no output file");
	if (case__to_string(c, &text))
		return -1;
	n = strlen(text);
	if (fwrite(text, 1, n, f) != n) {
		free(text);
		return vmm__fail("case: write failed: %s", strerror(errno));
	}
	free(text);
	return 0;
}

/* ---- use ------------------------------------------------------------------------ */

int case__resolve_where(const struct symtab *t, const char *where, uint64_t *addr)
{
	const struct symbol *start, *end;
	size_t n = strlen(CASE_USER_PREFIX);

	if (strncmp(where, CASE_USER_PREFIX, n))
		return sym__resolve(t, where, addr);
	start = sym__find(t, "__user_text_start");
	end = sym__find(t, "__user_text_end");
	if (!start || !end)
		return vmm__fail("the guest has no __user_text_start/__user_text_end symbols for %s", where);
	if (sym__resolve(t, where + n, addr))
		return -1;
	if (*addr < start->addr || *addr >= end->addr)
		return vmm__fail("%s is not in the guest's .user.text", where + n);
	*addr = KINJECT_USER_TEXT_VA + (*addr - start->addr);
	return 0;
}

static int resolve_one(const struct kcase *c, unsigned line, const char *where,
		       const struct symtab *t, uint64_t *addr)
{
	char why[256];

	if (case__resolve_where(t, where, addr)) {
		snprintf(why, sizeof(why), "%s", vmm__error());
		return vmm__fail("%s:%u: expected a symbol or address of the guest, got '%s' (%s)",
				 c->name, line, where, why);
	}
	return 0;
}

int case__resolve(struct kcase *c, const struct symtab *t)
{
	if (!c || !t)
		return vmm__fail("case: nothing to resolve");
	for (size_t i = 0; i < c->npatches; i++)
		if (resolve_one(c, c->patches[i].line, c->patches[i].where, t, &c->patches[i].addr))
			return -1;
	for (size_t i = 0; i < c->nsteps; i++)
		if (resolve_one(c, c->steps[i].line, c->steps[i].stop.where, t, &c->steps[i].stop.addr))
			return -1;
	return 0;
}

void case__to_vm_event(const struct case_event *e, struct vm_event *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = e->kind;
	out->vector = e->kind == VM_EVENT_NMI ? 2 : e->vector;
	out->has_error_code = e->kind == VM_EVENT_EXCEPTION && e->has_error_code;
	out->error_code = out->has_error_code ? e->error_code : 0;
	if (e->kind == VM_EVENT_EXCEPTION && e->has_cr2) {
		out->has_payload = true;
		out->payload = e->cr2;
	} else if (e->kind == VM_EVENT_EXCEPTION && e->has_dr6) {
		out->has_payload = true;
		out->payload = e->dr6;
	}
	out->force = e->force;
}

int case__parse_patch(const char *spec, struct case_patch *out)
{
	char text[CASE_WHERE_MAX + 2 * CASE_MAX_PATCH_BYTES + 128];
	struct kcase *c;
	int rc = -1;

	if (strlen(spec) > CASE_WHERE_MAX + 2 * CASE_MAX_PATCH_BYTES || strchr(spec, '\n') ||
	    strchr(spec, '#') || strchr(spec, ' '))
		return vmm__fail("--patch: expected WHERE=HEX (e.g. irq_return_iret+0=90), got '%s'", spec);
	c = calloc(1, sizeof(*c));
	if (!c)
		return vmm__fail("--patch: out of memory");
	snprintf(text, sizeof(text), "kinject-case %d\nvariant x\nscenario x\npatch %s\n"
		 "step stop at x ; inject nmi\n", CASE_VERSION, spec);
	if (case__parse_string(text, "--patch", c) == 0 && c->npatches == 1) {
		*out = c->patches[0];
		out->line = 0;
		rc = 0;
	} else {
		vmm__fail("--patch: expected WHERE=HEX (e.g. irq_return_iret+0=90, 1-%d bytes), got '%s'",
			  CASE_MAX_PATCH_BYTES, spec);
	}
	case__free(c);
	free(c);
	return rc;
}

int case__add_patches(struct kcase *c, const struct case_patch *p, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (c->npatches == CASE_MAX_PATCHES)
			return vmm__fail("%s: --patch: more than %d patches", c->name, CASE_MAX_PATCHES);
		c->patches[c->npatches++] = p[k];
	}
	return 0;
}

int case__parse_patch_option(const char *spec, struct case_patch *extra, size_t *n)
{
	if (*n == CASE_MAX_PATCHES)
		return vmm__fail("--patch: at most %d patches", CASE_MAX_PATCHES);
	if (case__parse_patch(spec, &extra[*n]))
		return -1;
	(*n)++;
	return 0;
}
