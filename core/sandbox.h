/*
 * sandbox.h: a locked-down Lua 5.4 state for code the clinic writes.
 *
 * Every protocol (and the config file) runs in its own sandbox:
 *  - text chunks only: luaL_loadbufferx() with mode "t", and `load` wrapped
 *    to the same;
 *  - globals from an explicit allow list (see sandbox.c); no io, os, debug,
 *    package, require, dofile, loadfile, print, string.dump, math.random,
 *    and collectgarbage only for "count";
 *  - library tables and the string metatable are read-only, and the global
 *    table refuses new names after the chunk has loaded;
 *  - a memory cap enforced by the lua_Alloc function;
 *  - an instruction budget per call, enforced by a count hook that keeps
 *    raising once spent, so pcall() inside the protocol cannot swallow it.
 * Errors come back as "file:line: message" in *cause; a memory error names
 * only the file (of the last chunk loaded).
 */
#ifndef STRIGIL_SANDBOX_H
#define STRIGIL_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

struct sandbox;

/* Creates a sandbox capped at `memory` bytes with `instructions` per call.
 * Returns NULL with *cause set (caller frees) on failure. Free with
 * sandbox_free(). */
struct sandbox *sandbox_new(size_t memory, int64_t instructions, char **cause);
void	 sandbox_free(struct sandbox *sb);

lua_State *sandbox_state(struct sandbox *sb);

/* Pushes the sandbox's global table (the _ENV of loaded chunks). */
void	 sandbox_push_env(struct sandbox *sb);

/* Compiles a text chunk whose _ENV is the sandbox's globals and pushes the
 * function. `chunkname` should be "@path" so errors name the file. 0, or -1
 * with *cause set and nothing pushed. */
int	 sandbox_load(struct sandbox *sb, const char *chunkname,
	     const char *buf, size_t len, char **cause);

/* Names the file later memory errors are reported in ("path"), which is
 * otherwise the last chunk loaded. */
void	 sandbox_name(struct sandbox *sb, const char *name);

/* Reads a whole source file of at most 1 MiB (a regular file): returns it
 * NUL-terminated (caller frees) with its length, or NULL with *cause. */
char	*sandbox_read_file(const char *path, size_t *len, char **cause);

/* Reads the file at `path` and compiles it as sandbox_load() does. */
int	 sandbox_load_file(struct sandbox *sb, const char *path, char **cause);

/* Calls the function below `nargs` arguments, as lua_pcall(), with the
 * instruction budget reset and enforced. On error returns -1 with *cause set
 * ("file:line: message"; never calls the error object's __tostring), the
 * stack popped to below the function, and the state still usable. A budget
 * or memory error is reported even if the code caught it with pcall(). */
int	 sandbox_call(struct sandbox *sb, int nargs, int nresults, char **cause);

/* Which limit stopped the last sandbox_call(): "memory", "instructions",
 * or NULL if none did (it succeeded or failed on its own). */
const char *sandbox_last_limit(struct sandbox *sb);

/* Makes the global table read-only from now on (after the chunk ran). */
void	 sandbox_freeze_globals(struct sandbox *sb);

/* Bytes the state holds now. */
size_t	 sandbox_memory(struct sandbox *sb);

#endif
