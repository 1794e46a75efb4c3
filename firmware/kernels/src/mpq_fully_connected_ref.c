/*
 * Portable fully connected layer (input 1x1xcin, output 1x1xcout), any bits and sizes
 * (docs/integer-arithmetic.md, "fully_connected").
 *
 * Scratch: mpq_matvec_ref_buffer_size() = 2 * cin * 2 bytes (unpacked input and one weight row).
 */
#include "mpq_internal.h"

int mpq_fully_connected_ref(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                            const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                            const mpq_dims_t *out, void *y, void *scratch) {
    if (!mpq_window_layer_ok(in, x, in_offset, rq, out, y) || !mpq_weights_ok(w, w_bits) || in->h != 1u ||
        in->w != 1u || out->h != 1u || out->w != 1u ||
        !mpq_scratch_ok(scratch, mpq_matvec_ref_buffer_size(in, w_bits, out))) {
        return MPQ_ERR_ARG;
    }
    int16_t *xs = scratch;    /* [cin] */
    int16_t *wbuf = xs + in->c; /* [cin] */
    mpq_unpack_activations(x, in->c, in->bits, in_offset, xs);
    mpq_matvec_pixel(xs, in->c, w, w_bits, wbuf, rq, out, y);
    return MPQ_OK;
}
