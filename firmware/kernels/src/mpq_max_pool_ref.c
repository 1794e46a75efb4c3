/*
 * Portable max pool kh x kw with stride and padding, any bits and sizes
 * (docs/integer-arithmetic.md, "max_pool": bias + the largest in-bounds tap, padded taps take
 * no part, requantized per channel). No scratch (mpq_pool_ref works on the stack).
 */
#include "mpq_internal.h"

void mpq_ref_max_pool(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                      const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    mpq_pool_ref(in, x, win, rq, out, y, 1);
}

int mpq_max_pool_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                     const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_max_pool_check(in, x, win, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_ref_max_pool(in, x, win, rq, out, y);
    return MPQ_OK;
}
