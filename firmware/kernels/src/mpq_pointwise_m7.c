/*
 * Cortex-M7 pointwise (1x1, stride 1, no padding) convolution, any bits and sizes
 * (docs/integer-arithmetic.md, "conv2d" with Kh = Kw = 1).
 *
 * The matrix engine of mpq_gemm_m7.c with one input pixel, unpacked to int16, as the column,
 * in chunks of output channels as large as the work buffer holds (each pixel unpacked once per
 * chunk; at 8-bit inputs of a multiple of 4 channels, a pixel pair at a time straight into the
 * engine's interleaved columns); a wide layer whose chunks hold fewer than MPQ_M7_STREAM_BELOW channels (..._2BIT_INPUT at
 * 2-bit inputs), or a layer of fewer than MPQ_M7_STREAM_PIXELS pixels, runs the weight-streaming
 * engine of mpq_matvec_m7.c instead, two pixels at a time, so no input pixel is unpacked more
 * than once and no weight is unpacked to memory. Scratch: as mpq_pointwise_ref (the work happens
 * in mpq_m7_work, mpq_m7.h); a layer too large for the work buffer runs mpq_pointwise_ref.
 */
#include "mpq_m7.h"

/* The input row of output pixel p. */
static inline const uint8_t *source_row(const mpq_m7_pointwise_layer_t *l, uint32_t pixel) {
    const uint32_t source = l->sh == 1u && l->sw == 1u ? pixel : pixel / l->out_w * l->sh * l->in->w + pixel % l->out_w * l->sw;
    return l->x + source * mpq_row_bytes(l->in->c, l->in->bits);
}

static void pointwise_im2col(const void *layer, uint32_t pixel, int16_t *col) {
    const mpq_m7_pointwise_layer_t *l = layer;
    mpq_m7_unpack(source_row(l, pixel), l->in->c, l->in->bits, 0, l->in_offset,
                  col); /* inline: a pixel of few channels would feel the call */
}

/* The columns of a pixel pair at 8-bit inputs of a multiple of 4 channels (kp = cin): each input
 * word unpacks straight into its place in the interleaved pair, with no im2col pass and interleave. */
static void pointwise_columns_8bit(const void *layer, uint32_t pixel, int pair, int16_t *cols) {
    const mpq_m7_pointwise_layer_t *l = layer;
    const uint8_t *a = source_row(l, pixel), *b = pair ? source_row(l, pixel + 1u) : a;
    const uint32_t k = mpq_pair(l->in_offset, l->in_offset);
    for (uint32_t i = 0; i < l->in->c / 4u; ++i, a += 4, b += 4, cols += 8) {
        uint32_t wa, wb;
        memcpy(&wa, a, sizeof wa);
        memcpy(&wb, b, sizeof wb);
        mpq_m7_unpack_word_to(wa, 8u, 0u, k, cols, 4u);
        mpq_m7_unpack_word_to(wb, 8u, 0u, k, cols + 2, 4u);
    }
}

void mpq_m7_pointwise_gemm(const mpq_m7_pointwise_layer_t *l, uint32_t pixels, const uint8_t *w, uint32_t w_bits,
                           const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    /* 4- and 2-bit inputs keep im2col: their own column copies would cost flash for little speed */
    const mpq_m7_columns_fn columns = l->in->bits == 8u && l->in->c % 4u == 0u ? pointwise_columns_8bit : NULL;
    const mpq_m7_gemm_t g = {pixels, 1u, l->in->c, w, w_bits, pointwise_im2col, l, 0u, columns};
    mpq_m7_gemm(&g, rq, out, y);
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
    mpq_m7_pointwise_gemm(&layer, pixels, w, w_bits, rq, out, (uint8_t *)y);
    return MPQ_OK;
}
