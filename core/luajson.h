/*
 * luajson.h: moving protocol state between Lua tables and JSON (cJSON).
 *
 * Protocol state (ctx.state) lives in the database as JSON between events.
 * Only plain data crosses: strings, numbers, booleans and tables whose keys
 * are all strings (an object) or 1..n (an array). Functions, userdata,
 * cycles, tables deeper than LUAJSON_MAX_DEPTH and states larger than
 * LUAJSON_MAX_BYTES are refused with a clear message.
 */
#ifndef STRIGIL_LUAJSON_H
#define STRIGIL_LUAJSON_H

#include <cjson/cJSON.h>
#include <lua.h>

#define LUAJSON_MAX_DEPTH	16
#define LUAJSON_MAX_BYTES	(64 * 1024)

/* Pushes `json` (may be NULL: an empty table) as a Lua value. Must run
 * inside a protected call: it may raise a memory error. */
void	 luajson_push(lua_State *L, const cJSON *json);

/* Pushes the JSON `text` as luajson_push(cJSON_Parse(text)) would, read
 * straight into Lua (no tree in between: every handler call gets its state
 * this way). Returns 0, or -1 with nothing pushed for text it does not take
 * (invalid, \u escapes beyond ASCII, deeper than cJSON nests): parse those
 * with cJSON. Must run inside a protected call. */
int	 luajson_push_text(lua_State *L, const char *text);

/* Encodes the value at `idx` as compact JSON text, an object's keys sorted
 * bytewise (the same state is always the same text). Returns the text
 * (caller frees) or NULL with *cause set (caller frees). Calls no
 * metamethod and raises no Lua error, so it may run inside a protected
 * call without leaking. */
char	*luajson_encode(lua_State *L, int idx, char **cause);

/* Prints `json` as compact text, byte for byte what cJSON_PrintUnformatted()
 * gives, but whole numbers without printf and no scan back: the engine
 * prints a tree for every message and event. Caller frees. */
char	*luajson_print(const cJSON *json);

#endif
