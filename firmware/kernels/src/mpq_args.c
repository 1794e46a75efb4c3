/*
 * Argument checks the kernels share that loop over a layer's channels: out of line, so the
 * _ref and _m7 kernels of every op check with one copy of the code (mpq_internal.h declares them).
 */
#include "mpq_internal.h"

/* Nonzero when a byte of `shifts` (int8 shifts) lies outside [1, MPQ_MAX_SHIFT]: a zero byte, or
 * one above MPQ_MAX_SHIFT with its top bit clear (adding 127 - MPQ_MAX_SHIFT sets it, no carry
 * leaves the byte), or one with its top bit set (negative). */
static uint32_t shifts_out_of_range(uint32_t shifts) {
    const uint32_t ones = 0x01010101u, tops = 0x80808080u;
    const uint32_t zero = (shifts - ones) & ~shifts & tops;
    const uint32_t above = (((shifts & ~tops) + ones * (127u - MPQ_MAX_SHIFT)) | shifts) & tops;
    return zero | above;
}

/* bias always; mult in [0, 2^31) and shift in [1, 62] unless the output is int32 (unused then). */
int mpq_requant_ok(const mpq_requant_t *rq, uint32_t channels, uint32_t out_bits) {
    if (rq == NULL || rq->bias == NULL) {
        return 0;
    }
    if (out_bits == 32u) {
        return 1;
    }
    if (rq->mult == NULL || rq->shift == NULL) {
        return 0;
    }
    int32_t mults = 0; /* OR of every multiplier: negative when one is */
    uint32_t bad = 0u;
    uint32_t c = 0;
    for (; c + 4u <= channels; c += 4u) { /* four shifts a word: layers of few MACs per channel pay little */
        uint32_t shifts;
        memcpy(&shifts, rq->shift + c, sizeof shifts);
        bad |= shifts_out_of_range(shifts);
        mults |= rq->mult[c] | rq->mult[c + 1u] | rq->mult[c + 2u] | rq->mult[c + 3u];
    }
    for (; c < channels; ++c) {
        bad |= (uint32_t)(rq->shift[c] < 1 || rq->shift[c] > MPQ_MAX_SHIFT);
        mults |= rq->mult[c];
    }
    return mults >= 0 && bad == 0u;
}

int mpq_global_avg_pool_args_ok(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const mpq_requant_t *rq,
                                const mpq_dims_t *out, const void *y) {
    return mpq_layer_ok(in, x, in_offset, rq, out, y) && out->h == 1u && out->w == 1u && out->c == in->c;
}
