/*
 * Portable conv2d (docs/integer-arithmetic.md, "conv2d"), any bits and sizes.
 *
 * Per output pixel, the input taps inside the image are unpacked once (in_offset added) into
 * scratch; each output channel then unpacks its weight rows and takes int16 dot products.
 * Padded taps are skipped: padding is the real value zero.
 * Scratch: mpq_conv2d_ref_buffer_size() = (kh*kw*cin + cin) * 2 bytes.
 */
#include "mpq_internal.h"

int mpq_conv2d_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                   const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                   const mpq_dims_t *out, void *y, void *scratch) {
    if (win == NULL || !mpq_layer_ok(in, x, win->in_offset, rq, out, y) || !mpq_weights_ok(w, w_bits) ||
        !mpq_window_ok(in, win, out) || !mpq_scratch_ok(scratch, mpq_conv2d_ref_buffer_size(in, win, w_bits, out))) {
        return MPQ_ERR_ARG;
    }
    const uint32_t cin = in->c;
    const uint32_t kw = win->kw;
    const uint32_t x_row = mpq_row_bytes(cin, in->bits);
    const uint32_t w_row = mpq_row_bytes(cin, w_bits);
    const uint32_t w_filter = (uint32_t)win->kh * kw * w_row;
    const uint32_t y_row = mpq_row_bytes(out->c, out->bits);
    int16_t *taps = scratch;                           /* [kh][kw][cin] */
    int16_t *wbuf = taps + (uint32_t)win->kh * kw * cin; /* [cin] */
    uint8_t *yp = y;

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * win->sh) - win->pad_top;
        uint32_t ky_lo, ky_hi;
        mpq_window_taps(iy0, win->kh, in->h, &ky_lo, &ky_hi);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const int32_t ix0 = (int32_t)(ox * win->sw) - win->pad_left;
            uint32_t kx_lo, kx_hi;
            mpq_window_taps(ix0, kw, in->w, &kx_lo, &kx_hi);
            for (uint32_t ky = ky_lo; ky < ky_hi; ++ky) {
                for (uint32_t kx = kx_lo; kx < kx_hi; ++kx) {
                    const uint32_t pixel = (uint32_t)(iy0 + (int32_t)ky) * in->w + (uint32_t)(ix0 + (int32_t)kx);
                    mpq_unpack_activations(x + pixel * x_row, cin, in->bits, win->in_offset,
                                           taps + (ky * kw + kx) * cin);
                }
            }
            mpq_clear_row(yp, out->c, out->bits);
            for (uint32_t o = 0; o < out->c; ++o) {
                int32_t acc = rq->bias[o];
                for (uint32_t ky = ky_lo; ky < ky_hi; ++ky) {
                    for (uint32_t kx = kx_lo; kx < kx_hi; ++kx) {
                        const uint32_t tap = ky * kw + kx;
                        mpq_unpack_weights(w + o * w_filter + tap * w_row, cin, w_bits, wbuf);
                        acc += mpq_dot_s16(taps + tap * cin, wbuf, cin);
                    }
                }
                mpq_write_output(yp, o, out->bits, acc, rq);
            }
        }
    }
    return MPQ_OK;
}
