/*
 * Portable global average pool H x W x C -> 1 x 1 x C, any bits and sizes
 * (docs/integer-arithmetic.md, "global_avg_pool": a sum; 1/(H*W) lives in the multiplier).
 *
 * No scratch: channels are summed in chunks of MPQ_GAP_CHUNK on the stack
 * (MPQ_GAP_CHUNK * (4 + 2) = 384 bytes).
 */
#include "mpq_internal.h"

/* Channels summed per pass over the image; a multiple of 4 so every chunk starts on a byte. */
#define MPQ_GAP_CHUNK 64u

void mpq_ref_global_avg_pool(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const mpq_requant_t *rq,
                             const mpq_dims_t *out, void *y) {
    const uint32_t pixels = (uint32_t)in->h * in->w;
    const uint32_t x_row = mpq_row_bytes(in->c, in->bits);
    int32_t acc[MPQ_GAP_CHUNK];
    int16_t values[MPQ_GAP_CHUNK];

    mpq_clear_row(y, out->c, out->bits);
    for (uint32_t c0 = 0; c0 < in->c; c0 += MPQ_GAP_CHUNK) {
        const uint32_t n = in->c - c0 < MPQ_GAP_CHUNK ? in->c - c0 : MPQ_GAP_CHUNK;
        const uint8_t *xp = x + c0 * in->bits / 8u;
        memcpy(acc, rq->bias + c0, n * sizeof(int32_t));
        for (uint32_t p = 0; p < pixels; ++p, xp += x_row) {
            mpq_unpack_activations(xp, n, in->bits, in_offset, values);
            for (uint32_t i = 0; i < n; ++i) {
                acc[i] += values[i];
            }
        }
        for (uint32_t i = 0; i < n; ++i) {
            mpq_write_output(y, c0 + i, out->bits, acc[i], rq);
        }
    }
}

int mpq_global_avg_pool_ref(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                            const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_global_avg_pool_check(in, x, in_offset, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_global_avg_pool(in, x, in_offset, rq, out, y);
    return MPQ_OK;
}
