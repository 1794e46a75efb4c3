/*
 * Cortex-M7 pointwise (1x1, stride 1, no padding) convolution, any bits and sizes
 * (docs/integer-arithmetic.md, "conv2d" with Kh = Kw = 1).
 *
 * The matrix engine of mpq_gemm_m7.c with one input pixel, unpacked to int16, as the column,
 * in chunks of output channels as large as the work buffer holds (each pixel unpacked once per
 * chunk); a wide layer whose chunks hold fewer than MPQ_M7_STREAM_BELOW channels (..._2BIT_INPUT at
 * 2-bit inputs), or a layer of fewer than MPQ_M7_STREAM_PIXELS pixels, runs the weight-streaming
 * engine of mpq_matvec_m7.c instead, two pixels at a time, so no input pixel is unpacked more
 * than once and no weight is unpacked to memory. Scratch: as mpq_pointwise_ref (the work happens
 * in mpq_m7_work, mpq_m7.h); a layer too large for the work buffer runs mpq_pointwise_ref.
 */
#include "mpq_m7.h"

void mpq_m7_pointwise_im2col(const void *layer, uint32_t pixel, int16_t *col) {
    const mpq_m7_pointwise_layer_t *l = layer;
    const uint32_t source = l->sh == 1u && l->sw == 1u ? pixel : pixel / l->out_w * l->sh * l->in->w + pixel % l->out_w * l->sw;
    mpq_m7_unpack(l->x + source * mpq_row_bytes(l->in->c, l->in->bits), l->in->c, l->in->bits, 0, l->in_offset,
                  col); /* inline: a pixel of few channels would feel the call */
}

int mpq_pointwise_m7(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                     const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                     const mpq_dims_t *out, void *y, void *scratch) {
    if (!mpq_pointwise_args_ok(in, x, in_offset, w, w_bits, rq, out, y, scratch)) {
        return MPQ_ERR_ARG;
    }
    const uint32_t pixels = (uint32_t)in->h * in->w;
    const uint32_t chunk = mpq_m7_chunk_channels(in->c, out->c);
    const uint32_t stream_below = in->bits == 2u ? MPQ_M7_STREAM_BELOW_2BIT_INPUT : MPQ_M7_STREAM_BELOW;
    if ((pixels < MPQ_M7_STREAM_PIXELS || (chunk < stream_below && chunk < out->c)) &&
        mpq_m7_matvec_fits(in->c, w_bits, pixels)) {
        const mpq_m7_matvec_t m = {pixels, in->c, x, in->bits, in_offset, w, w_bits};
        mpq_m7_matvec(&m, rq, out, y);
        return MPQ_OK;
    }
    if (!mpq_m7_gemm_fits(in->c, out->c)) {
        return mpq_pointwise_ref(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    }
    const mpq_m7_pointwise_layer_t layer = {in, x, in_offset, 1u, 1u, 1u};
    const mpq_m7_gemm_t g = {pixels, 1u, in->c, w, w_bits, mpq_m7_pointwise_im2col, &layer, 0u};
    mpq_m7_gemm(&g, rq, out, y);
    return MPQ_OK;
}
