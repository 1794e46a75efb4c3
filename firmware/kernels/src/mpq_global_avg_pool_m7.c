/*
 * Cortex-M7 global average pool H x W x C -> 1 x 1 x C (docs/integer-arithmetic.md,
 * "global_avg_pool": a sum; 1/(H*W) lives in the multiplier): computes exactly what
 * mpq_global_avg_pool_ref computes. It takes 8-bit input and output, a multiple of 8 channels and
 * at most MPQ_GAP_M7_PIXELS pixels (the zoo's pools); anything else runs mpq_global_avg_pool_ref. Small on purpose: the short loops stay rolled, and the argument check
 * is the one mpq_global_avg_pool_ref makes (mpq_args.c).
 *
 * Two words of the pixel row (eight channels) at a time are summed over the pixels in 16-bit
 * lanes held in registers, each word with UXTAB16 and UXTAB16 ROR #8: a load and two
 * instructions per four values. A lane holds the sum of MPQ_GAP_M7_PIXELS 8-bit values
 * (257 * 255 < 2^16). Each channel's sum starts at bias + pixels * input offset (the offset added
 * once per channel instead of once per value); the outputs are requantized as by mpq_m7_store(), without
 * a branch when the shift is above 32 (multipliers below 1/4, the usual case). No scratch.
 */
#include "mpq_m7.h"

#define MPQ_GAP_M7_PIXELS 257u /* pixels whose 8-bit values one 16-bit lane sum holds */

/* The 4 bytes at p as a little-endian word (rows are not word-aligned). */
MPQ_M7_INLINE uint32_t gap_load(const uint8_t *p) {
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Lane sums of `pixels` rows (x_row bytes apart) of the 8 channels at x, added to sums[0..8). */
MPQ_M7_INLINE void gap_sum8(const uint8_t *x, uint32_t x_row, uint32_t pixels, int32_t *sums) {
    uint32_t e0 = 0u, o0 = 0u, e1 = 0u, o1 = 0u; /* even and odd bytes of word 0 and word 1 */
    for (uint32_t p = 0; p < pixels; ++p, x += x_row) {
        const uint32_t v0 = gap_load(x), v1 = gap_load(x + 4u);
        e0 = mpq_uxtab16(e0, v0);
        o0 = mpq_uxtab16_ror8(o0, v0);
        e1 = mpq_uxtab16(e1, v1);
        o1 = mpq_uxtab16_ror8(o1, v1);
    }
    const uint32_t lanes[8] = {e0 & 0xFFFFu, o0 & 0xFFFFu, e0 >> 16, o0 >> 16,
                               e1 & 0xFFFFu, o1 & 0xFFFFu, e1 >> 16, o1 >> 16};
#pragma GCC unroll 1
    for (uint32_t i = 0; i < 8u; ++i) {
        sums[i] += (int32_t)lanes[i];
    }
}

int mpq_global_avg_pool_m7(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                           const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (!mpq_global_avg_pool_args_ok(in, x, in_offset, rq, out, y)) {
        return MPQ_ERR_ARG;
    }
    const uint32_t pixels = (uint32_t)in->h * in->w, c = in->c;
    if (in->bits != 8u || out->bits != 8u || c % 8u != 0u || pixels > MPQ_GAP_M7_PIXELS) {
        return mpq_global_avg_pool_ref(in, x, in_offset, rq, out, y);
    }
    const int32_t offset_sum = (int32_t)pixels * in_offset;
    int32_t acc[8];
    for (uint32_t c0 = 0; c0 < c; c0 += 8u) {
#pragma GCC unroll 1 /* unrolled, the short loops cost flash the smallest policies lack */
        for (uint32_t i = 0; i < 8u; ++i) {
            acc[i] = rq->bias[c0 + i] + offset_sum;
        }
        gap_sum8(x + c0, c, pixels, acc);
#pragma GCC unroll 1
        for (uint32_t i = 0; i < 8u; ++i) {
            mpq_m7_store_as(y, c0 + i, 8u, acc[i], rq->mult[c0 + i], rq->shift[c0 + i], MPQ_M7_RQ_ANY);
        }
    }
    return MPQ_OK;
}
