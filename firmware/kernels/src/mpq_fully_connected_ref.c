/*
 * Portable fully connected layer (input 1x1xcin, output 1x1xcout), any bits and sizes
 * (docs/integer-arithmetic.md, "fully_connected").
 *
 * Scratch: mpq_matvec_ref_buffer_size() = 2 * cin * 2 bytes (unpacked input and one weight row).
 */
#include "mpq_internal.h"

void mpq_ref_fully_connected(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const uint8_t *w,
                             uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y,
                             void *scratch) {
    int16_t *xs = scratch;    /* [cin] */
    int16_t *wbuf = xs + in->c; /* [cin] */
    mpq_unpack_activations(x, in->c, in->bits, in_offset, xs);
    mpq_matvec_pixel(xs, in->c, w, w_bits, wbuf, rq, out, y);
}

int mpq_fully_connected_ref(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                            const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                            const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_fully_connected_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_fully_connected(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
