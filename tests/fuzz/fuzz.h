/*
 * fuzz.h: the one function every fuzz target defines.
 *
 * Each fuzz_*.c is built twice: with libFuzzer's main (STRIGIL_FUZZ=ON,
 * clang) to search for crashes, and with replay.c's main in every build,
 * where ctest feeds it each file of its committed corpus, so every crash
 * once found stays a regression test under gcc and ASan alike.
 */
#ifndef STRIGIL_FUZZ_H
#define STRIGIL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
