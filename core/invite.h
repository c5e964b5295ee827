/*
 * invite.h: invite codes, the credential a clinic hands a patient so that
 * /start CODE enrols them on a given protocol (the rows live in the store's
 * invites table).
 */
#ifndef STRIGIL_INVITE_H
#define STRIGIL_INVITE_H

#include <stddef.h>

#define INVITE_CODE_LEN	16	/* characters of a new code: 96 bits */

/* Fills `buf` (at least INVITE_CODE_LEN + 1 bytes) with a new random code
 * of [A-Za-z0-9_-] from /dev/urandom. 0, or -1 with errno set. */
int	invite_code_new(char *buf, size_t size);
/* 1 if `code` is 1 to 64 characters of [A-Za-z0-9_-]: the only form a code
 * takes (also what a Telegram deep link's start parameter allows). */
int	invite_code_valid(const char *code);

#endif
