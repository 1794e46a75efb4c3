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

/* Up to four output channels by up to two pixels: acc[MPQ_MV_ROWS * p + r]. */
#define MPQ_MV_ROWS 4u

/* Lane word i of each channel's widened weight word (v[r]) against lane word i of each pixel
 * (pixel 1 is `lanes` words after pixel 0). */
MPQ_M7_INLINE void mac_lanes(const uint32_t *v, uint32_t rows, const mpq_word_t *x, uint32_t i, uint32_t lanes,
                             uint32_t pixels, int32_t *acc) {
#pragma GCC unroll 4
    for (uint32_t p = 0; p < pixels; ++p) {
        const uint32_t xv = x[p * lanes + i];
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            acc[MPQ_MV_ROWS * p + r] = mpq_smlad(xv, v[r], acc[MPQ_MV_ROWS * p + r]);
        }
    }
}

/* One packed weight word of each channel (w[r]) against the matching values of the pixels. */
MPQ_M7_INLINE void mac_word(const uint32_t *w, uint32_t rows, uint32_t bits, const mpq_word_t *x, uint32_t pixels,
                            int32_t *acc) {
    const uint32_t lanes = 16u / bits; /* int16 lane words per weight word */
    uint32_t lo[MPQ_MV_ROWS], hi[MPQ_MV_ROWS];
    if (bits == 8u) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            lo[r] = mpq_sxtb16(w[r]);
            hi[r] = mpq_sxtb16_ror8(w[r]);
        }
        mac_lanes(lo, rows, x, 0u, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 1u, lanes, pixels, acc);
        return;
    }
    if (bits == 4u) {
        const uint32_t mask = 0xF0F0F0F0u;
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            const uint32_t m = mpq_and_lsl4(mask, w[r]); /* codes 0, 2, 4, 6 at the bytes' tops */
            lo[r] = mpq_sxtb16(m);
            hi[r] = mpq_sxtb16_ror8(m);
        }
        mac_lanes(lo, rows, x, 0u, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 1u, lanes, pixels, acc);
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            const uint32_t m = w[r] & mask; /* codes 1, 3, 5, 7 */
            lo[r] = mpq_sxtb16(m);
            hi[r] = mpq_sxtb16_ror8(m);
        }
        mac_lanes(lo, rows, x, 2u, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 3u, lanes, pixels, acc);
        return;
    }
    const uint32_t mask = 0xC0C0C0C0u;
#pragma GCC unroll 4
    for (uint32_t s = 0; s < 4u; ++s) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) { /* code s of each byte at the byte's top */
            const uint32_t m = s == 0u ? mpq_and_lsl6(mask, w[r]) : s == 1u ? mpq_and_lsl4(mask, w[r])
                               : s == 2u ? mpq_and_lsl2(mask, w[r]) : w[r] & mask;
            lo[r] = mpq_sxtb16(m);
            hi[r] = mpq_sxtb16_ror8(m);
        }
        mac_lanes(lo, rows, x, 2u * s, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 2u * s + 1u, lanes, pixels, acc);
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

/* Puts the unpacked values of one row (t: int16 pairs in value order, `padded` values) into
 * lane order for `bits`-wide weights, a weight word's values every `stride` words of dst (bits a
 * constant after inlining). Each lane word holds values a and a + per_word / 2 of the same parity
 * (the ORDERs), i.e. the same halves of two words of t: one PKHBT or PKHTB per lane word. */
MPQ_M7_INLINE void order_lanes(const mpq_word_t *t, uint32_t padded, uint32_t bits, uint32_t stride,
                               mpq_word_t *dst) {
    const uint32_t per_word = 32u / bits;
    const uint8_t *order = bits == 8u ? ORDER8 : bits == 4u ? ORDER4 : ORDER2;
    for (uint32_t j = 0; j < padded; j += per_word, t += per_word / 2u, dst += stride) {
#pragma GCC unroll 8
        for (uint32_t q = 0; q < per_word / 2u; ++q) {
            const uint32_t a = order[2u * q];
            const uint32_t lo = t[a >> 1], hi = t[(a >> 1) + per_word / 4u];
            dst[q] = (a & 1u) != 0u ? mpq_pack_hi(lo, hi) : mpq_pack_lo(lo, hi);
        }
    }
}

/* Unpacks the pixels p0 .. p0 + pixels - 1 of x into cols: for each weight word, pixel 0's
 * values in lane order, then pixel 1's; values past cin are zero. tmp: room for `padded` int16. */
__attribute__((noinline)) /* inlined, it costs the streaming loops registers */
static void fill_columns(const mpq_m7_matvec_t *m, uint32_t p0, uint32_t pixels, uint32_t padded, int16_t *tmp,
                         int16_t *cols) {
    const uint32_t per_word = 32u / m->w_bits;
    const uint32_t x_row = mpq_row_bytes(m->cin, m->in_bits);
    const uint32_t stride = pixels * per_word / 2u;
    memset(tmp + m->cin, 0, (padded - m->cin) * sizeof(int16_t));
    for (uint32_t p = 0; p < pixels; ++p) {
        mpq_m7_unpack_activations(m->x + (p0 + p) * x_row, m->cin, m->in_bits, m->in_offset, tmp);
        const mpq_word_t *t = (const mpq_word_t *)(const void *)tmp;
        mpq_word_t *dst = (mpq_word_t *)(void *)(cols + p * per_word);
        switch (m->w_bits) {
        case 8u:
            order_lanes(t, padded, 8u, stride, dst);
            break;
        case 4u:
            order_lanes(t, padded, 4u, stride, dst);
            break;
        default:
            order_lanes(t, padded, 2u, stride, dst);
            break;
        }
    }
}

/* Output channels o .. o + n - 1 from their accumulators, at positions out->c0 + o .. of a cleared
 * row (out may be an output-channel window), the output bits a constant in each case (the
 * requantization inlined, its short path for shift <= 32 too). */
static void write_outputs(uint8_t *row, uint32_t o, uint32_t n, const int32_t *acc, const mpq_requant_t *rq,
                          const mpq_dims_t *out) {
    const uint32_t at = out->c0 + o;
    switch (out->bits) {
    case 8u:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 8u, acc[i], rq->mult[o + i], rq->shift[o + i], MPQ_M7_RQ_SMALL);
        }
        break;
    case 4u:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 4u, acc[i], rq->mult[o + i], rq->shift[o + i], MPQ_M7_RQ_SMALL);
        }
        break;
    case 2u:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 2u, acc[i], rq->mult[o + i], rq->shift[o + i], MPQ_M7_RQ_SMALL);
        }
        break;
    default:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 32u, acc[i], 0, 1, MPQ_M7_RQ_NARROW);
        }
        break;
    }
}

/* Output channels o .. o + rows - 1 (rows a constant) of `pixels` pixels (a constant) whose
 * columns are in cols; bits a constant after inlining. */
MPQ_M7_INLINE void stream_channels(const mpq_m7_matvec_t *m, uint32_t bits, uint32_t pixels, uint32_t rows,
                                   uint32_t o, const mpq_word_t *cols, const mpq_requant_t *rq,
                                   const mpq_dims_t *out, uint8_t *y0) {
    const uint32_t per_word = 32u / bits;
    const int32_t scale = bits == 8u ? 1 : bits == 4u ? 16 : 64;
    const uint32_t w_row = mpq_row_bytes(m->cin, bits);
    const uint32_t full = m->cin / per_word;
    const uint32_t tail_values = m->cin - full * per_word;
    const uint32_t step = pixels * per_word / 2u; /* column words per weight word */
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    const uint8_t *r0 = m->w + o * w_row;
    const mpq_word_t *x = cols;
    int32_t acc[2u * MPQ_MV_ROWS] = {0};
    uint32_t w[MPQ_MV_ROWS];
#pragma GCC unroll 2
    for (uint32_t j = 0; j < full; ++j, x += step) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            w[r] = load_word(r0 + r * w_row + 4u * j);
        }
        mac_word(w, rows, bits, x, pixels, acc);
    }
    if (tail_values != 0u) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            w[r] = load_tail(r0 + r * w_row + 4u * full, w_row - 4u * full, tail_values, bits);
        }
        mac_word(w, rows, bits, x, pixels, acc);
    }
#pragma GCC unroll 4
    for (uint32_t p = 0; p < pixels; ++p) {
        int32_t sums[MPQ_MV_ROWS]; /* a copy: acc stays in registers */
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            sums[r] = rq->bias[o + r] + acc[MPQ_MV_ROWS * p + r] / scale;
        }
        write_outputs(y0 + p * y_row, o, rows, sums, rq, out);
    }
}

/* Every output channel of `pixels` (1 or 2, a constant) pixels: four channels at a time for one
 * pixel, two for two (what the registers hold), then one by one. */
MPQ_M7_INLINE void stream_rows(const mpq_m7_matvec_t *m, uint32_t bits, uint32_t pixels, const mpq_word_t *cols,
                               const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y0) {
    const uint32_t group = pixels == 1u && bits == 8u ? 4u : 2u;
    uint32_t o = 0;
    for (; o + group <= out->c; o += group) {
        stream_channels(m, bits, pixels, group, o, cols, rq, out, y0);
    }
    for (; o < out->c; ++o) {
        stream_channels(m, bits, pixels, 1u, o, cols, rq, out, y0);
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
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    int16_t *tmp = (int16_t *)(void *)mpq_m7_work;
    int16_t *cols = tmp + padded;
    for (uint32_t p = 0; p < m->pixels; p += 2u) {
        const uint32_t pixels = m->pixels - p < 2u ? 1u : 2u;
        uint8_t *yp = y + p * y_row;
        fill_columns(m, p, pixels, padded, tmp, cols);
        mpq_m7_clear_outputs(yp, out);
        if (pixels == 2u) {
            mpq_m7_clear_outputs(yp + y_row, out);
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
