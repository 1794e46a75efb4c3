/*
 * Cortex-M7 max pool kh x kw with stride and padding, any bits and sizes
 * (docs/integer-arithmetic.md, "max_pool"): computes exactly what mpq_max_pool_ref computes.
 *
 * The window's maximum is taken on the packed rows, a word (4 bytes) at a time: the values at
 * one bit position of every byte are masked out and compared bytewise with USUB8 + SEL
 * (mpq_umax8), so an 8-bit row costs one instruction pair per 4 channels, a 4-bit row two per
 * 8 channels, a 2-bit row four per 16. The maximum row is then requantized value by value.
 * No scratch: MPQ_MAX_POOL_M7_WORDS words of the row are reduced per pass, on the stack.
 */
#include "mpq_m7.h"

#define MPQ_MAX_POOL_M7_WORDS 16u

/* The n <= 4 bytes at p as a little-endian word, missing bytes zero (rows are not word-aligned). */
MPQ_M7_INLINE uint32_t mpq_max_pool_load(const uint8_t *p, uint32_t n) {
    uint32_t word = 0u;
    memcpy(&word, p, n);
    return word;
}

/* The valuewise maximum of two words of packed unsigned `bits`-bit values. */
MPQ_M7_INLINE uint32_t mpq_packed_max(uint32_t a, uint32_t b, uint32_t bits) {
    if (bits == 8u) {
        return mpq_umax8(a, b);
    }
    const uint32_t mask = bits == 4u ? 0x0F0F0F0Fu : 0x03030303u;
    uint32_t r = 0u;
    for (uint32_t s = 0; s < 8u; s += bits) {
        r |= mpq_umax8((a >> s) & mask, (b >> s) & mask) << s;
    }
    return r;
}

/* The kernel for input `bits` (a constant after inlining). */
MPQ_M7_INLINE void mpq_max_pool_m7_at(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                      const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *yp, uint32_t bits) {
    const uint32_t x_row = mpq_row_bytes(in->c, bits);
    const uint32_t y_row = mpq_row_bytes(out->c, out->bits);
    const uint32_t per_byte = 8u / bits;
    const uint32_t mask = (1u << bits) - 1u;
    uint32_t best[MPQ_MAX_POOL_M7_WORDS];

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const mpq_window_axis_t ry = mpq_window_axis(oy, win->sh, win->pad_top, win->kh, in->h);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const mpq_window_axis_t rx = mpq_window_axis(ox, win->sw, win->pad_left, win->kw, in->w);
            mpq_clear_row(yp, out->c, out->bits);
            for (uint32_t b0 = 0; b0 < x_row; b0 += 4u * MPQ_MAX_POOL_M7_WORDS) {
                const uint32_t n_bytes = x_row - b0 < 4u * MPQ_MAX_POOL_M7_WORDS ? x_row - b0 : 4u * MPQ_MAX_POOL_M7_WORDS;
                const uint32_t n_words = (n_bytes + 3u) / 4u;
                int first = 1; /* every window has an in-bounds tap (padding < kernel) */
                for (uint32_t ky = ry.lo; ky < ry.hi; ++ky) {
                    for (uint32_t kx = rx.lo; kx < rx.hi; ++kx) {
                        const uint8_t *src = x + mpq_window_pixel(&ry, &rx, ky, kx, in->w) * x_row + b0;
                        for (uint32_t j = 0; j < n_words; ++j) {
                            const uint32_t n = n_bytes - 4u * j < 4u ? n_bytes - 4u * j : 4u;
                            const uint32_t word = mpq_max_pool_load(src + 4u * j, n);
                            best[j] = first ? word : mpq_packed_max(best[j], word, bits);
                        }
                        first = 0;
                    }
                }
                const uint32_t c_lo = b0 * per_byte;
                const uint32_t c_hi = (b0 + n_bytes) * per_byte < in->c ? (b0 + n_bytes) * per_byte : in->c;
                for (uint32_t c = c_lo; c < c_hi; ++c) {
                    const uint32_t bit = (c - c_lo) * bits;
                    const int32_t value = (int32_t)((best[bit >> 5] >> (bit & 31u)) & mask);
                    mpq_write_output(yp, c, out->bits, rq->bias[c] + value + win->in_offset, rq);
                }
            }
        }
    }
}

void mpq_m7_max_pool(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                     const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    switch (in->bits) {
    case 8u:
        mpq_max_pool_m7_at(in, x, win, rq, out, y, 8u);
        break;
    case 4u:
        mpq_max_pool_m7_at(in, x, win, rq, out, y, 4u);
        break;
    default:
        mpq_max_pool_m7_at(in, x, win, rq, out, y, 2u);
        break;
    }
}

int mpq_max_pool_m7(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                    const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_max_pool_check(in, x, win, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_max_pool(in, x, win, rq, out, y);
    return MPQ_OK;
}
