// SPDX-License-Identifier: MIT
/*
 * Console: text to port 0xe9.  Each formatted message is written with one
 * `rep outsb`, which KVM hands to the VMM as one exit instead of one exit
 * per byte: console output stays cheap next to the scenario's own work.
 */
#include <guest/core.h>
#include <guest/x86.h>

void console_write(const char *s, size_t n)
{
	if (!n)
		return;
	__asm__ volatile("rep outsb"
			 : "+S"(s), "+c"(n)
			 : "d"((uint16_t)KINJECT_PORT_CONSOLE)
			 : "memory");
}

struct out {
	char *buf;
	size_t n, pos;
};

static void put(struct out *o, char c)
{
	if (o->pos + 1 < o->n)
		o->buf[o->pos] = c;
	o->pos++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, int neg, int width, char pad)
{
	char tmp[24];
	int i = 0;

	do {
		unsigned d = v % base;
		tmp[i++] = d < 10 ? '0' + d : 'a' + d - 10;
		v /= base;
	} while (v);
	if (neg)
		tmp[i++] = '-';
	/* A '-' must precede zero padding, not follow it. */
	if (neg && pad == '0') {
		put(o, '-');
		i--;
		width--;
	}
	for (; width > i; width--)
		put(o, pad);
	while (i)
		put(o, tmp[--i]);
}

int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct out o = { buf, n, 0 };

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			put_num(&o, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, width, pad);
			break;
		case 'x':
			put_num(&o, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0, width, pad);
			break;
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (uint64_t)va_arg(ap, void *), 16, 0, width, pad);
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = (int)strlen(s);
			for (; width > len; width--)
				put(&o, ' ');
			while (*s)
				put(&o, *s++);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			put(&o, '%');
			if (*fmt)
				put(&o, *fmt);
			else
				fmt--;
		}
	}
	if (n)
		buf[o.pos < n ? o.pos : n - 1] = 0;
	return (int)o.pos;
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

void kprintf(const char *fmt, ...)
{
	/* On the caller's stack: kprintf may run in any context but NMI. */
	char buf[256];
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf, r < (int)sizeof(buf) ? (size_t)r : sizeof(buf) - 1);
}
