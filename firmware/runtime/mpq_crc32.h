/* CRC-32 of protocol frames (docs/protocol.md). */
#ifndef MPQ_CRC32_H
#define MPQ_CRC32_H

#include <stdint.h>

/* Continue a CRC-32 over n more bytes, like zlib.crc32(data, crc): start with crc = 0. */
uint32_t mpq_crc32(uint32_t crc, const void *data, uint32_t n);

#endif /* MPQ_CRC32_H */
