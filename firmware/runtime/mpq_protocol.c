/*
 * Framing (docs/protocol.md, "Frame"). The receiver keeps the bytes of the frame it is
 * assembling, so when a frame fails (bad CRC, impossible length) it resumes scanning at the
 * byte after that frame's sync byte and finds a frame that started inside the broken one.
 * It never holds more than one maximal frame: a length above MPQ_MAX_PAYLOAD is rejected from
 * the header, before any payload is read.
 */
#include "mpq_protocol.h"

#include <string.h>

#include "bsp.h"
#include "mpq_crc32.h"

#define RX_CAPACITY ((uint32_t)sizeof(((mpq_rx_t *)0)->buf))

void mpq_rx_reset(mpq_rx_t *rx) {
    rx->head = 0;
    rx->tail = 0;
    rx->consume = 0;
}

static void rx_drop(mpq_rx_t *rx, uint32_t n) {
    rx->head += n;
    if (rx->head >= rx->tail) {
        rx->head = 0;
        rx->tail = 0;
    }
}

static void rx_drop_consumed(mpq_rx_t *rx) {
    if (rx->consume != 0) {
        rx_drop(rx, rx->consume);
        rx->consume = 0;
    }
}

void mpq_rx_push(mpq_rx_t *rx, uint8_t byte) {
    rx_drop_consumed(rx);
    if (rx->tail == RX_CAPACITY) {
        if (rx->head == 0) {
            rx_drop(rx, 1); /* cannot happen when mpq_rx_next is drained after every push */
        }
        memmove(rx->buf, rx->buf + rx->head, rx->tail - rx->head);
        rx->tail -= rx->head;
        rx->head = 0;
    }
    rx->buf[rx->tail++] = byte;
}

bool mpq_rx_partial(const mpq_rx_t *rx) {
    return rx->tail - rx->head > rx->consume;
}

static bool is_request(uint8_t type) {
    return type >= MPQ_INFO && type <= MPQ_LAST_REQUEST;
}

mpq_rx_event_t mpq_rx_next(mpq_rx_t *rx, mpq_frame_t *frame) {
    rx_drop_consumed(rx);
    for (;;) {
        const uint8_t *start = memchr(rx->buf + rx->head, MPQ_SYNC, rx->tail - rx->head);
        if (start == NULL) {
            rx_drop(rx, rx->tail - rx->head);
            return MPQ_RX_NONE;
        }
        rx_drop(rx, (uint32_t)(start - (rx->buf + rx->head)));
        const uint8_t *f = rx->buf + rx->head;
        uint32_t held = rx->tail - rx->head;
        if (held < MPQ_HEADER_BYTES) {
            return MPQ_RX_NONE;
        }
        uint32_t len = mpq_get_u16(f + 3);
        if (len > MPQ_MAX_PAYLOAD) {
            rx_drop(rx, 1); /* not a frame we accept: rescan after this sync byte */
            continue;
        }
        uint32_t total = MPQ_FRAME_OVERHEAD + len;
        if (held < total) {
            return MPQ_RX_NONE;
        }
        frame->type = f[1];
        frame->seq = f[2];
        frame->len = (uint16_t)len;
        frame->payload = f + MPQ_HEADER_BYTES;
        if (mpq_crc32(0, f + 1, MPQ_HEADER_BYTES - 1 + len) == mpq_get_u32(f + MPQ_HEADER_BYTES + len)) {
            rx->consume = total;
            return MPQ_RX_FRAME;
        }
        rx_drop(rx, 1);
        if (is_request(frame->type)) {
            frame->len = 0;
            frame->payload = NULL;
            return MPQ_RX_BAD_CRC;
        }
    }
}

static void tx_raw(mpq_tx_t *tx, const uint8_t *bytes, uint32_t n) {
    tx->crc = mpq_crc32(tx->crc, bytes, n);
    for (uint32_t i = 0; i < n; ++i) {
        bsp_uart_write(bytes[i]);
    }
}

void mpq_tx_begin(mpq_tx_t *tx, uint8_t type, uint8_t seq, uint16_t len) {
    const uint8_t header[MPQ_HEADER_BYTES - 1] = {type, seq, (uint8_t)len, (uint8_t)(len >> 8)};
    bsp_uart_write(MPQ_SYNC);
    tx->crc = 0;
    tx_raw(tx, header, sizeof header);
    tx->remaining = len;
}

void mpq_tx_put(mpq_tx_t *tx, const void *data, uint32_t n) {
    if (n > tx->remaining) {
        n = tx->remaining;
    }
    tx_raw(tx, (const uint8_t *)data, n);
    tx->remaining -= n;
}

void mpq_tx_u8(mpq_tx_t *tx, uint8_t value) {
    mpq_tx_put(tx, &value, 1);
}

void mpq_tx_u16(mpq_tx_t *tx, uint16_t value) {
    const uint8_t bytes[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    mpq_tx_put(tx, bytes, sizeof bytes);
}

void mpq_tx_u32(mpq_tx_t *tx, uint32_t value) {
    mpq_tx_u16(tx, (uint16_t)value);
    mpq_tx_u16(tx, (uint16_t)(value >> 16));
}

void mpq_tx_u64(mpq_tx_t *tx, uint64_t value) {
    mpq_tx_u32(tx, (uint32_t)value);
    mpq_tx_u32(tx, (uint32_t)(value >> 32));
}

void mpq_tx_end(mpq_tx_t *tx) {
    static const uint8_t zero = 0;
    while (tx->remaining != 0) {
        tx_raw(tx, &zero, 1);
        tx->remaining--;
    }
    uint32_t crc = tx->crc;
    const uint8_t trailer[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
    for (uint32_t i = 0; i < sizeof trailer; ++i) {
        bsp_uart_write(trailer[i]);
    }
}

void mpq_send_error(uint8_t seq, uint8_t code, const char *message) {
    uint32_t n = 0;
    while (n < MPQ_MAX_PAYLOAD - 1u && message[n] != '\0') {
        n++;
    }
    mpq_tx_t tx;
    mpq_tx_begin(&tx, MPQ_ERROR, seq, (uint16_t)(1u + n));
    mpq_tx_u8(&tx, code);
    mpq_tx_put(&tx, message, n);
    mpq_tx_end(&tx);
}

uint16_t mpq_get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t mpq_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
