/*
 * CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected 0x82F63B78), as used
 * by iSCSI, ext4 and LevelDB. Uses the SSE4.2 crc32 instruction when the CPU
 * has it (checked once at run time), a slicing-by-8 table otherwise.
 *
 * crc32c_extend(0, p, n) is the CRC of p; crc32c_extend(crc32c(a), b, nb) is
 * the CRC of a||b. crc32c("123456789") == 0xE3069283.
 */
#ifndef DLOG_BASE_CRC32C_H
#define DLOG_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);
static inline uint32_t crc32c(const void *p, size_t n)
{
    return crc32c_extend(0, p, n);
}
/* Force the portable path (for tests comparing both); returns the old setting. */
int crc32c_force_sw(int on);
/* 1 if the hardware instruction is in use. */
int crc32c_hw_available(void);

#endif
