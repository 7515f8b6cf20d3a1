/* SPDX-License-Identifier: MIT */
/*
 * The sweep (sweep.h, docs/sweep.md): plan by single-stepping each driver
 * once in a discovery guest, then run every case through the engine in
 * worker processes, report in plan order.
 *
 * Processes: the parent never holds a VM.  Discovery runs in one child per
 * scenario (up to --jobs at a time); cases run in --jobs worker children,
 * each with one engine session per scenario.  Children talk to the parent
 * through one pipe each (fixed-size binary records); the parent kills a
 * child that stays silent too long (a host call that never returns) and
 * starts another for the rest of its list, so a sweep always ends.
 */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sweep_plan.h"
#include "report.h"
#include "entrymap.h"
#include "oracle.h"
#include "quirks.h"

/* ---- what the sweep knows about the testbed ------------------------------------ */

/* The guest's scenarios (guest/core/scenario.c), swept in this order. */
static const char *const known_scenarios[] = {
	"user-spin", "syscalls", "ss16", "signals", "kthreads", "preempt",
};

/* ---- events --------------------------------------------------------------------- */

static int parse_num(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end || *v > max ? -1 : 0;
}

int sweep__parse_event(const char *word, struct sweep_event *out)
{
	char buf[SWEEP_EVENT_NAME_MAX], *val[2] = { NULL, NULL }, *p;
	struct case_event *e = &out->ev;
	uint64_t v;
	int vec;

	memset(out, 0, sizeof(*out));
	if (snprintf(buf, sizeof(buf), "%s", word) >= (int)sizeof(buf))
		return vmm__fail("--events: '%s' is too long", word);
	if ((p = strchr(buf, ':'))) {
		*p = 0;
		val[0] = p + 1;
		if ((p = strchr(val[0], ':'))) {
			*p = 0;
			val[1] = p + 1;
		}
	}
	if (!strcmp(buf, "irq")) {
		e->kind = VM_EVENT_IRQ;
		e->vector = SWEEP_DEFAULT_IRQ;
		if (val[1] || (val[0] && parse_num(val[0], 255, &v)))
			return vmm__fail("--events: expected irq or irq:VECTOR (0-255), got '%s'", word);
		if (val[0])
			e->vector = (uint8_t)v;
		snprintf(out->name, sizeof(out->name), "irq:0x%x", e->vector);
		return 0;
	}
	if (!strcmp(buf, "nmi")) {
		if (val[0])
			return vmm__fail("--events: nmi takes no value, got '%s'", word);
		e->kind = VM_EVENT_NMI;
		e->vector = 2;
		snprintf(out->name, sizeof(out->name), "nmi");
		return 0;
	}
	vec = case__exception_vector(buf);
	if (vec < 0 || vec == 2)
		return vmm__fail("--events: expected irq[:VECTOR], nmi or an exception name (pf, gp, "
				 "db, mc, ud, ...), got '%s'", word);
	e->kind = VM_EVENT_EXCEPTION;
	e->vector = (uint8_t)vec;
	if (case__vector_has_error_code((unsigned)vec)) {
		e->has_error_code = true;
		if (val[0] && parse_num(val[0], 0xffffffffu, &v))
			return vmm__fail("--events: expected %s:ERROR_CODE (32 bits), got '%s'", buf, word);
		e->error_code = val[0] ? (uint32_t)v : 0;
		if (vec == 14) {
			e->has_cr2 = true;
			e->cr2 = SWEEP_DEFAULT_CR2;
			if (val[1] && parse_num(val[1], UINT64_MAX, &e->cr2))
				return vmm__fail("--events: expected pf:ERROR_CODE:CR2, got '%s'", word);
			snprintf(out->name, sizeof(out->name), "pf:0x%x:0x%llx", e->error_code,
				 (unsigned long long)e->cr2);
			return 0;
		}
		if (val[1])
			return vmm__fail("--events: expected %s[:ERROR_CODE], got '%s'", buf, word);
		snprintf(out->name, sizeof(out->name), "%.8s:0x%x", buf, e->error_code);
		return 0;
	}
	if (vec == 1 && val[0] && !val[1]) {
		if (parse_num(val[0], UINT64_MAX, &e->dr6))
			return vmm__fail("--events: expected db[:DR6], got '%s'", word);
		e->has_dr6 = true;
		snprintf(out->name, sizeof(out->name), "db:0x%llx", (unsigned long long)e->dr6);
		return 0;
	}
	if (val[0])
		return vmm__fail("--events: %s takes no value (it pushes no error code), got '%s'",
				 buf, word);
	snprintf(out->name, sizeof(out->name), "%s", buf);
	return 0;
}

int sweep__parse_events(const char *list, struct sweep_event *out, size_t max, size_t *n)
{
	char *copy = strdup(list), *save = NULL, *w;
	int rc = 0;

	if (!copy)
		return vmm__fail("--events: out of memory");
	*n = 0;
	for (w = strtok_r(copy, ",", &save); w && !rc; w = strtok_r(NULL, ",", &save)) {
		if (*n == max)
			rc = vmm__fail("--events: at most %zu events", max);
		else if (!(rc = sweep__parse_event(w, &out[*n])))
			(*n)++;
	}
	free(copy);
	if (!rc && !*n)
		rc = vmm__fail("--events: expected a comma-separated list of events, got '%s'", list);
	return rc;
}

double sweep__now_sec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int sweep__write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int plan_add(struct plan *p, const struct plan_item *it)
{
	if (p->nitems == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 1024;
		struct plan_item *n = realloc(p->items, cap * sizeof(*n));
		if (!n)
			return vmm__fail("plan: out of memory");
		p->items = n;
		p->cap = cap;
	}
	p->items[p->nitems++] = *it;
	return 0;
}

/* The case an item stands for: the driver's step, then "stop at the
 * boundary hit N ; inject the event". */
static void item_case(const struct plan *p, size_t idx, struct kcase *c)
{
	const struct plan_item *it = &p->items[idx];
	const struct plan_scen *s = &p->scen[it->scen];
	const struct plan_driver *d = &s->drivers[it->driver];
	const struct sweep_opts *o = p->o;
	size_t n = 0;

	case__init(c);
	snprintf(c->name, sizeof(c->name), "sweep-%s-%zu", s->name, idx);
	if (it->event == DRIVER_CHECK)
		snprintf(c->title, sizeof(c->title), "sweep %s: driver %s alone", s->name, d->name);
	else
		snprintf(c->title, sizeof(c->title), "sweep %s: driver %s, %s at %s hit %u", s->name,
			 d->name, p->events[it->event].name, it->where, it->hit);
	snprintf(c->variant, sizeof(c->variant), "%s", o->variant ? o->variant : "linux64");
	snprintf(c->scenario, sizeof(c->scenario), "%s", s->name);
	snprintf(c->guest, sizeof(c->guest), "%s", p->guest);
	c->npatches = o->npatches;
	memcpy(c->patches, o->patches, o->npatches * sizeof(o->patches[0]));
	if (d->has_step)
		c->steps[n++] = d->step;
	if (it->event != DRIVER_CHECK) {
		struct case_step *st = &c->steps[n++];
		case__init_step(st);
		snprintf(st->stop.where, sizeof(st->stop.where), "%s", it->where);
		st->stop.hit = it->hit;
		st->inject = p->events[it->event].ev;
	}
	c->nsteps = n;
	c->mode = o->trace ? CASE_MODE_TRACE : CASE_MODE_FAST;
	c->expect = CASE_EXPECT_PASS;
}

/* ---- children ------------------------------------------------------------------------ */

struct child {
	pid_t pid;
	int fd;
	uint8_t *buf;
	size_t len, cap;
	bool eof;
	double last;                     /* time of the last progress */
	size_t scen;                     /* discovery: its scenario */
	const uint32_t *list;            /* worker: its items, in order */
	size_t n, next;                  /* ... and the next one expected */
};

/* A child runs its work on a fresh thread: the VMM keeps per-thread state
 * (vmm/deadline.c caches the thread id for its timer) that a forked copy
 * of the parent's thread would inherit stale. */
struct child_job {
	int (*fn)(void *arg, int fd);
	void *arg;
	int fd, rc;
};

static void *child_thread(void *p)
{
	struct child_job *j = p;

	j->rc = j->fn(j->arg, j->fd);
	return NULL;
}

static int child_start(struct child *ch, int (*fn)(void *arg, int fd), void *arg)
{
	int fds[2];

	if (pipe(fds))
		return vmm__fail("pipe: %m");
	fflush(NULL);
	ch->pid = fork();
	if (ch->pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return vmm__fail("fork: %m");
	}
	if (ch->pid == 0) {
		struct child_job job = { .fn = fn, .arg = arg, .fd = fds[1], .rc = -1 };
		pthread_t th;

		close(fds[0]);
		signal(SIGPIPE, SIG_DFL);
		if (pthread_create(&th, NULL, child_thread, &job))
			_exit(2);
		pthread_join(th, NULL);
		_exit(job.rc ? 1 : 0);
	}
	close(fds[1]);
	ch->fd = fds[0];
	ch->len = 0;
	ch->eof = false;
	ch->last = sweep__now_sec();
	return 0;
}

/* Reads what the child has written; false on EOF. */
static bool child_read(struct child *ch)
{
	if (ch->cap - ch->len < 65536) {
		size_t cap = ch->cap ? 2 * ch->cap : 262144;
		uint8_t *b = realloc(ch->buf, cap);
		if (!b)
			return false;
		ch->buf = b;
		ch->cap = cap;
	}
	ssize_t n = read(ch->fd, ch->buf + ch->len, ch->cap - ch->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		ch->eof = true;
		return false;
	}
	ch->len += (size_t)n;
	ch->last = sweep__now_sec();
	return true;
}

static int child_reap(struct child *ch, bool kill_it)
{
	int status = 0;

	if (ch->pid > 0) {
		if (kill_it)
			kill(ch->pid, SIGKILL);
		while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
	ch->pid = 0;
	return status;
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
}

/* ---- planning (parent) ----------------------------------------------------------------- */

struct disc_arg {
	const struct plan *p;
	size_t si;
};

static int disc_child(void *arg, int fd)
{
	const struct disc_arg *a = arg;

	return sweep__discover(a->p, a->si, fd);
}

static int plan_merge(struct plan *p, struct child *ch)
{
	const uint8_t *b = ch->buf;
	size_t len = ch->len, off = 0;
	struct plan_scen *s = &p->scen[ch->scen];
	uint64_t nb, ni;

	if (len < sizeof(*s) + 8) {
		s->status = -1;
		if (!s->error[0])
			snprintf(s->error, sizeof(s->error), "the discovery process died");
		return 0;
	}
	memcpy(s, b, sizeof(*s));
	off += sizeof(*s);
	memcpy(&nb, b + off, 8);
	off += 8;
	if (off + nb * sizeof(struct plan_bound) + 8 > len)
		goto short_read;
	if (!p->bounds && nb) {
		p->bounds = malloc(nb * sizeof(*p->bounds));
		if (!p->bounds)
			return vmm__fail("out of memory");
		memcpy(p->bounds, b + off, nb * sizeof(*p->bounds));
		p->nb = nb;
	} else if (nb == p->nb) {
		const struct plan_bound *nbs = (const void *)(b + off);
		for (size_t i = 0; i < nb; i++)
			if (nbs[i].addr == p->bounds[i].addr && nbs[i].reached)
				p->bounds[i].reached = true;
	}
	off += nb * sizeof(struct plan_bound);
	memcpy(&ni, b + off, 8);
	off += 8;
	if (off + ni * sizeof(struct plan_item) > len)
		goto short_read;
	for (uint64_t i = 0; i < ni; i++) {
		struct plan_item it;
		memcpy(&it, b + off + i * sizeof(it), sizeof(it));
		if (plan_add(p, &it))
			return -1;
	}
	return 0;
short_read:
	s->status = -1;
	snprintf(s->error, sizeof(s->error), "the discovery process's output was cut short");
	return 0;
}

static int plan_build(struct plan *p, unsigned jobs)
{
	struct child *ch = calloc(jobs, sizeof(*ch));
	struct disc_arg *args = calloc(p->nscen, sizeof(*args));
	size_t next = 0, running = 0;
	int rc = 0;

	if (!ch || !args) {
		free(ch);
		free(args);
		return vmm__fail("out of memory");
	}
	for (unsigned j = 0; j < jobs; j++)
		ch[j].fd = -1;
	while (next < p->nscen || running) {
		struct pollfd pfd[64];
		unsigned map[64], np = 0;

		for (unsigned j = 0; j < jobs && next < p->nscen; j++) {
			if (ch[j].pid)
				continue;
			args[next] = (struct disc_arg){ .p = p, .si = next };
			ch[j].scen = next;
			if (child_start(&ch[j], disc_child, &args[next])) {
				rc = -1;
				goto out;
			}
			next++;
			running++;
		}
		for (unsigned j = 0; j < jobs; j++)
			if (ch[j].pid) {
				pfd[np] = (struct pollfd){ .fd = ch[j].fd, .events = POLLIN };
				map[np++] = j;
			}
		if (poll(pfd, np, 1000) < 0 && errno != EINTR) {
			rc = vmm__fail("poll: %m");
			goto out;
		}
		for (unsigned k = 0; k < np; k++) {
			struct child *c = &ch[map[k]];
			bool timeout = sweep__now_sec() - c->last > DISC_TIMEOUT_S;

			if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && child_read(c))
				continue;
			if (!c->eof && !timeout)
				continue;
			int st = child_reap(c, timeout);
			if (timeout) {
				p->scen[c->scen].status = -1;
				snprintf(p->scen[c->scen].error, sizeof(p->scen[c->scen].error),
					 "discovery gave no result within %d s: killed", DISC_TIMEOUT_S);
			} else if (plan_merge(p, c)) {
				rc = -1;
				goto out;
			} else if (p->scen[c->scen].status && !p->scen[c->scen].error[0]) {
				describe_status(st, p->scen[c->scen].error,
						sizeof(p->scen[c->scen].error));
			}
			c->len = 0;
			running--;
		}
	}
out:
	for (unsigned j = 0; j < jobs; j++) {
		if (ch[j].pid)
			child_reap(&ch[j], true);
		free(ch[j].buf);
	}
	free(ch);
	free(args);
	return rc;
}

/* Items in scenario order (children finish in any order); within a
 * driver, its check first (the run its cases converge back into), then
 * the arrivals in the order the run reaches them, so each case can start
 * from the previous one's stop (engine_chain). */
static int item_cmp(const void *a, const void *b)
{
	const struct plan_item *x = a, *y = b;

	if (x->scen != y->scen)
		return x->scen < y->scen ? -1 : 1;
	if (x->driver != y->driver)
		return x->driver < y->driver ? -1 : 1;
	if ((x->event == DRIVER_CHECK) != (y->event == DRIVER_CHECK))
		return x->event == DRIVER_CHECK ? -1 : 1;
	if (x->ordinal != y->ordinal)
		return x->ordinal < y->ordinal ? -1 : 1;
	return x->event < y->event ? -1 : x->event > y->event;
}

/* --limit: keep `limit` of the cases that need the engine, spread evenly
 * over the plan; the rest is not judged at all. */
static void plan_limit(struct plan *p, uint64_t limit)
{
	uint64_t runnable = 0, k = 0, seen = 0;

	for (size_t i = 0; i < p->nitems; i++)
		runnable += p->items[i].pre == PRE_RUN;
	if (!limit || limit >= runnable)
		return;
	for (size_t i = 0; i < p->nitems; i++) {
		if (p->items[i].pre != PRE_RUN)
			continue;
		/* Keep the seen-th runnable item iff it is the next pick. */
		if (k < limit && seen == k * runnable / limit)
			k++;
		else
			p->items[i].pre = PRE_LIMITED;
		seen++;
	}
}

/* ---- workers ------------------------------------------------------------------------------ */

struct wire {
	uint32_t magic;
	uint32_t item;
	struct case_result r;
};

struct worker_arg {
	const struct plan *p;
	const uint32_t *list;
	size_t n;
};

/* Item `idx` may start from the stop of item `prev` (run just before it
 * on the same session): the same driver, the same steps but the last,
 * reached no earlier.  Fills the hint for engine__run_case_from. */
static bool chain_hint(const struct plan *p, uint32_t prev, uint32_t idx, struct engine_chain *ch)
{
	const struct plan_item *a = &p->items[prev], *b = &p->items[idx];
	bool seen[MAX_HITS + 1] = { false };

	if (a->scen != b->scen || a->driver != b->driver || a->event == DRIVER_CHECK ||
	    b->event == DRIVER_CHECK || a->ordinal > b->ordinal || b->hit > MAX_HITS)
		return false;
	*ch = (struct engine_chain){ .from_addr = a->addr, .from_hit = a->hit };
	/* Arrivals at b's address up to a's: the plan holds every arrival
	 * below b's hit count, in order. */
	for (uint32_t i = prev + 1; i-- > 0;) {
		const struct plan_item *x = &p->items[i];
		if (x->scen != b->scen || x->driver != b->driver || x->event == DRIVER_CHECK)
			break;
		if (x->addr == b->addr && x->ordinal <= a->ordinal && x->hit <= MAX_HITS &&
		    !seen[x->hit]) {
			seen[x->hit] = true;
			ch->before++;
		}
	}
	return ch->before <= b->hit;
}

static int worker_child(void *arg, int fd)
{
	const struct worker_arg *a = arg;
	const struct plan *p = a->p;
	struct engine_opts eo = { .elf = p->o->elf, .trace = p->o->trace,
				  .tail_exits = p->o->tail_exits, .converge = !p->o->no_converge };
	struct session *sess = NULL;
	long sess_scen = -1;
	char sess_err[480] = "";
	struct kcase *c = malloc(sizeof(*c));
	struct wire *w = malloc(sizeof(*w));

	if (!c || !w)
		return -1;
	for (size_t k = 0; k < a->n; k++) {
		const struct plan_item *it = &p->items[a->list[k]];

		item_case(p, a->list[k], c);
		if (sess_scen != it->scen) {
			engine__close(sess);
			sess = engine__open(&eo, c);
			sess_scen = it->scen;
			snprintf(sess_err, sizeof(sess_err), "%s", sess ? "" : vmm__error());
		}
		memset(w, 0, sizeof(*w));
		w->magic = WIRE_MAGIC;
		w->item = a->list[k];
		if (sess) {
			struct engine_chain chn;
			bool chained = k > 0 && !p->o->no_converge &&
				       chain_hint(p, a->list[k - 1], a->list[k], &chn);
			engine__run_case_from(sess, c, chained ? &chn : NULL, &w->r);
		} else {
			w->r.verdict = w->r.observed = VERDICT_ERROR;
			snprintf(w->r.reason, sizeof(w->r.reason), "session: %s", sess_err);
		}
		if (sweep__write_all(fd, w, sizeof(*w)))
			break;
	}
	engine__close(sess);
	free(c);
	free(w);
	return 0;
}

/* ---- reporting (parent, in plan order) -------------------------------------------------- */

struct runner {
	struct plan *p;
	struct sweep_totals *t;
	struct report_junit *junit;
	struct case_result **res;        /* per item, until reported */
	bool *have;
	size_t emit;                     /* next item to report */
	uint64_t engine_total, engine_done, failed;
	double t0, last_bar;
};

static const char *result_kind(const struct case_result *r)
{
	switch (r->verdict) {
	case VERDICT_PASS: return "pass";
	case VERDICT_FAIL: return "fail";
	case VERDICT_ERROR: return "error";
	case VERDICT_SKIP:
		if (!strncmp(r->reason, "architecturally impossible", 26))
			return "impossible";
		if (!strncmp(r->reason, "state not reached", 17))
			return "unreached";
		return "skip";
	}
	return "error";
}

static void count_oracle(struct sweep_totals *t, const char *name)
{
	for (size_t i = 0; i < t->noracles; i++)
		if (!strcmp(t->oracle[i].name, name)) {
			t->oracle[i].cases++;
			return;
		}
	if (t->noracles < SWEEP_MAX_ORACLES) {
		snprintf(t->oracle[t->noracles].name, CASE_ORACLE_MAX, "%s", name);
		t->oracle[t->noracles++].cases = 1;
	}
}

static void file_part(char *dst, size_t len, const char *src)
{
	size_t n = 0;

	for (; *src && n + 1 < len; src++)
		dst[n++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-",
				  *src) ? *src : '_';
	dst[n] = 0;
}

static int mkdir_p(const char *dir)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *q = buf + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			if (mkdir(buf, 0777) && errno != EEXIST)
				return -1;
			*q = '/';
		}
	return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

/* The failure as a case file `kinject run` replays: comments naming the
 * oracles and findings, then the canonical case text with `expect pass`. */
static int write_failure(struct runner *R, size_t idx, const struct kcase *c,
			 const struct case_result *r, char *path, size_t len)
{
	const struct plan_item *it = &R->p->items[idx];
	char scen[40], where[WHERE_MAX], ev[SWEEP_EVENT_NAME_MAX], *text = NULL;
	FILE *f;

	if (mkdir_p(R->p->o->out_dir))
		return vmm__fail("--out %s: %m", R->p->o->out_dir);
	file_part(scen, sizeof(scen), R->p->scen[it->scen].name);
	file_part(where, sizeof(where), it->where);
	file_part(ev, sizeof(ev), it->event == DRIVER_CHECK ? "driver" :
		  R->p->events[it->event].name);
	snprintf(path, len, "%s/%05zu-%s-%s-hit%u-%s.kc", R->p->o->out_dir, idx, scen, where,
		 it->hit, ev);
	if (case__to_string(c, &text))
		return -1;
	f = fopen(path, "w");
	if (!f) {
		free(text);
		return vmm__fail("%s: %m", path);
	}
	fprintf(f, "# kinject sweep failure: oracle%s", r->nfindings > 1 ? "s" : "");
	for (size_t i = 0; i < r->nfindings; i++) {
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			dup |= !strcmp(r->findings[k].oracle, r->findings[i].oracle);
		if (!dup)
			fprintf(f, " %s", r->findings[i].oracle);
	}
	fprintf(f, " (%zu finding%s)\n", r->nfindings + r->dropped,
		r->nfindings + r->dropped == 1 ? "" : "s");
	for (size_t i = 0; i < r->nfindings; i++)
		finding__print(f, &r->findings[i], "#   ");
	fprintf(f, "#   guest: %s: %s\n# replay: kinject run %s\n", r->guest.what,
		r->guest.detail, path);
	fputs(text, f);
	free(text);
	if (fclose(f))
		return vmm__fail("%s: %m", path);
	return 0;
}

static void report_one(struct runner *R, size_t idx, const struct case_result *r, bool ran)
{
	const struct plan *p = R->p;
	const struct plan_item *it = &p->items[idx];
	const struct plan_scen *s = &p->scen[it->scen];
	struct sweep_totals *t = R->t;
	struct kcase *c = malloc(sizeof(*c));
	char path[4096], text[1024] = "", step[300];
	const char *kind = result_kind(r);
	bool wrote = false;

	if (!c)
		return;
	item_case(p, idx, c);
	for (size_t k = 0; k < c->nsteps; k++) {
		size_t used = strlen(text);
		snprintf(text + used, sizeof(text) - used, "%s%s", k ? " | " : "",
			 case__step_str(&c->steps[k], step, sizeof(step)));
	}
	t->cases++;
	t->run += ran;
	if (ran) {
		t->exits += r->exits;
		t->chained += r->chained;
		t->converged += r->converged;
	}
	if (!strcmp(kind, "pass"))
		t->passed++;
	else if (!strcmp(kind, "fail"))
		t->failed++;
	else if (!strcmp(kind, "impossible"))
		t->skipped_impossible++;
	else if (!strcmp(kind, "unreached"))
		t->skipped_unreached++;
	else if (!strcmp(kind, "skip"))
		t->skipped_other++;
	else
		t->errors++;
	if (r->verdict == VERDICT_FAIL) {
		for (size_t i = 0; i < r->nfindings; i++) {
			bool dup = false;
			for (size_t k = 0; k < i; k++)
				dup |= !strcmp(r->findings[k].oracle, r->findings[i].oracle);
			if (!dup)
				count_oracle(t, r->findings[i].oracle);
		}
		if (it->event == DRIVER_CHECK)
			t->drivers_failed++;
		if (p->o->out_dir) {
			if (write_failure(R, idx, c, r, path, sizeof(path)) == 0) {
				wrote = true;
				t->files_written++;
			} else if (p->o->log) {
				fprintf(p->o->log, "kinject: sweep: cannot write the failure: %s\n",
					vmm__error());
			}
		}
	}
	struct report_case rc = {
		.id = idx, .scenario = s->name, .driver = s->drivers[it->driver].name,
		.where = it->where, .addr = it->addr, .hit = it->hit,
		.event = it->event == DRIVER_CHECK ? "driver" : p->events[it->event].name,
		.verdict = r->verdict, .kind = kind, .reason = r->reason,
		.guest = ran ? &r->guest : NULL, .findings = r->findings,
		.nfindings = r->nfindings, .dropped = r->dropped, .exits = r->exits,
		.usec = r->usec, .ran = ran, .case_file = wrote ? path : NULL, .text = text,
	};
	if (p->o->json) {
		report__json_case(p->o->json, &rc);
		fflush(p->o->json);
	}
	if (R->junit)
		report__junit_add(R->junit, &rc);
	free(c);
}

/* Reports every item up to the first one still running. */
static void report_ready(struct runner *R)
{
	struct case_result *syn = NULL;

	for (; R->emit < R->p->nitems; R->emit++) {
		const struct plan_item *it = &R->p->items[R->emit];

		if (it->pre == PRE_LIMITED)
			continue;
		if (it->pre == PRE_IMPOSSIBLE) {
			if (!syn && !(syn = calloc(1, sizeof(*syn))))
				return;
			memset(syn, 0, sizeof(*syn));
			syn->verdict = syn->observed = VERDICT_SKIP;
			snprintf(syn->reason, sizeof(syn->reason), "%s", it->why);
			report_one(R, R->emit, syn, false);
			continue;
		}
		if (!R->have[R->emit])
			break;
		report_one(R, R->emit, R->res[R->emit], true);
		free(R->res[R->emit]);
		R->res[R->emit] = NULL;
	}
	free(syn);
}

static void take_result(struct runner *R, uint32_t idx, const struct case_result *r)
{
	if (idx >= R->p->nitems || R->have[idx])
		return;
	R->res[idx] = malloc(sizeof(*r));
	if (!R->res[idx])
		return;
	*R->res[idx] = *r;
	R->have[idx] = true;
	R->engine_done++;
	R->failed += r->verdict == VERDICT_FAIL;
	report_ready(R);
}

static void error_result(struct runner *R, uint32_t idx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void error_result(struct runner *R, uint32_t idx, const char *fmt, ...)
{
	struct case_result *r = calloc(1, sizeof(*r));
	va_list ap;

	if (!r)
		return;
	r->verdict = r->observed = VERDICT_ERROR;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	take_result(R, idx, r);
	free(r);
}

static void progress(struct runner *R, bool force)
{
	double now = sweep__now_sec();

	if (!R->p->o->progress || (!force && now - R->last_bar < 0.2))
		return;
	R->last_bar = now;
	report__progress(R->engine_done, R->engine_total, R->failed,
			 now > R->t0 ? (double)R->engine_done / (now - R->t0) : 0);
}

static int run_workers(struct runner *R, unsigned jobs)
{
	struct plan *p = R->p;
	unsigned timeout = p->o->case_timeout_s ? p->o->case_timeout_s : CASE_TIMEOUT_S;
	uint32_t *lists = malloc((R->engine_total + 1) * sizeof(*lists));
	struct child *ch = calloc(jobs, sizeof(*ch));
	struct worker_arg *args = calloc(jobs, sizeof(*args));
	size_t off = 0;
	int rc = 0;

	if (!lists || !ch || !args) {
		rc = vmm__fail("out of memory");
		goto out;
	}
	/* Worker j takes every jobs-th chunk of consecutive cases: similar
	 * costs on every side, and inside a chunk each case can start where
	 * the one before it stopped (engine_chain). */
	for (unsigned j = 0; j < jobs; j++) {
		size_t k = 0;
		ch[j].fd = -1;
		ch[j].list = lists + off;
		for (size_t i = 0; i < p->nitems; i++)
			if (p->items[i].pre == PRE_RUN && (k++ / WORKER_CHUNK) % jobs == j)
				lists[off++] = (uint32_t)i;
		ch[j].n = (size_t)(lists + off - ch[j].list);
	}
	for (;;) {
		struct pollfd pfd[64];
		unsigned map[64], np = 0;

		for (unsigned j = 0; j < jobs; j++) {
			struct child *c = &ch[j];
			if (c->pid || c->next >= c->n)
				continue;
			args[j] = (struct worker_arg){ .p = p, .list = c->list + c->next,
						       .n = c->n - c->next };
			/* Positions are kept relative to the whole list. */
			if (child_start(c, worker_child, &args[j])) {
				rc = -1;
				goto out;
			}
		}
		for (unsigned j = 0; j < jobs; j++)
			if (ch[j].pid) {
				pfd[np] = (struct pollfd){ .fd = ch[j].fd, .events = POLLIN };
				map[np++] = j;
			}
		if (!np)
			break;
		if (poll(pfd, np, 200) < 0 && errno != EINTR) {
			rc = vmm__fail("poll: %m");
			goto out;
		}
		for (unsigned k = 0; k < np; k++) {
			struct child *c = &ch[map[k]];
			bool alive = true;

			if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
				alive = child_read(c);
			size_t used = 0;
			while (c->len - used >= sizeof(struct wire)) {
				const struct wire *w = (const void *)(c->buf + used);
				struct wire tmp;
				memcpy(&tmp.magic, &w->magic, sizeof(tmp.magic));
				memcpy(&tmp.item, &w->item, sizeof(tmp.item));
				if (tmp.magic != WIRE_MAGIC || c->next >= c->n ||
				    tmp.item != c->list[c->next]) {
					alive = false;
					c->eof = true;
					break;
				}
				take_result(R, tmp.item, &w->r);
				c->next++;
				used += sizeof(struct wire);
			}
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			bool timed_out = sweep__now_sec() - c->last > timeout;
			if (alive && !c->eof && !timed_out)
				continue;
			int st = child_reap(c, timed_out || c->next < c->n);
			c->len = 0;
			if (c->next < c->n) {
				char how[64];
				describe_status(st, how, sizeof(how));
				if (timed_out)
					error_result(R, c->list[c->next], "no result within %u s (a host "
						     "call that never returned?): worker killed", timeout);
				else
					error_result(R, c->list[c->next], "the worker process died running "
						     "this case (%s)", how);
				c->next++;
			}
		}
		progress(R, false);
	}
out:
	for (unsigned j = 0; ch && j < jobs; j++) {
		if (ch[j].pid)
			child_reap(&ch[j], true);
		free(ch[j].buf);
	}
	free(ch);
	free(args);
	free(lists);
	return rc;
}

/* ---- not reached --------------------------------------------------------------------------- */

static void unreached_reason(const struct plan_bound *b, char *buf, size_t len)
{
	static const struct {
		const char *prefix;
		int quirk;                /* -1: none */
		const char *reason;
	} table[] = {
		{ "entry_SYSCALL", QUIRK_SYSCALL, "SYSCALL from ring 3 is broken on this host: the "
		  "guest runs with syscall=0 (system calls by int $0x80)" },
		{ "syscall_", QUIRK_SYSCALL, "the SYSCALL exit: SYSCALL from ring 3 is broken on "
		  "this host (guest syscall=0)" },
		{ "entry_SYSRET", QUIRK_SYSCALL, "SYSRET: SYSCALL from ring 3 is broken on this host "
		  "(guest syscall=0)" },
		{ "entry_INT80", QUIRK_INT80, "INT n from ring 3 does not reach the IDT on this host: "
		  "the guest runs int $0x80 from its #UD handler" },
		{ "nmi_from_user", -1, "an NMI in ring 3: no scenario raises one there and no "
		  "driver's ring-3 step was reached" },
		{ "asm_exc_", -1, "exception stub: no driver raises this exception" },
	};
	char sym[WHERE_MAX];
	char *plus;

	if (b->padding) {
		snprintf(buf, len, "alignment padding after a jump: never executed");
		return;
	}
	snprintf(sym, sizeof(sym), "%s", b->where);
	if ((plus = strchr(sym, '+')))
		*plus = 0;
	if (!strcmp(sym, "irq_entries_start") && plus) {
		unsigned long long off = strtoull(plus + 1, NULL, 0);
		snprintf(buf, len, "IRQ stub of vector 0x%02llx: no driver raises it (an injected "
			 "IRQ runs its own stub after the injection)", 32 + off / 16);
		return;
	}
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strncmp(sym, table[i].prefix, strlen(table[i].prefix)))
			continue;
		if (table[i].quirk >= 0 && quirks__works((enum quirk)table[i].quirk))
			break;
		snprintf(buf, len, "%s", table[i].reason);
		return;
	}
	snprintf(buf, len, "no driver reaches it");
}

/* Not-reached boundaries grouped by (symbol, reason), in address order;
 * the IRQ stubs are one group. */
static size_t unreached_groups(const struct plan *p, struct report_group **out)
{
	struct report_group *g = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	for (size_t i = 0; i < p->nb; i++) {
		const struct plan_bound *b = &p->bounds[i];
		char sym[WHERE_MAX], reason[200], *plus;

		if (b->reached)
			continue;
		snprintf(sym, sizeof(sym), "%s", b->where);
		if ((plus = strchr(sym, '+')))
			*plus = 0;
		unreached_reason(b, reason, sizeof(reason));
		/* Families that would be hundreds of lines: one group each. */
		if (b->padding)
			snprintf(sym, sizeof(sym), "(padding)");
		else if (!strncmp(sym, "asm_exc_", 8))
			snprintf(sym, sizeof(sym), "asm_exc_*");
		if (!strcmp(sym, "irq_entries_start") && !b->padding)
			snprintf(reason, sizeof(reason), "IRQ stubs of vectors no driver raises (an "
				 "injected IRQ runs its own stub after the injection)");
		size_t k;
		for (k = 0; k < n; k++)
			if (!strcmp(g[k].symbol, sym) && !strcmp(g[k].reason, reason))
				break;
		if (k < n) {
			g[k].count++;
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct report_group *ng = realloc(g, cap * sizeof(*ng));
			if (!ng)
				break;
			g = ng;
		}
		memset(&g[n], 0, sizeof(g[n]));
		snprintf(g[n].symbol, sizeof(g[n].symbol), "%s", sym);
		snprintf(g[n].reason, sizeof(g[n].reason), "%s", reason);
		g[n].first = b->addr;
		g[n].count = 1;
		n++;
	}
	*out = g;
	return n;
}

/* ---- the sweep ------------------------------------------------------------------------------- */

static int plan_init(struct plan *p, const struct sweep_opts *o)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->hits = o->hits ? o->hits : 1;
	if (o->iters)
		snprintf(p->guest, sizeof(p->guest), "iters=%u", o->iters);
	if (p->hits > MAX_HITS)
		return vmm__fail("--hits: at most %d", MAX_HITS);
	if (o->nevents) {
		memcpy(p->events, o->events, o->nevents * sizeof(o->events[0]));
		p->nevents = o->nevents;
	} else if (sweep__parse_events("irq,nmi", p->events, SWEEP_MAX_EVENTS, &p->nevents)) {
		return -1;
	}
	if (o->nscenarios) {
		for (size_t i = 0; i < o->nscenarios; i++)
			snprintf(p->scen[p->nscen++].name, CASE_SCENARIO_MAX, "%s", o->scenarios[i]);
	} else {
		for (size_t i = 0; i < sizeof(known_scenarios) / sizeof(known_scenarios[0]); i++)
			snprintf(p->scen[p->nscen++].name, CASE_SCENARIO_MAX, "%s",
				 known_scenarios[i]);
	}
	return 0;
}

static void plan_free(struct plan *p)
{
	free(p->bounds);
	free(p->items);
}

static void plan_log(const struct plan *p, FILE *f)
{
	for (size_t si = 0; si < p->nscen; si++) {
		const struct plan_scen *s = &p->scen[si];

		if (s->status) {
			fprintf(f, "sweep: %s: plan failed: %s\n", s->name, s->error);
			continue;
		}
		fprintf(f, "sweep: %s: baseline %s (%s), %llu exits; plan %.1f s\n", s->name,
			verdict__name(s->baseline.kind), s->baseline.what,
			(unsigned long long)s->baseline_exits, s->sec);
		if (s->baseline.kind != VERDICT_PASS)
			fprintf(f, "sweep: %s: fails without any injection, no case can be judged: "
				"%s\n", s->name, s->baseline.detail);
		for (size_t k = 0; k < s->ndrivers; k++) {
			const struct plan_driver *d = &s->drivers[k];
			if (!d->usable)
				fprintf(f, "sweep: %s: driver %s unusable: %s\n", s->name, d->name,
					d->why);
			else
				fprintf(f, "sweep: %s: driver %s: %llu boundaries in %llu steps (%s)\n",
					s->name, d->name, (unsigned long long)d->visited,
					(unsigned long long)d->steps, d->end);
		}
	}
}

int sweep__exit_code(const struct sweep_totals *t)
{
	return t->failed || t->errors || t->baseline_failures ? KINJECT_EXIT_FAIL : KINJECT_EXIT_PASS;
}

int sweep__run(const struct sweep_opts *o, struct sweep_totals *t)
{
	struct plan p;
	struct runner R = { 0 };
	struct report_group *groups = NULL;
	size_t ngroups;
	unsigned jobs = o->jobs ? o->jobs : 1;
	double t0 = sweep__now_sec(), t1;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	if (jobs > 64)
		jobs = 64;
	if (plan_init(&p, o))
		return -1;
	if (kvm__check())
		return -1;
	if (plan_build(&p, jobs))
		goto out;
	qsort(p.items, p.nitems, sizeof(p.items[0]), item_cmp);
	t->planned = p.nitems;
	for (size_t si = 0; si < p.nscen; si++) {
		if (p.scen[si].status) {
			t->errors++;
			if (p.nscen == 1 && !p.nitems) {
				vmm__fail("scenario %s: %s", p.scen[si].name, p.scen[si].error);
				goto out;
			}
		} else if (p.scen[si].baseline.kind != VERDICT_PASS) {
			t->baseline_failures++;
		}
	}
	if (o->log)
		plan_log(&p, o->log);
	plan_limit(&p, o->limit);
	t1 = sweep__now_sec();
	t->plan_sec = t1 - t0;

	R.p = &p;
	R.t = t;
	R.t0 = t1;
	R.res = calloc(p.nitems + 1, sizeof(*R.res));
	R.have = calloc(p.nitems + 1, sizeof(*R.have));
	if (!R.res || !R.have) {
		vmm__fail("out of memory");
		goto out;
	}
	if (o->junit && !(R.junit = report__junit_new())) {
		vmm__fail("out of memory");
		goto out;
	}
	for (size_t i = 0; i < p.nitems; i++)
		R.engine_total += p.items[i].pre == PRE_RUN;
	report_ready(&R);
	progress(&R, true);
	if (R.engine_total && run_workers(&R, jobs))
		goto out;
	report_ready(&R);
	if (o->progress)
		report__progress_end();
	t->run_sec = sweep__now_sec() - t1;
	t->cases_per_sec = t->run_sec > 0 ? (double)t->run / t->run_sec : 0;

	t->boundaries = p.nb;
	for (size_t i = 0; i < p.nb; i++)
		t->reached += p.bounds[i].reached;
	t->not_reached = t->boundaries - t->reached;
	ngroups = unreached_groups(&p, &groups);
	t->wall_sec = sweep__now_sec() - t0;
	if (o->json)
		report__json_summary(o->json, t, groups, ngroups);
	if (o->log)
		report__summary(o->log, t, groups, ngroups);
	if (R.junit && report__junit_write(R.junit, o->junit, t->wall_sec))
		goto out;
	rc = 0;
out:
	free(groups);
	for (size_t i = 0; R.res && i < p.nitems; i++)
		free(R.res[i]);
	free(R.res);
	free(R.have);
	report__junit_free(R.junit);
	plan_free(&p);
	return rc;
}

/* ---- bench ------------------------------------------------------------------------------------ */

int sweep__bench(const char *variant, const char *scenario, const char *events, bool trace,
		 unsigned ncases, struct sweep_bench *b)
{
	struct sweep_opts o = { .variant = variant, .trace = trace, .jobs = 1,
				.iters = SWEEP_DEFAULT_ITERS };
	struct engine_opts eo = { .trace = trace, .converge = true };
	struct session *s = NULL;
	struct kcase *c = malloc(sizeof(*c));
	struct case_result *r = malloc(sizeof(*r));
	struct plan p;
	uint64_t steps = 0, exits = 0, run_us = 0;
	uint64_t kvm_exits[2] = { 0 }, emulated[2] = { 0 };
	unsigned done = 0;
	double t0 = 0;
	int rc = -1;

	memset(b, 0, sizeof(*b));
	o.scenarios[o.nscenarios++] = scenario ? scenario : "kthreads";
	if (events && sweep__parse_events(events, o.events, SWEEP_MAX_EVENTS, &o.nevents))
		goto out_free;
	if (!c || !r || plan_init(&p, &o)) {
		vmm__fail("bench: out of memory or bad options");
		goto out_free;
	}
	if (plan_build(&p, 1))
		goto out;
	if (p.scen[0].status) {
		vmm__fail("scenario %s: %s", p.scen[0].name, p.scen[0].error);
		goto out;
	}
	qsort(p.items, p.nitems, sizeof(p.items[0]), item_cmp);
	/* The first cases of the plan in plan order, as a sweep worker runs
	 * them (each from the previous one's stop where it can). */
	for (size_t i = 0, prev = SIZE_MAX; i < p.nitems && (!ncases || done < ncases); i++) {
		struct engine_chain chn;

		if (p.items[i].pre != PRE_RUN)
			continue;
		item_case(&p, i, c);
		if (!s && !(s = engine__open(&eo, c)))
			goto out;
		if (!done) {
			t0 = sweep__now_sec();
			b->have_kvm_stats =
				!vcpu__kvm_stat(engine__vm(s), "exits", &kvm_exits[0]) &&
				!vcpu__kvm_stat(engine__vm(s), "insn_emulation", &emulated[0]);
		}
		bool chained = prev != SIZE_MAX && chain_hint(&p, (uint32_t)prev, (uint32_t)i, &chn);
		if (engine__run_case_from(s, c, chained ? &chn : NULL, r))
			goto out;
		steps += r->steps;
		exits += r->exits;
		run_us += r->run_usec;
		b->chained += r->chained;
		b->converged += r->converged;
		done++;
		prev = i;
	}
	if (!done) {
		vmm__fail("bench: scenario %s has no case that needs the engine",
			  p.scen[0].name);
		goto out;
	}
	b->cases_per_sec = (double)done / (sweep__now_sec() - t0);
	if (b->have_kvm_stats &&
	    !vcpu__kvm_stat(engine__vm(s), "exits", &kvm_exits[1]) &&
	    !vcpu__kvm_stat(engine__vm(s), "insn_emulation", &emulated[1])) {
		b->mean_kvm_exits = (double)(kvm_exits[1] - kvm_exits[0]) / done;
		b->mean_emulated = (double)(emulated[1] - emulated[0]) / done;
	} else {
		b->have_kvm_stats = false;
	}
	b->mean_steps = (double)steps / done;
	b->mean_exits = (double)exits / done;
	b->mean_run_us = (double)run_us / done;
	b->cases = done;
	rc = 0;
out:
	engine__close(s);
	plan_free(&p);
out_free:
	free(c);
	free(r);
	return rc;
}
