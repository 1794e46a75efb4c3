/*
 * Cortex-M7 residual add of two feature maps of one shape, any bits
 * (docs/integer-arithmetic.md, "add"): bit-exact with mpq_add_ref.
 *
 * Both input offsets and the rounding term fold into one 64-bit constant,
 * K = off1*m1 + off2*m2 + 2^(shift-1), so each element is K + x1*m1 + x2*m2: two SMLAL on a
 * 64-bit accumulator. The floor of its quotient by 2^shift is exact in 32 bits: for
 * shift >= 32 the top word shifted by shift - 32; for 10 <= shift < 32 the two words funnel-
 * shifted (|acc| < 2^41, so the quotient fits in 32 bits). Smaller shifts (an output scale over
 * 2^20 times finer than the inputs') run mpq_add_ref. Inputs are unpacked a chunk at a time into
 * the work buffer with the word-at-a-time unpacking (mpq_m7.h); when every row is a whole number
 * of bytes the tensors are one contiguous vector and go in chunks of MPQ_ADD_M7_CHUNK values,
 * otherwise pixel by pixel. No scratch.
 */
#include "mpq_m7.h"

/* Values per chunk: two int16 arrays of it fit the work buffer; a multiple of 4 (byte boundary at 2 bits). */
#define MPQ_ADD_M7_CHUNK (MPQ_M7_WORK_BYTES / 4u / 4u * 4u)

/* Smallest shift the 32-bit quotient is exact for. */
#define MPQ_ADD_M7_MIN_SHIFT 10

/* uint32 -> int32, two's complement (compiles to nothing). */
MPQ_M7_INLINE int32_t as_s32(uint32_t v) {
    return v < 0x80000000u ? (int32_t)v : (int32_t)(v - 0x80000000u) - 0x7FFFFFFF - 1;
}

/* floor(acc / 2^shift) for the acc of one element; `high` (shift >= 32) a constant after inlining. */
MPQ_M7_INLINE int32_t quotient(int64_t acc, uint32_t shift, int high) {
    const uint64_t u = (uint64_t)acc;
    const uint32_t lo = (uint32_t)u, hi = (uint32_t)(u >> 32);
    if (high) {
        return mpq_asr(as_s32(hi), shift - 32u);
    }
    return as_s32((lo >> shift) | (hi << (32u - shift)));
}

/* n elements of a and b (unpacked, no offset) into the cleared packed row y from value `first` on;
 * out_bits and `high` constants after inlining. The parameters are read once, before the stores
 * (a byte store may alias them). */
MPQ_M7_INLINE void add_values(const int16_t *a, const int16_t *b, uint32_t n, const mpq_add_params_t *p,
                              int64_t k, uint32_t out_bits, int high, uint8_t *y) {
    const uint32_t shift = (uint32_t)p->shift;
    const int32_t mult1 = p->mult1, mult2 = p->mult2, out_offset = p->out_offset;
    for (uint32_t i = 0; i < n; ++i) {
        const int64_t acc = k + (int64_t)a[i] * mult1 + (int64_t)b[i] * mult2;
        const uint32_t v = mpq_usat(quotient(acc, shift, high) + out_offset, out_bits);
        if (out_bits == 8u) {
            y[i] = (uint8_t)v;
        } else {
            y[(i * out_bits) >> 3] |= (uint8_t)(v << ((i * out_bits) & 7u));
        }
    }
}

MPQ_M7_INLINE void add_by_mode(const int16_t *a, const int16_t *b, uint32_t n, const mpq_add_params_t *p, int64_t k,
                               uint32_t out_bits, uint8_t *y) {
    if (p->shift >= 32) {
        add_values(a, b, n, p, k, out_bits, 1, y);
    } else {
        add_values(a, b, n, p, k, out_bits, 0, y);
    }
}

/* A stretch of n values starting at value `first` of rows x1, x2 and y (first on a byte of each). */
static void add_stretch(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
                        const mpq_add_params_t *p, int64_t k, uint32_t out_bits, uint32_t first, uint32_t n,
                        uint8_t *y) {
    int16_t *a = (int16_t *)(void *)mpq_m7_work;
    int16_t *b = a + MPQ_ADD_M7_CHUNK;
    mpq_m7_unpack_activations(x1 + first * in1->bits / 8u, n, in1->bits, 0, a);
    mpq_m7_unpack_activations(x2 + first * in2->bits / 8u, n, in2->bits, 0, b);
    uint8_t *yp = y + first * out_bits / 8u;
    switch (out_bits) {
    case 8u:
        add_by_mode(a, b, n, p, k, 8u, yp);
        break;
    case 4u:
        add_by_mode(a, b, n, p, k, 4u, yp);
        break;
    default:
        add_by_mode(a, b, n, p, k, 2u, yp);
        break;
    }
}

void mpq_m7_add(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
                const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    if (p->shift < MPQ_ADD_M7_MIN_SHIFT) {
        mpq_ref_add(in1, x1, in2, x2, p, out, y);
        return;
    }
    const int64_t k = (int64_t)p->in1_offset * p->mult1 + (int64_t)p->in2_offset * p->mult2 +
                      ((int64_t)1 << (p->shift - 1));
    const uint32_t c = out->c;
    const int flat = (c * in1->bits) % 8u == 0u && (c * in2->bits) % 8u == 0u && (c * out->bits) % 8u == 0u;
    const uint32_t rows = flat ? 1u : (uint32_t)out->h * out->w;
    const uint32_t n = flat ? (uint32_t)out->h * out->w * c : c;
    const uint32_t row1 = mpq_row_bytes(c, in1->bits), row2 = mpq_row_bytes(c, in2->bits);
    const uint32_t row_out = mpq_row_bytes(c, out->bits);
    memset(y, 0, (uint32_t)out->h * out->w * row_out);
    for (uint32_t r = 0; r < rows; ++r) {
        for (uint32_t first = 0; first < n; first += MPQ_ADD_M7_CHUNK) {
            const uint32_t len = n - first < MPQ_ADD_M7_CHUNK ? n - first : MPQ_ADD_M7_CHUNK;
            add_stretch(in1, x1 + r * row1, in2, x2 + r * row2, p, k, out->bits, first, len,
                        (uint8_t *)y + r * row_out);
        }
    }
}

int mpq_add_m7(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
               const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    if (mpq_add_check(in1, x1, in2, x2, p, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_add(in1, x1, in2, x2, p, out, y);
    return MPQ_OK;
}
