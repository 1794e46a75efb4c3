/*
 * Cortex-M7 fully connected layer (input 1x1xcin, output 1x1xcout), any bits and sizes
 * (docs/integer-arithmetic.md, "fully_connected"): the weight-streaming engine of
 * mpq_matvec_m7.c on one pixel, so every weight is read once and widened in registers.
 * Scratch: as mpq_fully_connected_ref (the work happens in mpq_m7_work, mpq_m7.h); an input too
 * long for the work buffer runs the portable kernel's body.
 */
#include "mpq_m7.h"

void mpq_m7_fully_connected(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const uint8_t *w,
                            uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y,
                            void *scratch) {
    if (!mpq_m7_matvec_fits(in->c, w_bits, 1u)) {
        mpq_ref_fully_connected(in, x, in_offset, w, w_bits, rq, out, y, scratch);
        return;
    }
    const mpq_m7_matvec_t m = {1u, in->c, x, in->bits, in_offset, w, w_bits};
    mpq_m7_matvec(&m, rq, out, y);
}

int mpq_fully_connected_m7(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                           const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                           const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_fully_connected_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_fully_connected(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
