/*
 * sandbox_pattern.c: string.find, match, gmatch and gsub, charged the
 * worst case of Lua's backtracking pattern matcher before they run.
 */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "sandbox.h"
#include "sandbox_int.h"

/*
 * string.find, match, gmatch and gsub run Lua's pattern matcher, which
 * backtracks in C: string.find(string.rep("a", 1e5), ".-.-.-.-.-b") would
 * run for hours without executing one Lua instruction. The matcher cannot
 * be interrupted, so each call is charged its worst case up front, from
 * the subject length n (after `init`) and the shape of the pattern:
 *
 *   (n + 1)^e * 2^q + n + #pattern steps, where
 *   e  = items that can backtrack over the subject (x*, x+, x-, %bxy, %1
 *        back-references), except the last one when nothing but ')'
 *        follows it (it cannot fail once it matched, so it only adds n),
 *        plus one for the start positions unless the pattern is anchored;
 *   q  = optional items (x?), which try two ways each.
 *
 * A plain find (no special characters, or `plain`) is memchr/memcmp: n *
 * #pattern / SANDBOX_MEMCMP_BYTES steps. One step costs one instruction of
 * the budget. A call whose worst case exceeds the whole budget is refused
 * before it starts, with an error naming the pattern's cost; pcall() may
 * catch that (no work was done). Every other call is paid for, so running
 * out is the usual budget error, which pcall() cannot swallow. Typical protocol use
 * (short patient texts, one or two repetitions, or anchored patterns)
 * costs thousands of steps. docs/protocols.md has the rule for authors.
 */

/* Bytes memcmp() compares in the time of one Lua instruction. */
#define SANDBOX_MEMCMP_BYTES	8

/* a * b, saturating at INT64_MAX. */
static int64_t
sandbox__mul(int64_t a, int64_t b)
{
	if (a != 0 && b > INT64_MAX / a)
		return INT64_MAX;
	return a * b;
}

static int64_t
sandbox__add(int64_t a, int64_t b)
{
	return b > INT64_MAX - a ? INT64_MAX : a + b;
}

/* The end of the single-character class starting at p[i] (as lstrlib's
 * classEnd, but never past plen on a malformed pattern). */
static size_t
sandbox__class_end(const char *p, size_t plen, size_t i)
{
	if (p[i] == '%')
		return i + 2 > plen ? plen : i + 2;
	if (p[i] != '[')
		return i + 1;
	i++;
	if (i < plen && p[i] == '^')
		i++;
	do {				/* the first ']' is a member */
		if (i >= plen)
			return plen;
		if (p[i] == '%' && i + 1 < plen)
			i++;
		i++;
	} while (i < plen && p[i] != ']');
	return i < plen ? i + 1 : plen;
}

/* 1 if only ')' follow position i of the pattern. */
static int
sandbox__trailing(const char *p, size_t plen, size_t i)
{
	for (; i < plen; i++)
		if (p[i] != ')')
			return 0;
	return 1;
}

/* Worst-case steps of matching `p` over `n` bytes (see above). */
static int64_t
sandbox__pattern_cost(const char *p, size_t plen, size_t n, int anchored)
{
	int64_t	 steps;
	size_t	 i = 0, end;
	int	 e = anchored ? 0 : 1, q = 0, last = -1, k;

	while (i < plen) {
		if (p[i] == '(' || p[i] == ')') {
			i++;
			continue;
		}
		if (p[i] == '$' && i + 1 == plen)
			break;
		if (p[i] == '%' && i + 1 < plen && p[i + 1] == 'b') {
			i = i + 4 > plen ? plen : i + 4;
			last = sandbox__trailing(p, plen, i);
			e++;
			continue;
		}
		if (p[i] == '%' && i + 1 < plen && p[i + 1] == 'f') {
			i = sandbox__class_end(p, plen, i + 2);
			continue;
		}
		if (p[i] == '%' && i + 1 < plen && p[i + 1] >= '0' &&
		    p[i + 1] <= '9') {
			i += 2;
			last = sandbox__trailing(p, plen, i);
			e++;
			continue;
		}
		end = sandbox__class_end(p, plen, i);
		if (end < plen && (p[end] == '*' || p[end] == '+' ||
		    p[end] == '-')) {
			i = end + 1;
			last = sandbox__trailing(p, plen, i);
			e++;
		} else if (end < plen && p[end] == '?') {
			i = end + 1;
			q++;
		} else
			i = end;
	}
	if (last == 1)
		e--;			/* the last item only adds n */
	steps = 1;
	for (k = 0; k < e && steps < INT64_MAX; k++)
		steps = sandbox__mul(steps, (int64_t)n + 1);
	for (k = 0; k < q && steps < INT64_MAX; k++)
		steps = sandbox__mul(steps, 2);
	return sandbox__add(steps, (int64_t)n + (int64_t)plen);
}

/* Charges a pattern function's worst case, or refuses it. */
static void
sandbox__charge_pattern(lua_State *L, const char *fn, const char *p,
    size_t plen, size_t n, int anchored, int plain)
{
	struct sandbox	*sb = sandbox__from(L);
	int64_t		 steps;

	if (plain)
		steps = sandbox__add((int64_t)n, sandbox__mul((int64_t)n,
		    (int64_t)plen) / SANDBOX_MEMCMP_BYTES);
	else
		steps = sandbox__pattern_cost(p, plen, n, anchored);
	/* Past the whole budget it could never run: say why. Otherwise it
	 * is paid for, and running out is the usual sticky budget error. */
	if (!sb->budget_spent && steps > sb->budget)
		luaL_error(L, "string.%s: pattern too costly for a %I-byte "
		    "subject (worst case %s%I steps, the budget is %I; anchor "
		    "it with '^', use fewer repetitions, or match a shorter "
		    "string)", fn, (lua_Integer)n,
		    steps == INT64_MAX ? "over " : "", (lua_Integer)steps,
		    (lua_Integer)sb->budget);
	sandbox__charge(L, steps);
}

/* 1 if the pattern has none of the characters that make it one (as
 * lstrlib's nospecials). */
static int
sandbox__nospecials(const char *p, size_t plen)
{
	size_t	i;

	for (i = 0; i < plen; i++)
		if (strchr("^$*+?.([%-", p[i]) != NULL)
			return 0;
	return 1;
}

/* Bytes of s from `init` (argument `arg`, 1-based, negative from the end)
 * as lstrlib's posrelat/str_find_aux read it. */
static size_t
sandbox__subject(lua_State *L, size_t ls, int arg)
{
	lua_Integer	init = luaL_optinteger(L, arg, 1);

	if (init > 0)
		return (size_t)init > ls ? 0 : ls - (size_t)init + 1;
	if (init == 0 || (size_t)0 - (lua_Unsigned)init > ls)
		return ls;
	return (size_t)0 - (lua_Unsigned)init;
}

/* find (plain allowed) and match: (s, pattern [, init [, plain]]). */
static int
sandbox__string_search(lua_State *L, const char *fn, int find)
{
	const char	*p;
	size_t		 ls, lp, n;
	int		 plain;

	luaL_checklstring(L, 1, &ls);
	p = luaL_checklstring(L, 2, &lp);
	n = sandbox__subject(L, ls, 3);
	plain = find && (lua_toboolean(L, 4) || sandbox__nospecials(p, lp));
	sandbox__charge_pattern(L, fn, p, lp, n, lp > 0 && p[0] == '^',
	    plain);
	return sandbox__call_original(L);
}

int
sandbox__string_find(lua_State *L)
{
	return sandbox__string_search(L, "find", 1);
}

int
sandbox__string_match(lua_State *L)
{
	return sandbox__string_search(L, "match", 0);
}

/* gmatch(s, pattern [, init]): '^' is no anchor here; the iterator's
 * calls together start at most n + 1 times, so one charge covers them. */
int
sandbox__string_gmatch(lua_State *L)
{
	const char	*p;
	size_t		 ls, lp, n;

	luaL_checklstring(L, 1, &ls);
	p = luaL_checklstring(L, 2, &lp);
	n = sandbox__subject(L, ls, 3);
	sandbox__charge_pattern(L, "gmatch", p, lp, n, 0, 0);
	return sandbox__call_original(L);
}

/* gsub(s, pattern, repl [, n]): a function or table repl runs as Lua,
 * under the hook. */
int
sandbox__string_gsub(lua_State *L)
{
	const char	*p;
	size_t		 ls, lp;

	luaL_checklstring(L, 1, &ls);
	p = luaL_checklstring(L, 2, &lp);
	sandbox__charge_pattern(L, "gsub", p, lp, ls, lp > 0 && p[0] == '^',
	    0);
	return sandbox__call_original(L);
}
