/*
 * CRC-32 of the frames: IEEE 802.3, reflected polynomial 0xEDB88320, initial value and final
 * XOR 0xFFFFFFFF; equal to Python's zlib.crc32 (docs/protocol.md).
 *
 * Four bits a step from a 16-entry table: 64 B of flash where a byte-wide table takes 1 kB. The
 * kilobyte goes to the model; the link pays a second table step a byte (tools/link_bench.py).
 */
#include "mpq_crc32.h"

/* crc_table[n] = CRC of the nibble n, generated once from the polynomial. */
static const uint32_t crc_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t mpq_crc32(uint32_t crc, const void *data, uint32_t n) {
    const uint8_t *bytes = (const uint8_t *)data;
    crc = ~crc;
    for (uint32_t i = 0; i < n; ++i) {
        crc ^= bytes[i];
        crc = crc_table[crc & 0xFu] ^ (crc >> 4);
        crc = crc_table[crc & 0xFu] ^ (crc >> 4);
    }
    return ~crc;
}
