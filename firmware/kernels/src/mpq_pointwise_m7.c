/*
 * Cortex-M7 pointwise (1x1, stride 1, no padding) convolution, any bits and sizes
 * (docs/integer-arithmetic.md, "conv2d" with Kh = Kw = 1).
 *
 * The matrix engine of mpq_gemm_m7.c with one input pixel, unpacked to int16, as the column,
 * in chunks of output channels as large as the work buffer holds (each pixel unpacked once per
 * chunk; at 8-bit inputs of a multiple of 4 channels, a pixel pair at a time straight into the
 * engine's interleaved columns); a wide layer whose chunks hold fewer than MPQ_M7_STREAM_BELOW
 * channels (..._2BIT_INPUT at 2-bit inputs under 2- or 8-bit weights), or a layer of fewer than
 * MPQ_M7_STREAM_PIXELS pixels, runs the weight-streaming engine of mpq_matvec_m7.c instead, two
 * pixels at a time, so no input pixel is unpacked more than once and no weight is unpacked to
 * memory. Scratch: as mpq_pointwise_ref (the work happens
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

/* ---- thin inputs: a pixel's whole column in registers ---- */

/* One output channel of a thin layer (8-bit inputs, 4 or 8 channels: MobileNet 0.25's first
 * pointwise), read in sequence: bias and multiplier, the weights unpacked (zero past cin), and
 * the rounding term and shift of mpq_m7_requantize_narrow_smmla(). */
typedef struct {
    int32_t bias, mult;
    mpq_word_t w[4];
    int32_t round, right;
} thin_channel_t;

/* Whether the thin path takes the layer: 8-bit inputs of 4 or 8 channels (one or two words), whole
 * output rows of 8 or 4 bits and an even number of channels (the loop takes two at a time), every
 * shift above 32 (the branch-free requantization), and the channels fit the work buffer. (2-bit
 * outputs would need a loop of their own: they take the matrix engine.) */
static int thin_fits(const mpq_dims_t *in, const mpq_requant_t *rq, const mpq_dims_t *out) {
    if (in->bits != 8u || (in->c != 4u && in->c != 8u) || (out->bits != 8u && out->bits != 4u) || out->row_c != 0u ||
        out->c % 2u != 0u || out->c * sizeof(thin_channel_t) > MPQ_M7_WORK_BYTES) {
        return 0;
    }
    for (uint32_t o = 0; o < out->c; ++o) {
        if (rq->shift[o] <= 32) {
            return 0;
        }
    }
    return 1;
}

#if MPQ_HAVE_DSP && defined(__OPTIMIZE__) && !defined(MPQ_M7_NO_ASM)
/* One channel of the thin loop into register v: four LDRDs bring its eight words, four SMLADs
 * take the column (x0 .. x3), then SMMLA, ASR and USAT requantize (written out: compiled, the
 * loop loads word by word and spills). */
#define THIN_CHANNEL(v, bits) \
    "ldrd   " v ", %[m], [%[c]], #8\n\t" \
    "ldrd   %[a], %[b], [%[c]], #8\n\t" \
    "smlad  " v ", %[x0], %[a], " v "\n\t" \
    "smlad  " v ", %[x1], %[b], " v "\n\t" \
    "ldrd   %[a], %[b], [%[c]], #8\n\t" \
    "smlad  " v ", %[x2], %[a], " v "\n\t" \
    "smlad  " v ", %[x3], %[b], " v "\n\t" \
    "ldrd   %[a], %[b], [%[c]], #8\n\t" \
    "smmla  " v ", " v ", %[m], %[a]\n\t" \
    "asr    " v ", " v ", %[b]\n\t" \
    "usat   " v ", #" bits ", " v "\n\t"

/* The thin loop around `stores` (which stores channels v and u), two channels per turn. */
#define THIN_LOOP(bits, stores) \
    __asm__ volatile("1:\n\t" THIN_CHANNEL("%[v]", bits) THIN_CHANNEL("%[u]", bits) stores \
                     "cmp    %[c], %[end]\n\t" \
                     "bne    1b\n\t" \
                     : [c] "+r"(c), [y] "+r"(y), [v] "=&r"(v), [u] "=&r"(u), [m] "=&r"(m), [a] "=&r"(a), \
                       [b] "=&r"(b) \
                     : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3), [end] "r"(end) \
                     : "cc", "memory")

/* The outputs of one pixel (column x0 .. x3) into y, two channels per turn (out_bits 8 or 4). */
MPQ_M7_INLINE void thin_outputs(const thin_channel_t *channels, const thin_channel_t *end, uint32_t x0, uint32_t x1,
                                uint32_t x2, uint32_t x3, uint32_t out_bits, uint8_t *y) {
    const thin_channel_t *c = channels;
    uint32_t v, u, m, a, b;
    if (out_bits == 8u) {
        THIN_LOOP("8", "strb   %[v], [%[y]], #1\n\t"
                       "strb   %[u], [%[y]], #1\n\t");
    } else {
        THIN_LOOP("4", "orr    %[v], %[v], %[u], lsl #4\n\t"
                       "strb   %[v], [%[y]], #1\n\t");
    }
}
#undef THIN_LOOP
#undef THIN_CHANNEL
#else
/* One channel of the thin loop. */
MPQ_M7_INLINE uint32_t thin_value(const thin_channel_t *c, uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3,
                                  uint32_t bits) {
    int32_t acc = mpq_smlad(x0, c->w[0], c->bias);
    acc = mpq_smlad(x1, c->w[1], acc);
    acc = mpq_smlad(x2, c->w[2], acc);
    acc = mpq_smlad(x3, c->w[3], acc);
    return mpq_usat(mpq_asr(mpq_smmla(acc, c->mult, c->round), (uint32_t)c->right), bits);
}

/* The host build (no DSP extension): the same arithmetic in C, which the host tests check. */
static void thin_outputs(const thin_channel_t *channels, const thin_channel_t *end, uint32_t x0, uint32_t x1,
                         uint32_t x2, uint32_t x3, uint32_t out_bits, uint8_t *y) {
    for (const thin_channel_t *c = channels; c < end; ++y) {
        uint32_t byte = 0u;
        for (uint32_t at = 0; at < 8u; at += out_bits, ++c) {
            byte |= thin_value(c, x0, x1, x2, x3, out_bits) << at;
        }
        *y = (uint8_t)byte;
    }
}
#endif

/* Every pixel of a thin layer (thin_fits): the pixel's one or two input words widened straight into
 * the column's registers in lane order (UXTB16 and its ROR #8: values 0, 2 then 1, 3 of a word,
 * the order thin_pointwise gave the weights; the rest zero), then thin_outputs. */
__attribute__((noinline)) static void thin_pixels(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                                  const thin_channel_t *channels, uint32_t cout, uint32_t out_bits,
                                                  uint8_t *y) {
    const uint32_t pixels = (uint32_t)in->h * in->w, two = in->c == 8u;
    const uint32_t k = mpq_pair(in_offset, in_offset);
    const uint32_t y_row = mpq_row_bytes(cout, out_bits);
    const thin_channel_t *const end = channels + cout;
    for (uint32_t p = 0; p < pixels; ++p, x += in->c, y += y_row) {
        uint32_t lo, hi = 0u;
        memcpy(&lo, x, sizeof lo);
        if (two) {
            memcpy(&hi, x + 4, sizeof hi);
        }
        const uint32_t x0 = mpq_sadd16(mpq_uxtb16(lo), k), x1 = mpq_sadd16(mpq_uxtb16_ror8(lo), k);
        const uint32_t x2 = two ? mpq_sadd16(mpq_uxtb16(hi), k) : 0u;
        const uint32_t x3 = two ? mpq_sadd16(mpq_uxtb16_ror8(hi), k) : 0u;
        if (out_bits == 8u) {
            thin_outputs(channels, end, x0, x1, x2, x3, 8u, y);
        } else {
            thin_outputs(channels, end, x0, x1, x2, x3, 4u, y);
        }
    }
}

/* The thin path (thin_fits): the channels unpacked into the work buffer once, weights in the lane
 * order of thin_pixels' columns, then thin_pixels. */
static void thin_pointwise(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const uint8_t *w,
                           uint32_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    thin_channel_t *channels = (thin_channel_t *)(void *)mpq_m7_work;
    const uint32_t w_row = mpq_row_bytes(in->c, w_bits);
    for (uint32_t o = 0; o < out->c; ++o) {
        int16_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        mpq_m7_unpack_weights(w + o * w_row, in->c, w_bits, v);
        thin_channel_t *c = &channels[o];
        c->bias = rq->bias[o];
        c->mult = rq->mult[o];
        for (uint32_t i = 0; i < 4u; ++i) { /* word i: values 4 * (i / 2) + i % 2 and that + 2 */
            const uint32_t a = 4u * (i / 2u) + i % 2u;
            c->w[i] = mpq_pair(v[a], v[a + 2u]);
        }
        const mpq_m7_bounded_t k = mpq_m7_bounded_of(rq->shift[o]); /* shift > 32: thin_fits */
        c->round = (int32_t)k.round;
        c->right = (int32_t)k.right;
    }
    thin_pixels(in, x, in_offset, channels, out->c, out->bits, y);
}

void mpq_m7_pointwise(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                      const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                      const mpq_dims_t *out, void *y, void *scratch) {
    const uint32_t pixels = (uint32_t)in->h * in->w;
    const uint32_t chunk = mpq_m7_chunk_channels(in->c, out->c);
    const uint32_t stream_below = in->bits == 2u && w_bits != 4u ? MPQ_M7_STREAM_BELOW_2BIT_INPUT : MPQ_M7_STREAM_BELOW;
    if ((pixels < MPQ_M7_STREAM_PIXELS || (chunk < stream_below && chunk < out->c)) &&
        mpq_m7_matvec_fits(in->c, w_bits, pixels)) {
        const mpq_m7_matvec_t m = {pixels, in->c, x, in->bits, in_offset, w, w_bits};
        mpq_m7_matvec(&m, rq, out, y);
        return;
    }
    if (thin_fits(in, rq, out)) {
        thin_pointwise(in, x, in_offset, w, w_bits, rq, out, (uint8_t *)y);
        return;
    }
    if (!mpq_m7_gemm_fits(in->c, out->c)) {
        mpq_ref_pointwise(in, x, in_offset, w, w_bits, rq, out, y, scratch);
        return;
    }
    const mpq_m7_pointwise_layer_t layer = {in, x, in_offset, 1u, 1u, 1u};
    mpq_m7_pointwise_gemm(&layer, pixels, w, w_bits, rq, out, (uint8_t *)y);
}

int mpq_pointwise_m7(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                     const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                     const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_pointwise_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_pointwise(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
