/*
 * dlog error codes.
 *
 * Every dlog function that can fail returns an int: zero (or a count) on
 * success, one of the negative DLOG_E* codes below on failure. Codes travel
 * unchanged over the wire protocol, so their numeric values are part of the
 * protocol and never change; new codes are only ever appended.
 */
#ifndef DLOG_ERR_H
#define DLOG_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) — the one table of codes, names and messages. */
#define DLOG_ERR_MAP(X)                                                                  \
    X(OK, 0, "success")                                                                  \
    X(ENOMEM, -1, "out of memory")                                                       \
    X(EINVAL, -2, "invalid argument")                                                    \
    X(ENOTFOUND, -3, "stream not found")                                                 \
    X(EEXIST, -4, "stream already exists")                                               \
    X(EFENCED, -5, "writer fenced: a newer writer owns the stream")                      \
    X(ETRUNCATED, -6, "position is below the stream's truncation point")                 \
    X(ECORRUPT, -7, "checksum mismatch: stored data is corrupt")                         \
    X(ETOOBIG, -8, "record is larger than the stream's maximum record size")             \
    X(ETIMEDOUT, -9, "timed out")                                                        \
    X(EIO, -10, "input/output error")                                                    \
    X(ENOSPC, -11, "no space left on device")                                            \
    X(ECLOSED, -12, "handle is closed or closing")                                       \
    X(EUNAVAILABLE, -13, "service unavailable")                                          \
    X(EOVERCAPACITY, -14, "rate limit exceeded")                                         \
    X(EQUOTA, -15, "data size quota exceeded")                                           \
    X(ENOTOWNER, -16, "this proxy does not own the stream")                              \
    X(ENOTLEADER, -17, "this node is not the leader")                                    \
    X(EPROTO, -18, "protocol error")                                                     \
    X(ECONFLICT, -19, "version conflict: the object changed concurrently")               \
    X(ETXID, -20, "txid is smaller than the stream's last txid")                         \
    X(ESEALED, -21, "log segment is sealed")                                             \
    X(EEOF, -22, "end of stream")                                                        \
    X(EBUSY, -23, "resource busy")                                                       \
    X(ENOTSUP, -24, "operation not supported by this backend")                           \
    X(ECANCELED, -25, "operation canceled")                                              \
    X(ENAME, -26, "invalid stream name")                                                 \
    X(EINTERNAL, -27, "internal error")                                                  \
    X(ENOTDIR, -28, "not a directory, or cannot be created")                             \
    X(EURI, -29, "unrecognised namespace URI")

enum dlog_err {
#define DLOG__ERR_ENUM(name, value, msg) DLOG_##name = value,
    DLOG_ERR_MAP(DLOG__ERR_ENUM)
#undef DLOG__ERR_ENUM
};

/* The lowest (most negative) code; codes lie in [DLOG_ERR_MIN, 0]. */
#define DLOG_ERR_MIN DLOG_EURI

/*
 * dlog_strerror returns a static, human-readable message for code. Unknown
 * codes give "unknown error". The string is never freed by the caller.
 */
const char *dlog_strerror(int code);

/*
 * dlog_errname returns the static symbolic name of code, such as
 * "DLOG_EFENCED", or "DLOG_E?" for an unknown code.
 */
const char *dlog_errname(int code);

#ifdef __cplusplus
}
#endif
#endif /* DLOG_ERR_H */
