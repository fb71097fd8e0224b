/*
 * nsq_crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), as used by the snappy framing
 * format. A hardware path (SSE4.2 crc32 instruction) is chosen at first use when the CPU has it;
 * otherwise a slicing-by-8 table is used. Both give identical results; the table is built once.
 */
#ifndef NSQ_CRC32C_H
#define NSQ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C: pass 0 as crc for a fresh checksum. Thread-safe. */
uint32_t nsq_crc32c_update(uint32_t crc, const void *data, size_t len);

static inline uint32_t nsq_crc32c(const void *data, size_t len)
{
    return nsq_crc32c_update(0, data, len);
}

/* The portable table implementation, exposed so tests can compare it with the hardware path. */
uint32_t nsq_crc32c_update_portable(uint32_t crc, const void *data, size_t len);

#endif
