/*
 * The public wrappers mpq_<op>() and mpq_<op>_get_buffer_size(): pick the kernel for a layer's
 * shape and bits, CMSIS-NN style.
 *
 * Each op has a select function returning a kernel entry (the kernel and the scratch it needs);
 * the wrapper and get_buffer_size both go through it, so they can never disagree. An optimized
 * kernel (e.g. mpq_pointwise_u8_s8_u8_m7) is added as one more entry plus a test on (shape, bits)
 * in the select function, in front of the portable _ref fallback, which accepts everything.
 */
#include "mpq_internal.h"

/* ---- conv2d ---- */

typedef struct {
    int (*run)(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, const uint8_t *w,
               uint8_t w_bits, const mpq_requant_t *rq, const mpq_dims_t *out, void *y, void *scratch);
    uint32_t (*buffer_size)(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                            const mpq_dims_t *out);
} conv2d_kernel_t;

static const conv2d_kernel_t conv2d_ref = {mpq_conv2d_ref, mpq_conv2d_ref_buffer_size};

static const conv2d_kernel_t *conv2d_select(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                                            const mpq_dims_t *out) {
    (void)in;
    (void)win;
    (void)w_bits;
    (void)out;
    return &conv2d_ref;
}

int mpq_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
               const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
               const mpq_dims_t *out, void *y, void *scratch) {
    if (in == NULL || win == NULL || out == NULL) {
        return MPQ_ERR_ARG;
    }
    return conv2d_select(in, win, w_bits, out)->run(in, x, win, w, w_bits, rq, out, y, scratch);
}

uint32_t mpq_conv2d_get_buffer_size(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                                    const mpq_dims_t *out) {
    return conv2d_select(in, win, w_bits, out)->buffer_size(in, win, w_bits, out);
}

/* ---- pointwise ---- */

typedef struct {
    int (*run)(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset, const uint8_t *w, uint8_t w_bits,
               const mpq_requant_t *rq, const mpq_dims_t *out, void *y, void *scratch);
    uint32_t (*buffer_size)(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out);
} matvec_kernel_t;

static const matvec_kernel_t pointwise_ref = {mpq_pointwise_ref, mpq_matvec_ref_buffer_size};

static const matvec_kernel_t *pointwise_select(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out) {
    (void)in;
    (void)w_bits;
    (void)out;
    return &pointwise_ref;
}

int mpq_pointwise(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                  const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                  const mpq_dims_t *out, void *y, void *scratch) {
    if (in == NULL || out == NULL) {
        return MPQ_ERR_ARG;
    }
    return pointwise_select(in, w_bits, out)->run(in, x, in_offset, w, w_bits, rq, out, y, scratch);
}

uint32_t mpq_pointwise_get_buffer_size(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out) {
    return pointwise_select(in, w_bits, out)->buffer_size(in, w_bits, out);
}

/* ---- depthwise_conv2d ---- */

static const conv2d_kernel_t depthwise_conv2d_ref = {mpq_depthwise_conv2d_ref,
                                                     mpq_depthwise_conv2d_ref_buffer_size};

static const conv2d_kernel_t *depthwise_conv2d_select(const mpq_dims_t *in, const mpq_window_t *win,
                                                      uint8_t w_bits, const mpq_dims_t *out) {
    (void)in;
    (void)win;
    (void)w_bits;
    (void)out;
    return &depthwise_conv2d_ref;
}

int mpq_depthwise_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                         const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                         const mpq_dims_t *out, void *y, void *scratch) {
    if (in == NULL || win == NULL || out == NULL) {
        return MPQ_ERR_ARG;
    }
    return depthwise_conv2d_select(in, win, w_bits, out)->run(in, x, win, w, w_bits, rq, out, y, scratch);
}

uint32_t mpq_depthwise_conv2d_get_buffer_size(const mpq_dims_t *in, const mpq_window_t *win,
                                              uint8_t w_bits, const mpq_dims_t *out) {
    return depthwise_conv2d_select(in, win, w_bits, out)->buffer_size(in, win, w_bits, out);
}

/* ---- fully_connected ---- */

static const matvec_kernel_t fully_connected_ref = {mpq_fully_connected_ref, mpq_matvec_ref_buffer_size};

static const matvec_kernel_t *fully_connected_select(const mpq_dims_t *in, uint8_t w_bits,
                                                     const mpq_dims_t *out) {
    (void)in;
    (void)w_bits;
    (void)out;
    return &fully_connected_ref;
}

int mpq_fully_connected(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                        const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                        const mpq_dims_t *out, void *y, void *scratch) {
    if (in == NULL || out == NULL) {
        return MPQ_ERR_ARG;
    }
    return fully_connected_select(in, w_bits, out)->run(in, x, in_offset, w, w_bits, rq, out, y, scratch);
}

uint32_t mpq_fully_connected_get_buffer_size(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out) {
    return fully_connected_select(in, w_bits, out)->buffer_size(in, w_bits, out);
}

/* ---- global_avg_pool (no scratch) ---- */

typedef int (*global_avg_pool_kernel_t)(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                        const mpq_requant_t *rq, const mpq_dims_t *out, void *y);

static global_avg_pool_kernel_t global_avg_pool_select(const mpq_dims_t *in, const mpq_dims_t *out) {
    (void)in;
    (void)out;
    return mpq_global_avg_pool_ref;
}

int mpq_global_avg_pool(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                        const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (in == NULL || out == NULL) {
        return MPQ_ERR_ARG;
    }
    return global_avg_pool_select(in, out)(in, x, in_offset, rq, out, y);
}
