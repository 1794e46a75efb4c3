/*
 * Cortex-M7 fully connected layer (input 1x1xcin, output 1x1xcout), any bits and sizes
 * (docs/integer-arithmetic.md, "fully_connected"): the same arithmetic as a pointwise
 * convolution of one pixel, so it runs mpq_pointwise_m7 once its own arguments are checked.
 * Scratch: as mpq_fully_connected_ref.
 */
#include "mpq_m7.h"

int mpq_fully_connected_m7(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                           const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                           const mpq_dims_t *out, void *y, void *scratch) {
    if (in == NULL || out == NULL || in->h != 1u || in->w != 1u || out->h != 1u || out->w != 1u) {
        return MPQ_ERR_ARG;
    }
    return mpq_pointwise_m7(in, x, in_offset, w, w_bits, rq, out, y, scratch);
}
