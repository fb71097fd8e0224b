/*
 * diskqueue_peek: the owner-side, non-destructive look at the next records (diskqueue.h).
 *
 * Everything happens under the queue's lock `mu` and in memory: the read-ahead ring first, then,
 * when nothing can sit between them, the pending write buffer. Nothing is moved or counted, so
 * depth, the consumer position and the metadata stay exactly as they were; the I/O thread is held
 * off only for the copies the callback makes (the caller bounds `max`).
 *
 * Why the pending buffer needs a condition: the queue's order is ra, then bytes on disk not yet
 * read ahead, then the batch an I/O thread is writing, then pending. The two middle parts are
 * I/O-side state the owner cannot read without I/O or racing, so pending is shown only when both
 * are known to be empty: the ring's tail position equals the published write position, and every
 * unwritten record is in pending (no batch in flight, no batch kept after a failed write).
 */
#include "diskqueue_internal.h"

/* Records in the pending buffer ("<int32 BE length><payload>" each), mu held. */
static int64_t dq_pending_records_locked(const struct diskqueue *dq)
{
    int64_t n = 0;
    size_t off = 0;
    while (off + DQ_LEN_BYTES <= dq->pending.len) {
        off += DQ_LEN_BYTES + nsq_get_be32(dq->pending.p + off);
        n++;
    }
    return n;
}

/* True when pending directly follows the ring (see the file comment), mu held. */
static bool dq_pending_follows_ring_locked(const struct diskqueue *dq)
{
    int64_t file = dq->cons_file, pos = dq->cons_pos;
    if (dq->ra_count > 0) {
        const struct dq_rec *last = &dq->ra[(dq->ra_head + dq->ra_count - 1) % dq->ra_cap];
        file = last->next_file;
        pos = last->next_pos;
    }
    if (file != dq->wr_file_pub || pos != dq->wr_pos_pub)
        return false;
    return dq_pending_records_locked(dq) == dq->unwritten;
}

size_t diskqueue_peek(struct diskqueue *dq, size_t max, diskqueue_peek_fn fn, void *arg)
{
    size_t seen = 0;
    pthread_mutex_lock(&dq->mu);
    for (size_t i = 0; i < dq->ra_count && seen < max; i++) {
        const struct dq_rec *r = &dq->ra[(dq->ra_head + i) % dq->ra_cap];
        seen++;
        if (fn(r->data, r->len, arg) != 0)
            goto out;
    }
    if (seen < max && dq->unwritten > 0 && dq_pending_follows_ring_locked(dq)) {
        size_t off = 0;
        while (seen < max && off + DQ_LEN_BYTES <= dq->pending.len) {
            size_t len = nsq_get_be32(dq->pending.p + off);
            seen++;
            if (fn(dq->pending.p + off + DQ_LEN_BYTES, len, arg) != 0)
                goto out;
            off += DQ_LEN_BYTES + len;
        }
    }
out:
    pthread_mutex_unlock(&dq->mu);
    return seen;
}
