/*
 * Cortex-M7 global average pool H x W x C -> 1 x 1 x C (docs/integer-arithmetic.md,
 * "global_avg_pool": a sum; 1/(H*W) lives in the multiplier): computes exactly what
 * mpq_global_avg_pool_ref computes. It takes 8-bit output and 2-, 4- or 8-bit input of whole
 * groups of channels (8, or 16 at 2 bits) over at most gap_lane_pixels() pixels; anything else runs
 * the portable kernel's body (mpq_ref_global_avg_pool). Small on purpose: the short loops stay rolled,
 * and the argument check is the one mpq_global_avg_pool_ref makes (mpq_args.c).
 *
 * A group of channels (two words of the pixel row at 8 bits, one at 4 and 2) is summed over the
 * pixels in 16-bit lanes held in registers: each field of a byte (the byte itself at 8 bits, a
 * masked nibble or code pair below) goes through UXTAB16 and UXTAB16 ROR #8, so a word of 8-bit
 * values costs a load and two instructions, one of 2-bit values a load, four masks and eight.
 * Each channel's sum starts at bias + pixels * input offset (the offset added once per channel
 * instead of once per value); the outputs are requantized as by mpq_m7_store(), without a branch
 * when the shift is above 32 (multipliers below 1/4, the usual case). No scratch.
 */
#include "mpq_m7.h"

/* Pixels whose `bits`-wide values one 16-bit lane sum holds: 257 at 8 bits, 4369 at 4, 21845 at 2. */
static uint32_t gap_lane_pixels(uint32_t bits) {
    return 65535u / ((1u << bits) - 1u);
}

/* The lane words of `pixels` rows (x_row bytes apart) of one group of channels of `bits`-wide
 * values at x (bits a constant after inlining): field k of word w through UXTAB16 into lanes[w *
 * fields + k] (its bytes 0 and 2) and UXTAB16 ROR #8 into lanes[4 + w * fields + k] (bytes 1, 3). */
MPQ_M7_INLINE void gap_sum(const uint8_t *x, uint32_t x_row, uint32_t pixels, uint32_t bits, uint32_t *lanes) {
    const uint32_t fields = 8u / bits, words = bits == 8u ? 2u : 1u;
    const uint32_t mask = ((1u << bits) - 1u) * 0x01010101u;
    uint32_t even[4] = {0u, 0u, 0u, 0u}, odd[4] = {0u, 0u, 0u, 0u};
    for (uint32_t p = 0; p < pixels; ++p, x += x_row) {
#pragma GCC unroll 2
        for (uint32_t w = 0; w < words; ++w) {
            const uint32_t v = mpq_m7_load_word(x + 4u * w);
#pragma GCC unroll 4
            for (uint32_t k = 0; k < fields; ++k) {
                const uint32_t f = bits == 8u ? v : (v >> (k * bits)) & mask;
                even[w * fields + k] = mpq_uxtab16(even[w * fields + k], f);
                odd[w * fields + k] = mpq_uxtab16_ror8(odd[w * fields + k], f);
            }
        }
    }
#pragma GCC unroll 4
    for (uint32_t i = 0; i < 4u; ++i) {
        lanes[i] = even[i];
        lanes[4u + i] = odd[i];
    }
}

/* The lane sum of channel i of a group (gap_sum's lanes): field k = i % fields of byte
 * b = (i / fields) % 4 of word i / (4 * fields); fields = 2^fields_log2. */
static uint32_t gap_lane(const uint32_t *lanes, uint32_t i, uint32_t fields_log2) {
    const uint32_t k = i & ((1u << fields_log2) - 1u), b = (i >> fields_log2) & 3u, w = i >> (fields_log2 + 2u);
    const uint32_t word = lanes[(b & 1u) * 4u + (w << fields_log2) + k];
    return (b & 2u) != 0u ? word >> 16 : word & 0xFFFFu;
}

void mpq_m7_global_avg_pool(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const mpq_requant_t *rq,
                            const mpq_dims_t *out, void *y) {
    const uint32_t pixels = (uint32_t)in->h * in->w, c = in->c, bits = in->bits;
    const uint32_t group = bits == 2u ? 16u : 8u; /* channels a pass sums */
    if (out->bits != 8u || c % group != 0u || pixels > gap_lane_pixels(bits)) {
        mpq_ref_global_avg_pool(in, x, in_offset, rq, out, y);
        return;
    }
    const uint32_t x_row = c * bits / 8u, fields_log2 = bits == 8u ? 0u : bits == 4u ? 1u : 2u;
    const int32_t offset_sum = (int32_t)pixels * in_offset;
    uint32_t lanes[8];
    for (uint32_t c0 = 0; c0 < c; c0 += group) {
        const uint8_t *xg = x + c0 * bits / 8u;
        if (bits == 8u) {
            gap_sum(xg, x_row, pixels, 8u, lanes);
        } else if (bits == 4u) {
            gap_sum(xg, x_row, pixels, 4u, lanes);
        } else {
            gap_sum(xg, x_row, pixels, 2u, lanes);
        }
        for (uint32_t i = 0; i < group; ++i) {
            const int32_t acc = rq->bias[c0 + i] + offset_sum + (int32_t)gap_lane(lanes, i, fields_log2);
            mpq_m7_store_as(y, c0 + i, 8u, acc, rq->mult[c0 + i], rq->shift[c0 + i], MPQ_M7_RQ_ANY);
        }
    }
}

int mpq_global_avg_pool_m7(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                           const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_global_avg_pool_check(in, x, in_offset, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_global_avg_pool(in, x, in_offset, rq, out, y);
    return MPQ_OK;
}
