/*
 * seg-state: one node's state of one data group, for the tests -- a
 * SEG_DUMP asking for the state only (docs/protocol.md), sent to exactly
 * that node (SEG_DUMP is never redirected).
 *
 *   seg-state HOST:PORT GROUP
 *
 * Prints "applied hash segments entries bytes" (hash in hex) and exits 0;
 * exits 3 when the node is itself catching up (DLOG_EBUSY), 1 otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "net/rpc.h"

int main(int argc, char **argv)
{
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    struct net_rpc *r = NULL;
    struct net_rpc_reply rep;
    struct wire_msg q;
    int rv;

    if (argc != 3) {
        fprintf(stderr, "usage: seg-state HOST:PORT GROUP\n");
        return 2;
    }
    if (net_rpc_open(argv[1], "seg-state", &r, errmsg) != 0) {
        fprintf(stderr, "seg-state: %s\n", errmsg);
        return 1;
    }
    net_rpc_set_timeout(r, 3000);
    memset(&q, 0, sizeof q);
    q.type = WIRE_SEG_DUMP;
    q.u.seg_dump.group = (uint32_t)strtoul(argv[2], NULL, 10);
    rv = net_rpc_call(r, &q, NET_RPC_IDEMPOTENT, &rep, errmsg);
    if (rv == 0) {
        rv = rep.msg.status;
        if (rv == 0) {
            const struct wire_seg_dump_rep *d = &rep.msg.u.seg_dump_rep;
            printf("%" PRIu64 " %016" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                   d->applied, d->hash, d->segments, d->entries, d->bytes);
        } else {
            snprintf(errmsg, sizeof errmsg, "%s",
                     rep.msg.err.message ? rep.msg.err.message : dlog_strerror(rv));
        }
        net_rpc_reply_free(&rep);
    }
    net_rpc_close(r);
    if (rv != 0) {
        fprintf(stderr, "seg-state: %s\n", errmsg);
        return rv == DLOG_EBUSY ? 3 : 1;
    }
    return 0;
}
