/*
 * sandbox_int.h: what the sandbox's own files share (sandbox.c,
 * sandbox_env.c, sandbox_limit.c, sandbox_wrap.c, sandbox_pattern.c).
 * Nothing outside core/sandbox*.c includes it.
 */
#ifndef STRIGIL_SANDBOX_INT_H
#define STRIGIL_SANDBOX_INT_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "sandbox.h"

/* Room for "file:line: " of the place a limit was hit. */
#define SANDBOX_WHERE_SIZE	256

enum sandbox_limit {
	SANDBOX_LIMIT_NONE = 0,
	SANDBOX_LIMIT_MEMORY,
	SANDBOX_LIMIT_BUDGET
};

struct sandbox {
	lua_State		*L;
	int			 env_ref;	/* registry ref of the env proxy */
	int			 frozen;

	/* Memory, maintained by sandbox__alloc. */
	size_t			 mem_limit;
	size_t			 mem_used;
	int			 mem_hit;	/* refused growth during this call */
	int			 mem_hit_before; /* mem_hit before a pending refusal */
	int			 refused;	/* last growth refused; retry pending */
	void			*refused_ptr;
	size_t			 refused_osize;
	size_t			 refused_nsize;

	/* Instructions, maintained by sandbox__hook and sandbox__charge. */
	int64_t			 budget;	/* per call, as configured */
	int64_t			 budget_left;
	int			 budget_spent;
	int			 hook_count;

	enum sandbox_limit	 limit;		/* first limit hit in this call */
	char			 where[SANDBOX_WHERE_SIZE];
	/* The file of the last chunk loaded, "t.lua: ", named in memory
	 * errors: the allocator cannot safely ask Lua where it is. */
	char			 chunk[SANDBOX_WHERE_SIZE];
};

/* Library functions replaced by a wrapper taking the original as upvalue. */
struct sandbox_wrap {
	const char	*lib;
	const char	*name;
	lua_CFunction	 fn;
};

/* sandbox_limit.c: the memory cap and the instruction budget. */
void	*sandbox__alloc(void *ud, void *ptr, size_t osize, size_t nsize);
struct sandbox *sandbox__from(lua_State *L);
void	 sandbox__where(lua_State *L, int level, char *buf, size_t size);
int	 sandbox__spent(lua_State *L, struct sandbox *sb, int level);
void	 sandbox__charge(lua_State *L, int64_t n);
void	 sandbox__reset_limits(struct sandbox *sb);

/* sandbox_wrap.c: the wrapped library functions. */
extern const struct sandbox_wrap sandbox_wraps[];
int	 sandbox__call_original(lua_State *L);
int	 sandbox__load(lua_State *L);
int	 sandbox__collectgarbage(lua_State *L);
int	 sandbox__coroutine_wrap(lua_State *L);

/* sandbox_pattern.c: the pattern functions of string. */
int	 sandbox__string_find(lua_State *L);
int	 sandbox__string_match(lua_State *L);
int	 sandbox__string_gmatch(lua_State *L);
int	 sandbox__string_gsub(lua_State *L);

/* sandbox_env.c: builds the state; run through lua_pcall(). */
int	 sandbox__setup(lua_State *L);

#endif
