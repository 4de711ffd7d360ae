/*
 * dlog_strerror and dlog_errname, both generated from the one table of codes
 * in include/dlog/err.h (DLOG_ERR_MAP), so a new code needs no edit here.
 */
#include <dlog/err.h>

const char *dlog_strerror(int code)
{
    switch (code) {
#define ERR_MSG_CASE(name, value, msg)                                                   \
    case value:                                                                          \
        return msg;
        DLOG_ERR_MAP(ERR_MSG_CASE)
#undef ERR_MSG_CASE
    default:
        return "unknown error";
    }
}

const char *dlog_errname(int code)
{
    switch (code) {
#define ERR_NAME_CASE(name, value, msg)                                                  \
    case value:                                                                          \
        return "DLOG_" #name;
        DLOG_ERR_MAP(ERR_NAME_CASE)
#undef ERR_NAME_CASE
    default:
        return "DLOG_E?";
    }
}
