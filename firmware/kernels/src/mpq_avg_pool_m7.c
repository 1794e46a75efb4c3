/*
 * Cortex-M7 average pool (docs/integer-arithmetic.md, "avg_pool"): a window that is the whole map
 * (no padding, a 1 x 1 output: the pool an imported ResNet-8 ends with) sums what a global average
 * pool sums, so it runs mpq_m7_global_avg_pool's lane sums; any other window runs
 * mpq_avg_pool_ref. No scratch.
 */
#include "mpq_m7.h"

void mpq_m7_avg_pool(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                     const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (out->h == 1u && out->w == 1u && win->kh == in->h && win->kw == in->w && win->pad_top == 0u &&
        win->pad_left == 0u) {
        mpq_m7_global_avg_pool(in, x, win->in_offset, rq, out, y);
    } else {
        mpq_ref_avg_pool(in, x, win, rq, out, y);
    }
}

int mpq_avg_pool_m7(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                    const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_avg_pool_check(in, x, win, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_avg_pool(in, x, win, rq, out, y);
    return MPQ_OK;
}
