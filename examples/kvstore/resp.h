/*
 * RESP2 — the Redis serialization protocol, version 2, as dlog-kv speaks it.
 *
 * Requests are either arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
 * what every client library sends) or inline commands ("GET a\r\n", what a
 * person types into telnet). The parser is incremental: feed it whatever
 * bytes arrived, it consumes what it can and keeps its place, so a request
 * split across any number of reads parses the same as one read. Every size
 * and count is checked against struct resp_limits before anything is
 * allocated, so a hostile peer cannot make it allocate more than the limits.
 *
 * Replies are encoded into a struct dlog_buf (dlog.h) by the resp_add_*
 * functions; each returns 0 or DLOG_ENOMEM (the buffer is then unchanged
 * or holds a partial reply the caller discards).
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stdarg.h>
#include <stddef.h>

#include <dlog/dlog.h>

/* Defaults follow Redis where Redis has a limit (args, inline size). */
#define RESP_MAX_ARGS_DEFAULT      (1024 * 1024)
#define RESP_MAX_BULK_DEFAULT      (16 * 1024 * 1024)
#define RESP_MAX_INLINE_DEFAULT    (64 * 1024)
#define RESP_MAX_CMD_BYTES_DEFAULT (48 * 1024 * 1024)

struct resp_limits {
    size_t max_args;      /* elements in one request array */
    size_t max_bulk;      /* bytes in one bulk string */
    size_t max_inline;    /* bytes in one inline command or header line */
    size_t max_cmd_bytes; /* sum of the argument bytes of one request */
};
void resp_limits_init(struct resp_limits *l);

/*
 * One parsed request. argv[i] has argvlen[i] bytes followed by a NUL that is
 * not counted (so text arguments can be used as C strings; binary ones may
 * contain NULs). The struct, its arrays and every argument are owned by
 * whoever holds the pointer; resp_cmd_free frees them all.
 */
struct resp_cmd {
    int argc;
    char **argv;
    size_t *argvlen;
};
void resp_cmd_free(struct resp_cmd *c);

/* The parser's state between calls; private except errmsg. */
struct resp_parser {
    struct resp_limits lim;
    int state;
    size_t nargs;     /* elements announced by the current array header */
    size_t bulk_len;  /* length of the bulk string being read */
    size_t bulk_got;  /* bytes of it read so far */
    size_t cmd_bytes; /* argument bytes of the current request so far */
    int argc;         /* arguments completed so far */
    char **argv;      /* the current request's arguments (heap, one each) */
    size_t *argvlen;
    size_t args_cap;  /* entries allocated in argv/argvlen */
    char errmsg[160]; /* after RESP_EPROTO: the error reply, without "-" */
};

/* Results of resp_parse. */
#define RESP_AGAIN  0  /* need more bytes; everything given was consumed or kept */
#define RESP_CMD    1  /* *out holds a request */
#define RESP_EPROTO -1 /* protocol error: reply with "-" errmsg and close */

/* lim may be NULL for the defaults. */
void resp_parser_init(struct resp_parser *p, const struct resp_limits *lim);
/* Frees a partly parsed request; the parser can be reused after init. */
void resp_parser_free(struct resp_parser *p);

/*
 * Parses from buf[0..len). Sets *used to the bytes consumed (the caller
 * drops them and passes the rest, plus new bytes, next time). Returns
 * RESP_CMD with *out set to a request the caller now owns, RESP_AGAIN when
 * more input is needed, or RESP_EPROTO (p->errmsg says why; the connection
 * should be answered with that error and closed; the parser is then spent).
 * Empty inline lines and empty arrays ("*0") produce no request.
 */
int resp_parse(struct resp_parser *p, const char *buf, size_t len, size_t *used,
               struct resp_cmd **out);

/* ---- reply encoders (append to b) ---- */
int resp_add_status(struct dlog_buf *b, const char *s); /* +s */
int resp_add_error(struct dlog_buf *b, const char *s);  /* -s; \r \n become spaces */
int resp_add_errorf(struct dlog_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int resp_add_int(struct dlog_buf *b, long long v);              /* :v */
int resp_add_bulk(struct dlog_buf *b, const void *p, size_t n); /* $n p */
int resp_add_cstr(struct dlog_buf *b, const char *s);           /* bulk of a C string */
int resp_add_nil(struct dlog_buf *b);                           /* $-1 */
int resp_add_array(struct dlog_buf *b, long long n);            /* *n, then n elements */

/* Parses a whole argument as a signed 64-bit decimal (Redis's string2ll
 * rules: no spaces, no '+', no leading zeros). 1 on success, 0 otherwise. */
int resp_parse_ll(const char *s, size_t len, long long *out);

#endif /* KV_RESP_H */
