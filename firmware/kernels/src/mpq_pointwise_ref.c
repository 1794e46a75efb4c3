/*
 * Portable pointwise (1x1, stride 1, no padding) convolution, any bits and sizes
 * (docs/integer-arithmetic.md, "conv2d" with Kh = Kw = 1).
 *
 * Each input pixel is unpacked once (in_offset added), then multiplied by every weight row.
 * Scratch: mpq_matvec_ref_buffer_size() = 2 * cin * 2 bytes.
 */
#include "mpq_internal.h"

void mpq_ref_pointwise(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                       const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                       const mpq_dims_t *out, void *y, void *scratch) {
    const uint32_t pixels = (uint32_t)in->h * in->w;
    const uint32_t x_row = mpq_row_bytes(in->c, in->bits);
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    int16_t *xs = scratch;    /* [cin] */
    int16_t *wbuf = xs + in->c; /* [cin] */
    uint8_t *yp = y;

    for (uint32_t p = 0; p < pixels; ++p) {
        mpq_unpack_activations(x + p * x_row, in->c, in->bits, in_offset, xs);
        mpq_matvec_pixel(xs, in->c, w, w_bits, wbuf, rq, out, yp + p * y_row);
    }
}

int mpq_pointwise_ref(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                      const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                      const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_pointwise_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_pointwise(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
