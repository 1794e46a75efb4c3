/*
 * Framing of the UART protocol (docs/protocol.md): the frame receiver with resynchronization,
 * the frame writer, error frames. What the commands mean is in mpq_commands.c.
 *
 *   sync 0xA5 | type | seq | len (u16 LE) | payload[len] | crc32 (u32 LE) over type..payload
 */
#ifndef MPQ_PROTOCOL_H
#define MPQ_PROTOCOL_H

#include <stdbool.h>
#include <stdint.h>

/* 2: RUN/PERF answers carry the link's disturbance counts; the MODEL answer carries flags.
 * 3: INFO carries the receive buffer (the LOAD window), LOAD answers are cumulative, FILL. */
#define MPQ_PROTOCOL_VERSION 3u
#define MPQ_SYNC 0xA5u
#ifndef MPQ_MAX_PAYLOAD
#define MPQ_MAX_PAYLOAD 1024u /* the receiver holds one maximal frame (RAM: harness.ir.memory RUNTIME_RAM_BYTES) */
#endif
#define MPQ_HEADER_BYTES 5u /* sync, type, seq, len */
#define MPQ_FRAME_OVERHEAD (MPQ_HEADER_BYTES + 4u)

/* Frame types: requests, answers (request | MPQ_ANSWER), and the two unsolicited ones. */
enum {
    MPQ_INFO = 0x01,
    MPQ_MODEL = 0x02,
    MPQ_LOAD = 0x03,
    MPQ_RUN = 0x04,
    MPQ_READ = 0x05,
    MPQ_PERF = 0x06,
    MPQ_FILL = 0x07,
    MPQ_LAST_REQUEST = MPQ_FILL,
    MPQ_ANSWER = 0x80,
    MPQ_HELLO = 0xC0,
    MPQ_ERROR = 0xFF,
};

/* Error codes (payload byte 0 of an MPQ_ERROR frame, then an ASCII message). */
enum {
    MPQ_ERR_BAD_CRC = 1,
    MPQ_ERR_BAD_LEN = 2,
    MPQ_ERR_UNKNOWN_TYPE = 3,
    MPQ_ERR_BAD_ARG = 4,
    MPQ_ERR_RUN_FAILED = 5,
    MPQ_ERR_FAULT = 6,
};

/* A received frame; payload points into the receiver and stays valid until the next
 * mpq_rx_push/mpq_rx_next/mpq_rx_reset. */
typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    const uint8_t *payload;
} mpq_frame_t;

typedef enum {
    MPQ_RX_NONE,    /* nothing complete yet: push more bytes */
    MPQ_RX_FRAME,   /* a frame with a good CRC */
    MPQ_RX_BAD_CRC, /* a request-like frame whose CRC failed (type and seq set, no payload) */
} mpq_rx_event_t;

/* Receiver: holds at most one maximal frame. Bytes go in with mpq_rx_push; mpq_rx_next is then
 * called until it returns MPQ_RX_NONE (one push can complete several frames after a resync). */
typedef struct {
    uint8_t buf[MPQ_FRAME_OVERHEAD + MPQ_MAX_PAYLOAD];
    uint32_t head;    /* first byte not yet consumed */
    uint32_t tail;    /* one past the last byte held */
    uint32_t consume; /* bytes of the frame last returned, dropped on the next call */
} mpq_rx_t;

void mpq_rx_reset(mpq_rx_t *rx);
void mpq_rx_push(mpq_rx_t *rx, uint8_t byte);
mpq_rx_event_t mpq_rx_next(mpq_rx_t *rx, mpq_frame_t *frame);
/* True while part of a frame is held (used to drop a frame that stopped half-way). */
bool mpq_rx_partial(const mpq_rx_t *rx);

/* Frame writer: declare the payload length, put exactly that many bytes, end. Puts beyond the
 * declared length are dropped and a short payload is padded with zeros, so the frame on the
 * wire is always well-formed. */
typedef struct {
    uint32_t crc;
    uint32_t remaining;
} mpq_tx_t;

void mpq_tx_begin(mpq_tx_t *tx, uint8_t type, uint8_t seq, uint16_t len);
void mpq_tx_put(mpq_tx_t *tx, const void *data, uint32_t n);
void mpq_tx_u8(mpq_tx_t *tx, uint8_t value);
void mpq_tx_u16(mpq_tx_t *tx, uint16_t value);
void mpq_tx_u32(mpq_tx_t *tx, uint32_t value);
void mpq_tx_u64(mpq_tx_t *tx, uint64_t value);
void mpq_tx_end(mpq_tx_t *tx);

/* An error frame: code, then the message (truncated to fit one frame). */
void mpq_send_error(uint8_t seq, uint8_t code, const char *message);

/* Little-endian field readers for request payloads (callers check the length first). */
uint16_t mpq_get_u16(const uint8_t *p);
uint32_t mpq_get_u32(const uint8_t *p);

#endif /* MPQ_PROTOCOL_H */
