/*
 * RESP2 request parser and reply encoders. See resp.h.
 *
 * The request grammar (https://redis.io/docs/reference/protocol-spec/):
 *
 *   request  = array / inline
 *   array    = "*" count CRLF *( "$" length CRLF bytes CRLF )
 *   inline   = words separated by spaces, ended by LF (CR LF accepted);
 *              "double quotes" take C escapes (\n \t \xHH ...),
 *              'single quotes' take only \'
 *
 * Error replies use the wording of Redis (networking.c) so that clients
 * and people recognise them.
 */
#include "resp.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_START = 0, /* expecting '*' or an inline command */
    ST_BULK_HDR,  /* expecting "$len\r\n" */
    ST_BULK_DATA, /* reading bulk bytes */
    ST_BULK_CRLF, /* expecting the CRLF after the bulk bytes */
    ST_DEAD,      /* after a protocol error */
};

void resp_limits_init(struct resp_limits *l)
{
    l->max_args = RESP_MAX_ARGS_DEFAULT;
    l->max_bulk = RESP_MAX_BULK_DEFAULT;
    l->max_inline = RESP_MAX_INLINE_DEFAULT;
    l->max_cmd_bytes = RESP_MAX_CMD_BYTES_DEFAULT;
}

void resp_cmd_free(struct resp_cmd *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < c->argc; i++) {
        free(c->argv[i]);
    }
    free(c->argv);
    free(c->argvlen);
    free(c);
}

void resp_parser_init(struct resp_parser *p, const struct resp_limits *lim)
{
    memset(p, 0, sizeof(*p));
    if (lim != NULL) {
        p->lim = *lim;
    } else {
        resp_limits_init(&p->lim);
    }
    p->state = ST_START;
}

/* Frees the arguments of the request being parsed (bulk in progress too). */
static void drop_partial(struct resp_parser *p)
{
    int n = p->argc + (p->state == ST_BULK_DATA || p->state == ST_BULK_CRLF ? 1 : 0);
    for (int i = 0; i < n; i++) {
        free(p->argv[i]);
    }
    free(p->argv);
    free(p->argvlen);
    p->argv = NULL;
    p->argvlen = NULL;
    p->argc = 0;
    p->nargs = 0;
    p->cmd_bytes = 0;
    p->args_cap = 0;
}

void resp_parser_free(struct resp_parser *p)
{
    drop_partial(p);
    p->state = ST_DEAD;
}

static int proto_error(struct resp_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int proto_error(struct resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(p->errmsg, sizeof(p->errmsg), "ERR Protocol error: ");
    va_start(ap, fmt);
    vsnprintf(p->errmsg + n, sizeof(p->errmsg) - (size_t)n, fmt, ap);
    va_end(ap);
    drop_partial(p);
    p->state = ST_DEAD;
    return RESP_EPROTO;
}

int resp_parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0;

    if (len == 0 || len > 20) {
        return 0;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (len == 1) {
            return 0;
        }
    }
    if (s[i] == '0' && len > i + 1) {
        return 0; /* no leading zeros, and "-0" is refused below */
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1 || v == 0) {
            return 0;
        }
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) {
            return 0;
        }
        *out = (long long)v;
    }
    return 1;
}

/*
 * Finds the line starting at buf[pos]: sets *eol to the index of its '\n'
 * and returns 1, or returns 0 when there is no '\n' yet.
 */
static int find_line(const char *buf, size_t pos, size_t len, size_t *eol)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    if (nl == NULL) {
        return 0;
    }
    *eol = (size_t)(nl - buf);
    return 1;
}

/* The number on a header line buf[start..eol) ("*3", "$5"), CR stripped. */
static int header_number(const char *buf, size_t start, size_t eol, long long *v)
{
    size_t end = eol;
    if (end > start && buf[end - 1] == '\r') {
        end--;
    }
    return resp_parse_ll(buf + start, end - start, v);
}

/* Grows the argument arrays to hold at least want entries. */
static int reserve_args(struct resp_parser *p, size_t want)
{
    if (want <= p->args_cap) {
        return 0;
    }
    size_t n = p->args_cap ? p->args_cap * 2 : 8;
    while (n < want) {
        n *= 2;
    }
    char **av = realloc(p->argv, n * sizeof(*av));
    if (av == NULL) {
        return DLOG_ENOMEM;
    }
    p->argv = av;
    size_t *al = realloc(p->argvlen, n * sizeof(*al));
    if (al == NULL) {
        return DLOG_ENOMEM;
    }
    p->argvlen = al;
    p->args_cap = n;
    return 0;
}

/* Hands the completed request over to *out and resets the parser. */
static int finish_cmd(struct resp_parser *p, struct resp_cmd **out)
{
    struct resp_cmd *c = malloc(sizeof(*c));
    if (c == NULL) {
        return proto_error(p, "out of memory");
    }
    c->argc = p->argc;
    c->argv = p->argv;
    c->argvlen = p->argvlen;
    p->argv = NULL;
    p->argvlen = NULL;
    p->argc = 0;
    p->nargs = 0;
    p->cmd_bytes = 0;
    p->args_cap = 0;
    p->state = ST_START;
    *out = c;
    return RESP_CMD;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Appends one byte to the argument being built in an inline line. */
static int put_byte(char **arg, size_t *n, size_t *cap, char ch)
{
    if (*n + 1 >= *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char *a = realloc(*arg, nc);
        if (a == NULL) {
            return DLOG_ENOMEM;
        }
        *arg = a;
        *cap = nc;
    }
    (*arg)[(*n)++] = ch;
    return 0;
}

/*
 * Splits the inline line s[0..len) into the parser's argument arrays, with
 * the quoting rules of Redis's sdssplitargs. Returns 0, or RESP_EPROTO.
 */
static int split_inline(struct resp_parser *p, const char *s, size_t len)
{
    size_t i = 0;

    for (;;) {
        while (i < len && isspace((unsigned char)s[i])) {
            i++;
        }
        if (i == len) {
            return 0;
        }
        int dq = 0, sq = 0, done = 0;
        char *arg = NULL;
        size_t n = 0, acap = 0;
        while (!done) {
            int rc = 0;
            if (dq) {
                if (i == len) {
                    free(arg);
                    return proto_error(p, "unbalanced quotes in request");
                }
                if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x' &&
                    hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0) {
                    rc = put_byte(&arg, &n, &acap,
                                  (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3])));
                    i += 4;
                } else if (s[i] == '\\' && i + 1 < len) {
                    char c = s[i + 1];
                    switch (c) {
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'b':
                        c = '\b';
                        break;
                    case 'a':
                        c = '\a';
                        break;
                    default:
                        break;
                    }
                    rc = put_byte(&arg, &n, &acap, c);
                    i += 2;
                } else if (s[i] == '"') {
                    if (i + 1 < len && !isspace((unsigned char)s[i + 1])) {
                        free(arg);
                        return proto_error(p, "unbalanced quotes in request");
                    }
                    done = 1;
                    i++;
                } else {
                    rc = put_byte(&arg, &n, &acap, s[i++]);
                }
            } else if (sq) {
                if (i == len) {
                    free(arg);
                    return proto_error(p, "unbalanced quotes in request");
                }
                if (s[i] == '\\' && i + 1 < len && s[i + 1] == '\'') {
                    rc = put_byte(&arg, &n, &acap, '\'');
                    i += 2;
                } else if (s[i] == '\'') {
                    if (i + 1 < len && !isspace((unsigned char)s[i + 1])) {
                        free(arg);
                        return proto_error(p, "unbalanced quotes in request");
                    }
                    done = 1;
                    i++;
                } else {
                    rc = put_byte(&arg, &n, &acap, s[i++]);
                }
            } else if (i == len || isspace((unsigned char)s[i])) {
                done = 1;
            } else if (s[i] == '"') {
                dq = 1;
                i++;
            } else if (s[i] == '\'') {
                sq = 1;
                i++;
            } else {
                rc = put_byte(&arg, &n, &acap, s[i++]);
            }
            if (rc != 0) {
                free(arg);
                return proto_error(p, "out of memory");
            }
        }
        if (arg == NULL && (arg = malloc(1)) == NULL) {
            return proto_error(p, "out of memory");
        }
        arg[n] = '\0';
        if (reserve_args(p, (size_t)p->argc + 1) != 0) {
            free(arg);
            return proto_error(p, "out of memory");
        }
        p->argv[p->argc] = arg;
        p->argvlen[p->argc] = n;
        p->argc++;
    }
}

int resp_parse(struct resp_parser *p, const char *buf, size_t len, size_t *used,
               struct resp_cmd **out)
{
    size_t pos = 0, eol = 0;
    long long v = 0;

    *out = NULL;
    for (;;) {
        *used = pos;
        switch (p->state) {
        case ST_DEAD:
            return RESP_EPROTO;

        case ST_START:
            if (pos == len) {
                return RESP_AGAIN;
            }
            if (buf[pos] != '*') {
                /* Inline command: one line of words. */
                if (!find_line(buf, pos, len, &eol)) {
                    if (len - pos > p->lim.max_inline) {
                        return proto_error(p, "too big inline request");
                    }
                    return RESP_AGAIN;
                }
                if (eol - pos > p->lim.max_inline) {
                    return proto_error(p, "too big inline request");
                }
                size_t end = eol > pos && buf[eol - 1] == '\r' ? eol - 1 : eol;
                if (split_inline(p, buf + pos, end - pos) != 0) {
                    *used = pos;
                    return RESP_EPROTO;
                }
                pos = eol + 1;
                *used = pos;
                if (p->argc > 0) {
                    return finish_cmd(p, out);
                }
                break;
            }
            if (!find_line(buf, pos, len, &eol)) {
                if (len - pos > p->lim.max_inline) {
                    return proto_error(p, "too big mbulk count string");
                }
                return RESP_AGAIN;
            }
            if (!header_number(buf, pos + 1, eol, &v) || v > (long long)p->lim.max_args) {
                return proto_error(p, "invalid multibulk length");
            }
            pos = eol + 1;
            if (v <= 0) {
                break; /* "*0" and "*-1": nothing to run */
            }
            p->nargs = (size_t)v;
            p->argc = 0;
            p->cmd_bytes = 0;
            /* Allocate for a few arguments now, more as they arrive, so a
             * header announcing a million costs nothing up front. */
            if (reserve_args(p, p->nargs < 16 ? p->nargs : 16) != 0) {
                return proto_error(p, "out of memory");
            }
            p->state = ST_BULK_HDR;
            break;

        case ST_BULK_HDR:
            if (pos == len) {
                return RESP_AGAIN;
            }
            if (buf[pos] != '$') {
                return proto_error(p, "expected '$', got '%c'",
                                   isprint((unsigned char)buf[pos]) ? buf[pos] : '?');
            }
            if (!find_line(buf, pos, len, &eol)) {
                if (len - pos > p->lim.max_inline) {
                    return proto_error(p, "too big bulk count string");
                }
                return RESP_AGAIN;
            }
            if (!header_number(buf, pos + 1, eol, &v) || v < 0 ||
                (unsigned long long)v > p->lim.max_bulk) {
                return proto_error(p, "invalid bulk length");
            }
            if (p->cmd_bytes + (size_t)v > p->lim.max_cmd_bytes) {
                return proto_error(p, "request larger than %zu bytes",
                                   p->lim.max_cmd_bytes);
            }
            pos = eol + 1;
            if (reserve_args(p, (size_t)p->argc + 1) != 0) {
                return proto_error(p, "out of memory");
            }
            p->argv[p->argc] = malloc((size_t)v + 1);
            if (p->argv[p->argc] == NULL) {
                return proto_error(p, "out of memory");
            }
            p->argvlen[p->argc] = (size_t)v;
            p->bulk_len = (size_t)v;
            p->bulk_got = 0;
            p->cmd_bytes += (size_t)v;
            p->state = ST_BULK_DATA;
            break;

        case ST_BULK_DATA: {
            size_t n = p->bulk_len - p->bulk_got;
            if (n > len - pos) {
                n = len - pos;
            }
            memcpy(p->argv[p->argc] + p->bulk_got, buf + pos, n);
            p->bulk_got += n;
            pos += n;
            if (p->bulk_got < p->bulk_len) {
                *used = pos;
                return RESP_AGAIN;
            }
            p->argv[p->argc][p->bulk_len] = '\0';
            p->state = ST_BULK_CRLF;
            break;
        }

        case ST_BULK_CRLF:
            if (len - pos < 2) {
                return RESP_AGAIN;
            }
            if (buf[pos] != '\r' || buf[pos + 1] != '\n') {
                return proto_error(p, "expected CRLF after bulk string");
            }
            pos += 2;
            p->argc++;
            if ((size_t)p->argc == p->nargs) {
                *used = pos;
                return finish_cmd(p, out);
            }
            p->state = ST_BULK_HDR;
            break;
        }
    }
}

/* ------------------------------------------------------------------ replies */

int resp_add_status(struct dlog_buf *b, const char *s)
{
    int rc = dlog_buf_append(b, "+", 1);
    if (rc == 0) {
        rc = dlog_buf_append(b, s, strlen(s));
    }
    return rc ? rc : dlog_buf_append(b, "\r\n", 2);
}

int resp_add_error(struct dlog_buf *b, const char *s)
{
    size_t n = strlen(s);
    int rc = dlog_buf_append(b, "-", 1);
    if (rc == 0) {
        size_t at = b->len;
        rc = dlog_buf_append(b, s, n);
        /* A CR or LF inside would end the reply early: blank them. */
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char *c = (char *)b->p + at + i;
            if (*c == '\r' || *c == '\n') {
                *c = ' ';
            }
        }
    }
    return rc ? rc : dlog_buf_append(b, "\r\n", 2);
}

int resp_add_errorf(struct dlog_buf *b, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return resp_add_error(b, msg);
}

static int add_prefixed_ll(struct dlog_buf *b, char prefix, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%c%lld\r\n", prefix, v);
    return dlog_buf_append(b, tmp, (size_t)n);
}

int resp_add_int(struct dlog_buf *b, long long v)
{
    return add_prefixed_ll(b, ':', v);
}

int resp_add_bulk(struct dlog_buf *b, const void *p, size_t n)
{
    int rc = add_prefixed_ll(b, '$', (long long)n);
    if (rc == 0 && n > 0) {
        rc = dlog_buf_append(b, p, n);
    }
    return rc ? rc : dlog_buf_append(b, "\r\n", 2);
}

int resp_add_cstr(struct dlog_buf *b, const char *s)
{
    return resp_add_bulk(b, s, strlen(s));
}

int resp_add_nil(struct dlog_buf *b)
{
    return dlog_buf_append(b, "$-1\r\n", 5);
}

int resp_add_array(struct dlog_buf *b, long long n)
{
    return add_prefixed_ll(b, '*', n);
}
