/* SPDX-License-Identifier: MIT */
/*
 * Static analysis of guest code: decode x86-64 bytes with capstone (detail
 * mode, AT&T syntax) once, into a flat sorted array of `struct insn` that
 * carries every fact the oracles and the window map ask about.  Lookups
 * afterwards are a binary search: the per-step hot path of a dynamic trace
 * never goes back to capstone for code inside a decoded range.
 *
 * Errors: functions that can fail return 0 or -1 and leave one line in
 * vmm__error().  Garbage bytes are not an error: they decode to INSN_BAD
 * one-byte entries so a linear sweep always covers the whole range.
 *
 * The capstone handle is per thread and opened lazily; analysis__fini()
 * closes the calling thread's handle (optional, for leak checkers).
 */
#ifndef KINJECT_ANALYSIS_H
#define KINJECT_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm.h"

/* Instruction facts, one bit each (struct insn.flags). */
#define INSN_BAD          (1ULL << 0)   /* bytes capstone could not decode (size 1) */
#define INSN_SWAPGS       (1ULL << 1)
#define INSN_CR3_WRITE    (1ULL << 2)   /* mov %reg, %cr3 */
#define INSN_CR3_READ     (1ULL << 3)   /* mov %cr3, %reg */
#define INSN_IRET         (1ULL << 4)   /* iret, iretd, iretq */
#define INSN_SYSRET       (1ULL << 5)   /* sysretl, sysretq */
#define INSN_SYSEXIT      (1ULL << 6)
#define INSN_CLI          (1ULL << 7)
#define INSN_STI          (1ULL << 8)
#define INSN_POPF         (1ULL << 9)
#define INSN_PUSHF        (1ULL << 10)
#define INSN_CALL         (1ULL << 11)
#define INSN_RET          (1ULL << 12)  /* near ret (with or without imm) */
#define INSN_JMP          (1ULL << 13)  /* unconditional jmp */
#define INSN_JCC          (1ULL << 14)  /* conditional branch, incl. jrcxz/loop */
#define INSN_INDIRECT     (1ULL << 15)  /* call/jmp through a register or memory */
#define INSN_HLT          (1ULL << 16)
#define INSN_WRMSR        (1ULL << 17)
#define INSN_RDMSR        (1ULL << 18)
#define INSN_WRGSBASE     (1ULL << 19)
#define INSN_RDGSBASE     (1ULL << 20)
#define INSN_WRFSBASE     (1ULL << 21)
#define INSN_RDFSBASE     (1ULL << 22)
#define INSN_WRITES_RSP   (1ULL << 23)  /* any write to RSP, implicit ones too (push, call) */
#define INSN_LOADS_RSP    (1ULL << 24)  /* RSP is an explicit destination (mov, lea, and, xchg, pop %rsp) or leave */
#define INSN_GS_MEM       (1ULL << 25)  /* has a %gs:-relative memory operand */
#define INSN_FS_MEM       (1ULL << 26)
#define INSN_MEM_READ     (1ULL << 27)  /* an explicit memory operand is read */
#define INSN_MEM_WRITE    (1ULL << 28)  /* an explicit memory operand is written */
#define INSN_LOADS_SS     (1ULL << 29)  /* mov to %ss / pop %ss: opens a MOV-SS shadow */
#define INSN_SYSCALL      (1ULL << 30)  /* syscall, sysenter */
#define INSN_INT          (1ULL << 31)  /* int n, int3, into, int1 */
#define INSN_UD           (1ULL << 32)  /* ud0/ud1/ud2: the path ends in #UD */
#define INSN_FAR_XFER     (1ULL << 33)  /* ljmp, lcall, lret: far control transfer */
#define INSN_FENCE        (1ULL << 34)  /* lfence, mfence, sfence */
#define INSN_PRIVILEGED   (1ULL << 35)  /* capstone's privilege group */

#define INSN_MAX_MEM      2
#define INSN_MAX_REGS     16

/* One explicit memory operand.  Registers are capstone x86_reg values
 * (0 = none); analysis__reg_name() names them. */
struct insn_mem {
	uint16_t segment, base, index;
	uint8_t scale;
	bool read, write;
	int64_t disp;
};

struct insn {
	uint64_t addr;
	uint8_t size;
	uint8_t bytes[16];
	unsigned id;                  /* capstone x86_insn, 0 for INSN_BAD */
	uint64_t flags;               /* INSN_* */
	char mnemonic[32];
	char op_str[160];
	uint8_t nmem;
	struct insn_mem mem[INSN_MAX_MEM];
	/* Registers read and written, explicit and implicit (cs_regs_access);
	 * truncated at INSN_MAX_REGS, which no x86 instruction reaches in
	 * practice. */
	uint8_t nregs_read, nregs_write;
	uint16_t regs_read[INSN_MAX_REGS], regs_write[INSN_MAX_REGS];
	bool has_target;              /* direct jmp/jcc/call: target is valid */
	uint64_t target;
};

/* A decoded range of code: instructions sorted by address, contiguous
 * (every byte of [base, base+len) belongs to exactly one insn). */
struct code_range {
	uint64_t base;
	size_t len;
	struct insn *insns;
	size_t n;
	size_t nbad;                  /* INSN_BAD entries */
};

/* Decode buf[0..len) as code at `base`.  Returns 0 or -1 (capstone or
 * memory failure, empty range). */
int analysis__decode(const uint8_t *buf, size_t len, uint64_t base, struct code_range *out);
void analysis__free(struct code_range *c);

/* Decode the single instruction at the start of buf (len bytes available,
 * as read from guest memory at `addr`).  Returns 0, or -1 if the bytes are
 * not a valid instruction (out is then an INSN_BAD entry of size 1). */
int analysis__decode_one(const uint8_t *buf, size_t len, uint64_t addr, struct insn *out);

/* Binary search.  _at: the instruction starting exactly at addr;
 * _containing: the one whose bytes cover addr.  NULL if none. */
const struct insn *analysis__at(const struct code_range *c, uint64_t addr);
const struct insn *analysis__containing(const struct code_range *c, uint64_t addr);
/* Index of the instruction starting at addr, or -1. */
long analysis__index(const struct code_range *c, uint64_t addr);

/* "sym+0x12: movq %rsp, %gs:0x18" into buf (the symtab may be NULL: the
 * address is then printed in hex).  Returns buf. */
char *analysis__format(const struct symtab *t, const struct insn *in, char *buf, size_t len);
/* "movq %rsp, %gs:0x18" (or "(bad)"). Returns buf. */
char *analysis__text(const struct insn *in, char *buf, size_t len);

/* Register helpers on capstone x86_reg values. */
const char *analysis__reg_name(unsigned reg);      /* "rsp", "?" if unknown */
bool analysis__reads_reg(const struct insn *in, unsigned reg);
bool analysis__writes_reg(const struct insn *in, unsigned reg);
/* The 64-bit register a sub-register belongs to (eax -> rax, sp -> rsp);
 * other registers are returned unchanged. */
unsigned analysis__reg64(unsigned reg);

/* Closes this thread's capstone handle. */
void analysis__fini(void);

#endif /* KINJECT_ANALYSIS_H */
