// SPDX-License-Identifier: MIT
/*
 * Range checks in front of uaccess.S: user pointers must lie entirely in
 * the lower (user) half, so a bad pointer can never make the kernel touch
 * its own memory on the user's behalf.
 */
#include <guest/core.h>
#include <guest/task.h>

#define USER_TOP 0x0000800000000000ULL

int __uaccess_copy(void *dst, const void *src, uint64_t n);
long __uaccess_strncpy(char *dst, const char *usrc, uint64_t n);
extern const uint64_t __uaccess_insns[], __uaccess_fault_addr;

static int user_range_ok(uint64_t p, uint64_t n)
{
	return p < USER_TOP && n <= USER_TOP - p;
}

int copy_to_user(uint64_t udst, const void *src, uint64_t n)
{
	if (!user_range_ok(udst, n))
		return -EFAULT;
	return __uaccess_copy((void *)udst, src, n);
}

int copy_from_user(void *dst, uint64_t usrc, uint64_t n)
{
	if (!user_range_ok(usrc, n))
		return -EFAULT;
	return __uaccess_copy(dst, (const void *)usrc, n);
}

long strncpy_from_user(char *dst, uint64_t usrc, uint64_t n)
{
	long r;

	if (!n)
		return 0;
	if (usrc >= USER_TOP)
		return -EFAULT;
	if (n > USER_TOP - usrc)
		n = USER_TOP - usrc;
	r = __uaccess_strncpy(dst, (const char *)usrc, n);
	if (r >= 0)
		dst[r < (long)n ? r : (long)n - 1] = 0;
	return r;
}

int uaccess_fixup(struct kinject_frame *f)
{
	for (const uint64_t *p = __uaccess_insns; *p; p++)
		if (f->rip == *p) {
			f->rip = __uaccess_fault_addr;
			return 1;
		}
	return 0;
}
