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
        const mpq_window_axis_t ry = mpq_window_axis(oy, win->sh, win->pad_top, win->kh, in->h);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const mpq_window_axis_t rx = mpq_window_axis(ox, win->sw, win->pad_left, win->kw, in->w);
            mpq_clear_row(yp, out->c, out->bits);
            for (uint32_t c0 = 0; c0 < in->c; c0 += MPQ_AVG_POOL_CHUNK) {
                const uint32_t n = in->c - c0 < MPQ_AVG_POOL_CHUNK ? in->c - c0 : MPQ_AVG_POOL_CHUNK;
                memcpy(acc, rq->bias + c0, n * sizeof(int32_t));
                for (uint32_t ky = ry.lo; ky < ry.hi; ++ky) {
                    for (uint32_t kx = rx.lo; kx < rx.hi; ++kx) {
                        const uint32_t pixel = mpq_window_pixel(&ry, &rx, ky, kx, in->w);
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
