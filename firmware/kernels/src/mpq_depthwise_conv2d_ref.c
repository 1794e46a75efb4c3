/*
 * Portable depthwise conv2d, any bits and sizes (docs/integer-arithmetic.md, "depthwise_conv2d").
 *
 * Per output pixel, all channels accumulate in int32 scratch: each tap inside the image unpacks
 * its input row (in_offset added) and its weight row once and multiplies them element-wise.
 * Padded taps are skipped: padding is the real value zero.
 * Scratch: mpq_depthwise_conv2d_ref_buffer_size() = c * (4 + 2 + 2) bytes.
 */
#include "mpq_internal.h"

void mpq_ref_depthwise_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                              const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                              const mpq_dims_t *out, void *y, void *scratch) {
    const uint32_t c = in->c;
    const uint32_t x_row = mpq_row_bytes(c, in->bits);
    const uint32_t w_row = mpq_row_bytes(c, w_bits);
    const uint32_t y_row = mpq_row_bytes(c, out->bits);
    int32_t *acc = scratch;              /* [c] */
    int16_t *xs = (int16_t *)(acc + c);  /* [c] */
    int16_t *ws = xs + c;                /* [c] */
    uint8_t *yp = y;

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const mpq_window_axis_t ry = mpq_window_axis(oy, win->sh, win->pad_top, win->kh, in->h);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const mpq_window_axis_t rx = mpq_window_axis(ox, win->sw, win->pad_left, win->kw, in->w);
            memcpy(acc, rq->bias, c * sizeof(int32_t));
            for (uint32_t ky = ry.lo; ky < ry.hi; ++ky) {
                for (uint32_t kx = rx.lo; kx < rx.hi; ++kx) {
                    const uint32_t pixel = mpq_window_pixel(&ry, &rx, ky, kx, in->w);
                    mpq_unpack_activations(x + pixel * x_row, c, in->bits, win->in_offset, xs);
                    mpq_unpack_weights(w + (ky * win->kw + kx) * w_row, c, w_bits, ws);
                    mpq_mac_s16(acc, xs, ws, c);
                }
            }
            mpq_clear_row(yp, c, out->bits);
            for (uint32_t ch = 0; ch < c; ++ch) {
                mpq_write_output(yp, ch, out->bits, acc[ch], rq);
            }
        }
    }
}

int mpq_depthwise_conv2d_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                             const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                             const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_depthwise_conv2d_check(in, x, win, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_depthwise_conv2d(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
