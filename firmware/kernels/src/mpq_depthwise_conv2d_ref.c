/*
 * Portable depthwise conv2d, any bits and sizes (docs/integer-arithmetic.md, "depthwise_conv2d").
 *
 * Per output pixel, all channels accumulate in int32 scratch: each tap inside the image unpacks
 * its input row (in_offset added) and its weight row once and multiplies them element-wise.
 * Padded taps are skipped: padding is the real value zero.
 * Scratch: mpq_depthwise_conv2d_ref_buffer_size() = c * (4 + 2 + 2) bytes.
 */
#include "mpq_internal.h"

int mpq_depthwise_conv2d_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                             const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                             const mpq_dims_t *out, void *y, void *scratch) {
    if (win == NULL || !mpq_layer_ok(in, x, win->in_offset, rq, out, y) || !mpq_weights_ok(w, w_bits) ||
        out->c != in->c || !mpq_window_ok(in, win, out) ||
        !mpq_scratch_ok(scratch, mpq_depthwise_conv2d_ref_buffer_size(in, win, w_bits, out))) {
        return MPQ_ERR_ARG;
    }
    const uint32_t c = in->c;
    const uint32_t x_row = mpq_row_bytes(c, in->bits);
    const uint32_t w_row = mpq_row_bytes(c, w_bits);
    const uint32_t y_row = mpq_row_bytes(c, out->bits);
    int32_t *acc = scratch;              /* [c] */
    int16_t *xs = (int16_t *)(acc + c);  /* [c] */
    int16_t *ws = xs + c;                /* [c] */
    uint8_t *yp = y;

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * win->sh) - win->pad_top;
        uint32_t ky_lo, ky_hi;
        mpq_window_taps(iy0, win->kh, in->h, &ky_lo, &ky_hi);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const int32_t ix0 = (int32_t)(ox * win->sw) - win->pad_left;
            uint32_t kx_lo, kx_hi;
            mpq_window_taps(ix0, win->kw, in->w, &kx_lo, &kx_hi);
            memcpy(acc, rq->bias, c * sizeof(int32_t));
            for (uint32_t ky = ky_lo; ky < ky_hi; ++ky) {
                for (uint32_t kx = kx_lo; kx < kx_hi; ++kx) {
                    const uint32_t pixel = (uint32_t)(iy0 + (int32_t)ky) * in->w + (uint32_t)(ix0 + (int32_t)kx);
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
    return MPQ_OK;
}
