/* kv_glob — Redis-style glob patterns for KEYS and SCAN MATCH. */
#ifndef KV_GLOB_H
#define KV_GLOB_H

#include <stddef.h>

/*
 * 1 when str[0..slen) matches pat[0..plen), else 0. The pattern language
 * is Redis's: '*' any run of bytes, '?' any one byte, "[abc]" one of a set,
 * "[^a-z]" or "[!a-z]" one byte outside it, '\' quotes the next byte.
 * Runs in O(plen * slen) at worst, without recursion.
 */
int kv_glob_match(const char *pat, size_t plen, const char *str, size_t slen);

#endif /* KV_GLOB_H */
