/*
 * Portable conv2d (docs/integer-arithmetic.md, "conv2d"), any bits and sizes; the output may be
 * an output-channel window (mpq_dims_t.c0, row_c).
 *
 * Per output pixel, the input taps inside the image are unpacked once (in_offset added) into
 * scratch; each output channel then unpacks its weight rows and takes int16 dot products.
 * Padded taps are skipped: padding is the real value zero.
 * Scratch: mpq_conv2d_ref_buffer_size() = (kh*kw*cin + cin) * 2 bytes.
 */
#include "mpq_internal.h"

void mpq_ref_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                    const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                    const mpq_dims_t *out, void *y, void *scratch) {
    const uint32_t cin = in->c;
    const uint32_t kw = win->kw;
    const uint32_t x_row = mpq_row_bytes(cin, in->bits);
    const uint32_t w_row = mpq_row_bytes(cin, w_bits);
    const uint32_t w_filter = (uint32_t)win->kh * kw * w_row;
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    int16_t *taps = scratch;                           /* [kh][kw][cin] */
    int16_t *wbuf = taps + (uint32_t)win->kh * kw * cin; /* [cin] */
    uint8_t *yp = y;

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const mpq_window_axis_t ry = mpq_window_axis(oy, win->sh, win->pad_top, win->kh, in->h);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const mpq_window_axis_t rx = mpq_window_axis(ox, win->sw, win->pad_left, win->kw, in->w);
            for (uint32_t ky = ry.lo; ky < ry.hi; ++ky) {
                for (uint32_t kx = rx.lo; kx < rx.hi; ++kx) {
                    const uint32_t pixel = mpq_window_pixel(&ry, &rx, ky, kx, in->w);
                    mpq_unpack_activations(x + pixel * x_row, cin, in->bits, win->in_offset,
                                           taps + (ky * kw + kx) * cin);
                }
            }
            mpq_clear_outputs(yp, out);
            for (uint32_t o = 0; o < out->c; ++o) {
                int32_t acc = rq->bias[o];
                for (uint32_t ky = ry.lo; ky < ry.hi; ++ky) {
                    for (uint32_t kx = rx.lo; kx < rx.hi; ++kx) {
                        const uint32_t tap = ky * kw + kx;
                        mpq_unpack_weights(w + o * w_filter + tap * w_row, cin, w_bits, wbuf);
                        acc += mpq_dot_s16(taps + tap * cin, wbuf, cin);
                    }
                }
                mpq_write_output_at(yp, out->c0 + o, o, out->bits, acc, rq);
            }
        }
    }
}

int mpq_conv2d_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                   const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                   const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_conv2d_check(in, x, win, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_conv2d(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
