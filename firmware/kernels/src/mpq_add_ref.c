/*
 * Portable residual add of two feature maps of one shape, any bits
 * (docs/integer-arithmetic.md, "add"): each input has its own offset and multiplier, one shift
 * and the output zero-point are shared by the whole tensor.
 *
 * No scratch: each pixel is unpacked in chunks of MPQ_ADD_CHUNK channels on the stack
 * (MPQ_ADD_CHUNK * 2 * 2 = 256 bytes).
 */
#include "mpq_internal.h"

/* Channels per chunk; a multiple of 4 so every chunk starts on a byte at 2, 4 and 8 bits. */
#define MPQ_ADD_CHUNK 64u

/* floor(sum / 2^shift) without shifting a negative number. */
static inline int64_t mpq_floor_shift(int64_t sum, uint32_t shift) {
    if (sum >= 0) {
        return (int64_t)((uint64_t)sum >> shift);
    }
    const uint64_t magnitude = (uint64_t)(-sum);
    return -(int64_t)((magnitude + ((uint64_t)1 << shift) - 1u) >> shift);
}

void mpq_ref_add(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
                 const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    const uint32_t pixels = (uint32_t)out->h * out->w;
    const uint32_t row1 = mpq_row_bytes(in1->c, in1->bits);
    const uint32_t row2 = mpq_row_bytes(in2->c, in2->bits);
    const uint32_t row_out = mpq_row_bytes(out->c, out->bits);
    const int64_t rounding = (int64_t)1 << (p->shift - 1);
    const int32_t top = (int32_t)((1u << out->bits) - 1u);
    int16_t a[MPQ_ADD_CHUNK];
    int16_t b[MPQ_ADD_CHUNK];
    uint8_t *yp = y;

    for (uint32_t pixel = 0; pixel < pixels; ++pixel, yp += row_out) {
        mpq_clear_row(yp, out->c, out->bits);
        for (uint32_t c0 = 0; c0 < out->c; c0 += MPQ_ADD_CHUNK) {
            const uint32_t n = out->c - c0 < MPQ_ADD_CHUNK ? out->c - c0 : MPQ_ADD_CHUNK;
            mpq_unpack_activations(x1 + pixel * row1 + c0 * in1->bits / 8u, n, in1->bits, p->in1_offset, a);
            mpq_unpack_activations(x2 + pixel * row2 + c0 * in2->bits / 8u, n, in2->bits, p->in2_offset, b);
            for (uint32_t i = 0; i < n; ++i) {
                const int64_t sum = (int64_t)a[i] * p->mult1 + (int64_t)b[i] * p->mult2 + rounding;
                int64_t v = mpq_floor_shift(sum, (uint32_t)p->shift) + p->out_offset;
                v = v < 0 ? 0 : (v > top ? top : v);
                const uint32_t bit = (c0 + i) * out->bits;
                yp[bit >> 3] |= (uint8_t)((uint32_t)v << (bit & 7u));
            }
        }
    }
}

int mpq_add_ref(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
                const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    if (mpq_add_check(in1, x1, in2, x2, p, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_add(in1, x1, in2, x2, p, out, y);
    return MPQ_OK;
}
