/*
 * The weight-streaming engine of the _m7 fully connected and wide pointwise kernels (mpq_m7.h):
 * y[p][o] = requant(bias[o] + sum_i w[o][i] * x[p][i]) for one or two input pixels p.
 *
 * The weights are read once, straight from their packed rows, and widened in registers:
 * SXTB16 (and SXTB16 ROR #8) turns one word of four 8-bit weights into two words of int16 lanes;
 * a word of 4-bit (2-bit) weights is first masked into two (four) words whose bytes hold the
 * codes in their top bits, i.e. the weights times 16 (64), so the same SXTB16 widen them and the
 * dot product comes out scaled by 16 (64), which is divided out exactly at the end. The lanes
 * come out of a word in a fixed order (ORDER8/4/2); the input pixels are unpacked once per call
 * and stored in that order, so each SMLAD multiplies matching values. Two output channels share
 * each input load; with two pixels each widened weight word serves both. The last, partial word
 * of a row is read byte by byte and masked.
 */
#include "mpq_m7.h"

/* Index, within a weight word, of the value each int16 lane of the widened words holds. */
static const uint8_t ORDER8[4] = {0, 2, 1, 3};
static const uint8_t ORDER4[8] = {0, 4, 2, 6, 1, 5, 3, 7};
static const uint8_t ORDER2[16] = {0, 8, 4, 12, 1, 9, 5, 13, 2, 10, 6, 14, 3, 11, 7, 15};

/* Lane word i of channels o (a) and o + 1 (b) against lane word i of each pixel (pixel 1 is
 * `lanes` words after pixel 0): acc[2 * p + channel]. */
MPQ_M7_INLINE void mac_lanes(uint32_t a, uint32_t b, const mpq_word_t *x, uint32_t i, uint32_t lanes,
                             uint32_t pixels, int32_t acc[4]) {
    acc[0] = mpq_smlad(x[i], a, acc[0]);
    acc[1] = mpq_smlad(x[i], b, acc[1]);
    if (pixels == 2u) {
        acc[2] = mpq_smlad(x[lanes + i], a, acc[2]);
        acc[3] = mpq_smlad(x[lanes + i], b, acc[3]);
    }
}

/* One packed weight word of each channel (w0, w1) against the matching values of the pixels. */
MPQ_M7_INLINE void mac_word(uint32_t w0, uint32_t w1, uint32_t bits, const mpq_word_t *x, uint32_t pixels,
                            int32_t acc[4]) {
    const uint32_t lanes = 16u / bits; /* int16 lane words per weight word */
    if (bits == 8u) {
        mac_lanes(mpq_sxtb16(w0), mpq_sxtb16(w1), x, 0u, lanes, pixels, acc);
        mac_lanes(mpq_sxtb16_ror8(w0), mpq_sxtb16_ror8(w1), x, 1u, lanes, pixels, acc);
        return;
    }
    const uint32_t mask = bits == 4u ? 0xF0F0F0F0u : 0xC0C0C0C0u;
#pragma GCC unroll 4
    for (uint32_t s = 0; s < 8u / bits; ++s) {
        const uint32_t up = 8u - bits * (s + 1u); /* moves code s of each byte to the byte's top */
        const uint32_t m0 = (w0 << up) & mask, m1 = (w1 << up) & mask;
        mac_lanes(mpq_sxtb16(m0), mpq_sxtb16(m1), x, 2u * s, lanes, pixels, acc);
        mac_lanes(mpq_sxtb16_ror8(m0), mpq_sxtb16_ror8(m1), x, 2u * s + 1u, lanes, pixels, acc);
    }
}

static uint32_t load_word(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v); /* LDR: the M7 reads words unaligned */
    return v;
}

/* The last `bytes` (1 to 4) bytes of a row holding `values` codes, the bits beyond them cleared. */
static uint32_t load_tail(const uint8_t *p, uint32_t bytes, uint32_t values, uint32_t bits) {
    uint32_t v = 0u;
    memcpy(&v, p, bytes); /* little-endian */
    return values * bits == 32u ? v : v & ((1u << (values * bits)) - 1u);
}

/* Unpacks the pixels p0 .. p0 + pixels - 1 of x into cols: for each weight word, pixel 0's
 * values in lane order, then pixel 1's; values past cin are zero. tmp: room for `padded` int16. */
static void fill_columns(const mpq_m7_matvec_t *m, uint32_t p0, uint32_t pixels, uint32_t padded, int16_t *tmp,
                         int16_t *cols) {
    const uint32_t per_word = 32u / m->w_bits;
    const uint8_t *order = m->w_bits == 8u ? ORDER8 : m->w_bits == 4u ? ORDER4 : ORDER2;
    const uint32_t x_row = mpq_row_bytes(m->cin, m->in_bits);
    memset(tmp + m->cin, 0, (padded - m->cin) * sizeof(int16_t));
    for (uint32_t p = 0; p < pixels; ++p) {
        mpq_m7_unpack_activations(m->x + (p0 + p) * x_row, m->cin, m->in_bits, m->in_offset, tmp);
        int16_t *dst = cols + p * per_word;
        for (uint32_t j = 0; j < padded; j += per_word, dst += pixels * per_word) {
            for (uint32_t i = 0; i < per_word; ++i) {
                dst[i] = tmp[j + order[i]];
            }
        }
    }
}

/* Every output channel of `pixels` (1 or 2, a constant) pixels whose columns are in cols; bits a
 * constant after inlining. */
MPQ_M7_INLINE void stream_rows(const mpq_m7_matvec_t *m, uint32_t bits, uint32_t pixels, const mpq_word_t *cols,
                               const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y0) {
    const uint32_t per_word = 32u / bits;
    const int32_t scale = bits == 8u ? 1 : bits == 4u ? 16 : 64;
    const uint32_t w_row = mpq_row_bytes(m->cin, bits);
    const uint32_t full = m->cin / per_word;
    const uint32_t tail_values = m->cin - full * per_word;
    const uint32_t tail_bytes = w_row - 4u * full;
    const uint32_t step = pixels * per_word / 2u; /* column words per weight word */
    const uint32_t y_row = mpq_row_bytes(out->c, out->bits);
    uint8_t *y1 = y0 + y_row;
    for (uint32_t o = 0; o < out->c; o += 2u) {
        const int second = o + 1u < out->c;
        const uint8_t *r0 = m->w + o * w_row;
        const uint8_t *r1 = second ? r0 + w_row : r0; /* a lone last channel is computed twice */
        const mpq_word_t *x = cols;
        int32_t acc[4] = {0, 0, 0, 0};
        for (uint32_t j = 0; j < full; ++j, x += step) {
            mac_word(load_word(r0 + 4u * j), load_word(r1 + 4u * j), bits, x, pixels, acc);
        }
        if (tail_values != 0u) {
            mac_word(load_tail(r0 + 4u * full, tail_bytes, tail_values, bits),
                     load_tail(r1 + 4u * full, tail_bytes, tail_values, bits), bits, x, pixels, acc);
        }
        mpq_m7_write_output(y0, o, out->bits, rq->bias[o] + acc[0] / scale, rq);
        if (pixels == 2u) {
            mpq_m7_write_output(y1, o, out->bits, rq->bias[o] + acc[2] / scale, rq);
        }
        if (second) {
            mpq_m7_write_output(y0, o + 1u, out->bits, rq->bias[o + 1u] + acc[1] / scale, rq);
            if (pixels == 2u) {
                mpq_m7_write_output(y1, o + 1u, out->bits, rq->bias[o + 1u] + acc[3] / scale, rq);
            }
        }
    }
}

MPQ_M7_INLINE void stream_pixels(const mpq_m7_matvec_t *m, uint32_t bits, const mpq_word_t *cols,
                                 uint32_t pixels, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    if (pixels == 2u) {
        stream_rows(m, bits, 2u, cols, rq, out, y);
    } else {
        stream_rows(m, bits, 1u, cols, rq, out, y);
    }
}

void mpq_m7_matvec(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    const uint32_t padded = mpq_m7_matvec_padded(m->cin, m->w_bits);
    const uint32_t y_row = mpq_row_bytes(out->c, out->bits);
    int16_t *tmp = (int16_t *)(void *)mpq_m7_work;
    int16_t *cols = tmp + padded;
    for (uint32_t p = 0; p < m->pixels; p += 2u) {
        const uint32_t pixels = m->pixels - p < 2u ? 1u : 2u;
        uint8_t *yp = y + p * y_row;
        fill_columns(m, p, pixels, padded, tmp, cols);
        mpq_clear_row(yp, out->c, out->bits);
        if (pixels == 2u) {
            mpq_clear_row(yp + y_row, out->c, out->bits);
        }
        switch (m->w_bits) {
        case 8u:
            stream_pixels(m, 8u, (const mpq_word_t *)cols, pixels, rq, out, yp);
            break;
        case 4u:
            stream_pixels(m, 4u, (const mpq_word_t *)cols, pixels, rq, out, yp);
            break;
        default:
            stream_pixels(m, 2u, (const mpq_word_t *)cols, pixels, rq, out, yp);
            break;
        }
    }
}
