/* kv_glob — glob matching. See kv_glob.h. */
#include "kv_glob.h"

#include <stdint.h>

/*
 * Matches the one-byte token at pat[*pi] ('?', a class, an escape or a
 * literal) against c; advances *pi past the token either way.
 */
static int token_match(const char *pat, size_t plen, size_t *pi, unsigned char c)
{
    size_t p = *pi;
    unsigned char t = (unsigned char)pat[p];

    if (t == '?') {
        *pi = p + 1;
        return 1;
    }
    if (t == '\\' && p + 1 < plen) {
        *pi = p + 2;
        return (unsigned char)pat[p + 1] == c;
    }
    if (t != '[') {
        *pi = p + 1;
        return t == c;
    }
    /* A class: [set], [^set] or [!set]; a missing ']' ends at the pattern's
     * end, as in Redis. */
    p++;
    int neg = 0, hit = 0;
    if (p < plen && (pat[p] == '^' || pat[p] == '!')) {
        neg = 1;
        p++;
    }
    int first = 1;
    while (p < plen && (pat[p] != ']' || first)) {
        first = 0;
        unsigned char lo = (unsigned char)pat[p];
        if (lo == '\\' && p + 1 < plen) {
            lo = (unsigned char)pat[++p];
        }
        if (p + 2 < plen && pat[p + 1] == '-' && pat[p + 2] != ']') {
            unsigned char hi = (unsigned char)pat[p + 2];
            if (hi == '\\' && p + 3 < plen) {
                hi = (unsigned char)pat[p + 3];
                p++;
            }
            if (lo > hi) {
                unsigned char tmp = lo;
                lo = hi;
                hi = tmp;
            }
            if (c >= lo && c <= hi) {
                hit = 1;
            }
            p += 3;
        } else {
            if (c == lo) {
                hit = 1;
            }
            p++;
        }
    }
    *pi = p < plen ? p + 1 : p;
    return neg ? !hit : hit;
}

int kv_glob_match(const char *pat, size_t plen, const char *str, size_t slen)
{
    size_t p = 0, s = 0, star_p = SIZE_MAX, star_s = 0;

    /* Classic backtracking to the last '*': every other token eats exactly
     * one byte, so only the last star ever needs to grow. */
    while (s < slen) {
        if (p < plen && pat[p] == '*') {
            while (p < plen && pat[p] == '*') {
                p++;
            }
            if (p == plen) {
                return 1;
            }
            star_p = p;
            star_s = s;
            continue;
        }
        size_t np = p;
        if (p < plen && token_match(pat, plen, &np, (unsigned char)str[s])) {
            p = np;
            s++;
            continue;
        }
        if (star_p == SIZE_MAX) {
            return 0;
        }
        p = star_p;
        s = ++star_s;
    }
    while (p < plen && pat[p] == '*') {
        p++;
    }
    return p == plen;
}
