/* Macros the test guests share (GNU as; include after <kinject/abi.h>).
 * IDT: a guest defines `idt` (N * 16 bytes) and its stub target `common`,
 * and calls IDT_STUBS N in its text and IDT_FILL N before LIDT. */

/* For guests with ring-3 code: the first 2 MiB user-accessible (PML4[0],
 * PDPT[0], PD[0] of the VMM's boot tables; TLB flushed), RSP0 of the boot
 * TSS (TR's cached base) = `stack`, and the guest's own GDT (`gdtr`).
 * Clobbers %rax. */
.macro RING3_BOOT stack
	orq	$4, KINJECT_BOOT_PGTABLE
	orq	$4, KINJECT_BOOT_PGTABLE + 0x1000
	orq	$4, KINJECT_BOOT_PGTABLE + 0x3000
	mov	%cr3, %rax
	mov	%rax, %cr3
	lea	\stack(%rip), %rax
	mov	%rax, KINJECT_BOOT_GDT + 0x100 + 4
	lgdt	gdtr(%rip)
.endm

/* N stubs of 16 bytes at `stubs`: stub i pushes a zero unless the CPU
 * pushes an error code for vector i, then i, and jumps to `common`. */
.macro IDT_STUBS n
	.balign 16
	.globl stubs
stubs:
	.set	vec, 0
	.rept	\n
	.balign 16
	.if	(vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	common
	.set	vec, vec + 1
	.endr
.endm

/* The 16-byte gate at %rdi <- handler %rax, CS KINJECT_BOOT_CS, type and
 * DPL `attr` (0x8e00: present interrupt gate, DPL 0; 0xee00: DPL 3).
 * Clobbers %rax. */
.macro IDT_SET_GATE attr
	mov	%ax, (%rdi)			/* offset 15:0 */
	movw	$KINJECT_BOOT_CS, 2(%rdi)
	movw	$\attr, 4(%rdi)
	shr	$16, %rax
	mov	%ax, 6(%rdi)			/* offset 31:16 */
	shr	$16, %rax
	mov	%eax, 8(%rdi)			/* offset 63:32 */
	movl	$0, 12(%rdi)
.endm

/* Gate i <- stub i for i < N, DPL-0 interrupt gates; `view` is added to
 * every handler address (the kernel's high view: KINJECT_KERNEL_VBASE).
 * Clobbers %rax, %rcx, %rsi, %rdi, %r8. */
.macro IDT_FILL n, view=0
	lea	idt(%rip), %rdi
	lea	stubs(%rip), %rsi
	movabs	$\view, %r8
	add	%r8, %rsi
	xor	%ecx, %ecx
.Lidt_fill\@:
	mov	%rsi, %rax
	IDT_SET_GATE 0x8e00
	add	$16, %rdi
	add	$16, %rsi
	inc	%ecx
	cmp	$\n, %ecx
	jne	.Lidt_fill\@
.endm

/* One gate set after IDT_FILL: vector `v` <- `handler` (+ `view`), `attr`.
 * Clobbers %rax, %rdi, %r8. */
.macro IDT_GATE v, handler, attr, view=0
	lea	idt + \v * 16(%rip), %rdi
	lea	\handler(%rip), %rax
	movabs	$\view, %r8
	add	%r8, %rax
	IDT_SET_GATE \attr
.endm
