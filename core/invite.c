/*
 * invite.c: making and checking invite codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "invite.h"
#include "store.h"

/* 64 characters, so a byte's low six bits pick one without bias. */
static const char invite_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/* Reads exactly `len` bytes from /dev/urandom: a code is a credential, so
 * it comes from the kernel's generator, never rand(). */
static int
invite_random(unsigned char *buf, size_t len)
{
	size_t	got = 0;
	ssize_t	n;
	int	fd, saved;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			saved = n == 0 ? EIO : errno;
			close(fd);
			errno = saved;
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

int
invite_code_new(char *buf, size_t size)
{
	unsigned char	r[INVITE_CODE_LEN];
	size_t		i;

	if (size < INVITE_CODE_LEN + 1) {
		errno = EINVAL;
		return -1;
	}
	if (invite_random(r, sizeof r) != 0)
		return -1;
	for (i = 0; i < INVITE_CODE_LEN; i++)
		buf[i] = invite_alphabet[r[i] & 63];
	buf[INVITE_CODE_LEN] = '\0';
	memset(r, 0, sizeof r);
	return 0;
}

int
invite_code_valid(const char *code)
{
	size_t	n = strspn(code, invite_alphabet);

	return n > 0 && n <= STORE_INVITE_CODE_MAX && code[n] == '\0';
}
