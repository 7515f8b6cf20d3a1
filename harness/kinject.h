/* SPDX-License-Identifier: MIT */
/*
 * Shared declarations of the kinject tool: exit codes, verdicts, fatal
 * errors, and the guest session every command boots through.
 */
#ifndef KINJECT_H
#define KINJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <kinject/abi.h>
#include "vmm.h"

/* Process exit codes (documented in README and `kinject --help`). */
enum kinject_exit {
	KINJECT_EXIT_PASS = 0,   /* every case / the guest passed */
	KINJECT_EXIT_FAIL = 1,   /* a verdict failed: guest fail, oops, crash, hang, finding */
	KINJECT_EXIT_ERROR = 2,  /* usage or setup error: bad option, file, no KVM */
	KINJECT_EXIT_SKIP = 3,   /* nothing could be judged (e.g. the guest skipped) */
};

/* A verdict, as the Xen Test Framework keeps it: success, failure, error and
 * skip stay distinct.  `what` is a short class ("pass", "guest fail", "oops",
 * "triple fault", "hang", ...), `detail` one line for a human. */
enum verdict_kind { VERDICT_PASS, VERDICT_FAIL, VERDICT_ERROR, VERDICT_SKIP };
struct verdict {
	enum verdict_kind kind;
	char what[32];
	char detail[480];
};
const char *verdict__name(enum verdict_kind k);
int verdict__exit_code(enum verdict_kind k);
void verdict__set(struct verdict *v, enum verdict_kind k, const char *what,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fatal errors of the command line (not of the guest): one line, exit 2. */
void __attribute__((noreturn, format(printf, 1, 2))) kinject__die(const char *fmt, ...);

/* /dev/kvm usable with every capability kinject relies on, or one line
 * saying which is missing and how to fix it, and exit 2. */
void kinject__need_kvm(void);

/* The guest ELF built next to this kinject binary for `variant`. */
const char *kinject__default_guest(const char *variant, char *buf, size_t len);

/* ---- guest.c: one booted testbed guest ------------------------------------ */
struct guest_opts {
	const char *elf;          /* NULL: the default guest of `variant` */
	const char *variant;      /* NULL: "linux64" */
	const char *scenario;     /* NULL: "all" */
	const char *cmdline_extra;/* appended to the guest command line */
	uint64_t mem_size;        /* 0: VM default */
	FILE *console;            /* stream the guest console here, or NULL */
	bool announce;            /* print scenario begin/end markers to console */
};
struct guest {
	struct vm *vm;
	struct elf_image img;
	struct kinject_layout layout;   /* read at READY */
	bool ready;
	/* The VMM runs the guest's SYSCALL / INT n at its listed sites
	 * (vmm/sysemu.c: this host mis-delivers them). */
	bool sysemu;
	FILE *out;
	bool announce;
	unsigned scenarios_failed;
};
/* The guest command-line options for what this host's KVM cannot do, found
 * by probing it once per process (warned about on stderr then).  Commands
 * that fork call it first, so the children inherit the answer. */
const char *guest__host_options(void);
/* Create the VM, load the ELF, enter it. -1 with vmm__error() on failure. */
int guest__boot(struct guest *g, const struct guest_opts *o);
void guest__destroy(struct guest *g);
/* Run until the guest says READY (returns true), or until it ends some other
 * way first (returns false with the verdict). */
bool guest__run_to_ready(struct guest *g, struct verdict *v, uint64_t max_exits);
/* Run until the guest's verdict, a crash, or the exit budget (a hang). */
void guest__run_to_verdict(struct guest *g, struct verdict *v, uint64_t max_exits);
/* Turn one exit into a verdict if it ends the run (true), else false. */
bool guest__judge_exit(struct guest *g, const struct vm_exit *e, struct verdict *v);
/* Copy a NUL-terminated guest string (kernel VA) into buf. */
const char *guest__string(struct guest *g, uint64_t va, char *buf, size_t len);
/* "sym+0x12" for a guest address. */
const char *guest__where(struct guest *g, uint64_t addr, char *buf, size_t len);

/* ---- options every command that boots a guest shares ------------------------ */
/* Long options --variant, --guest, --scenario, --mem, --max-exits, to put in a
 * command's option table; kinject__guest_option() handles their codes. */
#define KINJECT_GUEST_LONGOPTS \
	{ "variant", required_argument, NULL, 'v' }, \
	{ "guest", required_argument, NULL, 'g' }, \
	{ "scenario", required_argument, NULL, 's' }, \
	{ "mem", required_argument, NULL, 'm' }, \
	{ "max-exits", required_argument, NULL, 'x' }
/* True if option code `c` was one of them (stored in o / *max_exits); a bad
 * value is a one-line error and exit 2. */
bool kinject__guest_option(int c, const char *arg, struct guest_opts *o, uint64_t *max_exits);
/* A number option ("--limit", "12"): the value, or a one-line error and exit 2. */
uint64_t kinject__number(const char *option, const char *arg);

/* ---- commands ---------------------------------------------------------------- */
int cmd_boot(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_mutate(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

/* Default exit budget for one boot: a guest still running after this many
 * KVM exits is judged hung. */
#define KINJECT_BOOT_MAX_EXITS 20000000ULL

#endif
