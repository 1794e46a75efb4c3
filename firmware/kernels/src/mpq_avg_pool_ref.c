/*
 * Portable average pool k x k with stride and padding, any bits and sizes
 * (docs/integer-arithmetic.md, "avg_pool": a sum over the window's in-bounds taps; the divisor
 * kh * kw lives in the multiplier).
 *
 * No scratch: channels are summed in chunks of MPQ_AVG_POOL_CHUNK on the stack
 * (MPQ_AVG_POOL_CHUNK * (4 + 2) = 192 bytes).
 */
#include "mpq_internal.h"

/* Channels summed per pass; a multiple of 4 so every chunk starts on a byte. */
#define MPQ_AVG_POOL_CHUNK 32u

int mpq_avg_pool_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                     const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (win == NULL || !mpq_layer_ok(in, x, win->in_offset, rq, out, y) || out->bits == 32u ||
        out->c != in->c || !mpq_window_ok(in, win, out)) {
        return MPQ_ERR_ARG;
    }
    const uint32_t x_row = mpq_row_bytes(in->c, in->bits);
    const uint32_t y_row = mpq_row_bytes(out->c, out->bits);
    int32_t acc[MPQ_AVG_POOL_CHUNK];
    int16_t values[MPQ_AVG_POOL_CHUNK];
    uint8_t *yp = y;

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * win->sh) - win->pad_top;
        uint32_t ky_lo, ky_hi;
        mpq_window_taps(iy0, win->kh, in->h, &ky_lo, &ky_hi);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const int32_t ix0 = (int32_t)(ox * win->sw) - win->pad_left;
            uint32_t kx_lo, kx_hi;
            mpq_window_taps(ix0, win->kw, in->w, &kx_lo, &kx_hi);
            mpq_clear_row(yp, out->c, out->bits);
            for (uint32_t c0 = 0; c0 < in->c; c0 += MPQ_AVG_POOL_CHUNK) {
                const uint32_t n = in->c - c0 < MPQ_AVG_POOL_CHUNK ? in->c - c0 : MPQ_AVG_POOL_CHUNK;
                memcpy(acc, rq->bias + c0, n * sizeof(int32_t));
                for (uint32_t ky = ky_lo; ky < ky_hi; ++ky) {
                    for (uint32_t kx = kx_lo; kx < kx_hi; ++kx) {
                        const uint32_t pixel = (uint32_t)(iy0 + (int32_t)ky) * in->w + (uint32_t)(ix0 + (int32_t)kx);
                        mpq_unpack_activations(x + pixel * x_row + c0 * in->bits / 8u, n, in->bits, win->in_offset,
                                               values);
                        for (uint32_t i = 0; i < n; ++i) {
                            acc[i] += values[i];
                        }
                    }
                }
                for (uint32_t i = 0; i < n; ++i) {
                    mpq_write_output(yp, c0 + i, out->bits, acc[i], rq);
                }
            }
        }
    }
    return MPQ_OK;
}
