/* SPDX-License-Identifier: MIT */
/*
 * Kernel core basics: the few libc-like helpers, the console, hypercalls,
 * the command line and the verdict.  No libc exists in the guest.
 */
#ifndef GUEST_CORE_H
#define GUEST_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <kinject/abi.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define unlikely(x) __builtin_expect(!!(x), 0)

/* lib.c: gcc may emit calls to memcpy/memset/memmove/memcmp itself. */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
size_t strlcpy(char *d, const char *s, size_t n);

/* console.c: printf subset (%s %c %d %u %x %p %%, l/ll, width, 0-pad). */
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_write(const char *s, size_t n);

/* hcall.c */
void hc_ready(void);
void hc_scenario_begin(const char *name);
void hc_scenario_end(const char *name, int verdict);
void hc_raise_irq(unsigned vector);
void hc_raise_nmi(void);
void __attribute__((noreturn)) hc_verdict(int verdict, const char *msg);
void __attribute__((noreturn)) panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cmdline.c: "scenario=NAME key=value ..." */
void cmdline_parse(const char *cmdline);
const char *cmdline_get(const char *key);                 /* NULL if absent */
uint64_t cmdline_u64(const char *key, uint64_t dflt);

/* mm.c (page_alloc() itself is in variant.h) */
void mm_init(uint64_t mem_size);
uint64_t pages_alloc(unsigned n);     /* n contiguous zeroed pages */

/* kmain.c */
extern uint64_t boot_mem_size;

/* Declares [start, end) statistics in the layout block (kinject_layout.stats). */
void layout_add_stats(uint64_t start, uint64_t end);

#endif /* GUEST_CORE_H */
