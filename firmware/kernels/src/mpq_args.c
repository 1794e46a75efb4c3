/*
 * The argument checks: mpq_<op>_check() of every op (mpq_kernels.h), which its wrapper, its _ref
 * and its _m7 kernel all call, so they refuse the same calls with one copy of the code, and the
 * check of a layer's requantization they share (mpq_internal.h).
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

static int checked(int ok) {
    return ok ? MPQ_OK : MPQ_ERR_ARG;
}

int mpq_conv2d_check(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, const uint8_t *w,
                     uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y, void *scratch) {
    return checked(win != NULL && mpq_window_layer_ok(in, x, win->in_offset, rq, out, y) &&
                   mpq_weights_ok(w, w_bits) && mpq_window_ok(in, win, out) &&
                   mpq_scratch_ok(scratch, mpq_conv2d_ref_buffer_size(in, win, w_bits, out)));
}

int mpq_depthwise_conv2d_check(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, const uint8_t *w,
                               uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y,
                               void *scratch) {
    return checked(win != NULL && mpq_layer_ok(in, x, win->in_offset, rq, out, y) && mpq_weights_ok(w, w_bits) &&
                   out->c == in->c && mpq_window_ok(in, win, out) &&
                   mpq_scratch_ok(scratch, mpq_depthwise_conv2d_ref_buffer_size(in, win, w_bits, out)));
}

int mpq_pointwise_check(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const uint8_t *w,
                        uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y, void *scratch) {
    return checked(mpq_window_layer_ok(in, x, in_offset, rq, out, y) && mpq_weights_ok(w, w_bits) &&
                   out->h == in->h && out->w == in->w &&
                   mpq_scratch_ok(scratch, mpq_matvec_ref_buffer_size(in, w_bits, out)));
}

/* A pointwise layer on one pixel. */
int mpq_fully_connected_check(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const uint8_t *w,
                              uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y,
                              void *scratch) {
    return checked(mpq_pointwise_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) == MPQ_OK &&
                   in->h == 1u && in->w == 1u);
}

int mpq_global_avg_pool_check(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const mpq_requant_t *rq,
                              const mpq_dims_t *out, void *y) {
    return checked(mpq_layer_ok(in, x, in_offset, rq, out, y) && out->h == 1u && out->w == 1u && out->c == in->c);
}

/* avg_pool and max_pool take the same arguments. */
static int pool_ok(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, const mpq_requant_t *rq,
                   const mpq_dims_t *out, const void *y) {
    return win != NULL && mpq_layer_ok(in, x, win->in_offset, rq, out, y) && out->bits != 32u && out->c == in->c &&
           mpq_window_ok(in, win, out);
}

int mpq_avg_pool_check(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, const mpq_requant_t *rq,
                       const mpq_dims_t *out, void *y) {
    return checked(pool_ok(in, x, win, rq, out, y));
}

int mpq_max_pool_check(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, const mpq_requant_t *rq,
                       const mpq_dims_t *out, void *y) {
    return checked(pool_ok(in, x, win, rq, out, y));
}

int mpq_add_check(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
                  const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    return checked(p != NULL && mpq_tensor_ok(in1, x1, 0) && mpq_tensor_ok(in2, x2, 0) && mpq_tensor_ok(out, y, 0) &&
                   in1->h == out->h && in1->w == out->w && in1->c == out->c && in2->h == out->h &&
                   in2->w == out->w && in2->c == out->c && mpq_in_offset_ok(p->in1_offset, in1->bits) &&
                   mpq_in_offset_ok(p->in2_offset, in2->bits) && p->mult1 >= 0 && p->mult2 >= 0 && p->shift >= 1 &&
                   p->shift <= MPQ_MAX_SHIFT && p->out_offset >= 0 &&
                   p->out_offset <= (int32_t)((1u << out->bits) - 1u));
}
