/*
 * The public wrappers mpq_<op>(), mpq_<op>_unchecked() and mpq_<op>_get_buffer_size(): pick the
 * kernel for a layer's shape and bits, CMSIS-NN style. mpq_<op>() checks the arguments
 * (mpq_<op>_check, mpq_args.c), then runs mpq_<op>_unchecked().
 *
 * Each op has a select function returning a kernel entry (the kernel's body and the scratch it
 * needs); the wrappers and get_buffer_size all go through it, so they can never disagree. An optimized
 * kernel (e.g. mpq_pointwise_u8_s8_u8_m7) is added as one more entry plus a test on (shape, bits)
 * in the select function, in front of the portable _ref fallback, which accepts everything.
 *
 * The Cortex-M7 kernels (_m7, mpq_m7.h) accept every shape and bits the _ref kernels accept and
 * ask for the same scratch (they work in a static buffer and run the _ref kernel for a layer too
 * large for it), so they are picked for every layer: conv2d, pointwise, depthwise, fully
 * connected, the pools and add; building with -DMPQ_FORCE_REF picks the portable kernels instead
 * (to compare, or to test them on the device).
 */
#include "mpq_m7.h"

#ifdef MPQ_FORCE_REF
#define MPQ_USE_REF 1
#else
#define MPQ_USE_REF 0
#endif
#define MPQ_PICK(m7, ref) (MPQ_USE_REF ? &(ref) : &(m7))

/* ---- conv2d ---- */

typedef struct {
    mpq_conv2d_body_fn *run; /* conv2d and depthwise_conv2d take the same arguments */
    uint32_t (*buffer_size)(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                            const mpq_dims_t *out);
} conv2d_kernel_t;

static const conv2d_kernel_t conv2d_ref = {mpq_ref_conv2d, mpq_conv2d_ref_buffer_size};
static const conv2d_kernel_t conv2d_m7 = {mpq_m7_conv2d, mpq_conv2d_ref_buffer_size};

static const conv2d_kernel_t *conv2d_select(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                                            const mpq_dims_t *out) {
    (void)in;
    (void)win;
    (void)w_bits;
    (void)out;
    return MPQ_PICK(conv2d_m7, conv2d_ref);
}

int mpq_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
               const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
               const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_conv2d_check(in, x, win, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_conv2d_unchecked(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

int mpq_conv2d_unchecked(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                         const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                         const mpq_dims_t *out, void *y, void *scratch) {
    conv2d_select(in, win, w_bits, out)->run(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

uint32_t mpq_conv2d_get_buffer_size(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                                    const mpq_dims_t *out) {
    return conv2d_select(in, win, w_bits, out)->buffer_size(in, win, w_bits, out);
}

/* ---- pointwise ---- */

typedef struct {
    mpq_pointwise_body_fn *run; /* pointwise and fully_connected take the same arguments */
    uint32_t (*buffer_size)(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out);
} matvec_kernel_t;

static const matvec_kernel_t pointwise_ref = {mpq_ref_pointwise, mpq_matvec_ref_buffer_size};
static const matvec_kernel_t pointwise_m7 = {mpq_m7_pointwise, mpq_matvec_ref_buffer_size};

static const matvec_kernel_t *pointwise_select(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out) {
    (void)in;
    (void)w_bits;
    (void)out;
    return MPQ_PICK(pointwise_m7, pointwise_ref);
}

int mpq_pointwise(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                  const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                  const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_pointwise_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_pointwise_unchecked(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

int mpq_pointwise_unchecked(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                            const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                            const mpq_dims_t *out, void *y, void *scratch) {
    pointwise_select(in, w_bits, out)->run(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

uint32_t mpq_pointwise_get_buffer_size(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out) {
    return pointwise_select(in, w_bits, out)->buffer_size(in, w_bits, out);
}

/* ---- depthwise_conv2d ---- */

static const conv2d_kernel_t depthwise_conv2d_ref = {mpq_ref_depthwise_conv2d,
                                                     mpq_depthwise_conv2d_ref_buffer_size};
static const conv2d_kernel_t depthwise_conv2d_m7 = {mpq_m7_depthwise_conv2d, mpq_depthwise_conv2d_ref_buffer_size};

static const conv2d_kernel_t *depthwise_conv2d_select(const mpq_dims_t *in, const mpq_window_t *win,
                                                      uint8_t w_bits, const mpq_dims_t *out) {
    (void)in;
    (void)win;
    (void)w_bits;
    (void)out;
    return MPQ_PICK(depthwise_conv2d_m7, depthwise_conv2d_ref);
}

int mpq_depthwise_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                         const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                         const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_depthwise_conv2d_check(in, x, win, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_depthwise_conv2d_unchecked(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

int mpq_depthwise_conv2d_unchecked(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                   const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                   const mpq_dims_t *out, void *y, void *scratch) {
    depthwise_conv2d_select(in, win, w_bits, out)->run(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

uint32_t mpq_depthwise_conv2d_get_buffer_size(const mpq_dims_t *in, const mpq_window_t *win,
                                              uint8_t w_bits, const mpq_dims_t *out) {
    return depthwise_conv2d_select(in, win, w_bits, out)->buffer_size(in, win, w_bits, out);
}

/* ---- fully_connected ---- */

static const matvec_kernel_t fully_connected_ref = {mpq_ref_fully_connected, mpq_matvec_ref_buffer_size};
static const matvec_kernel_t fully_connected_m7 = {mpq_m7_fully_connected, mpq_matvec_ref_buffer_size};

static const matvec_kernel_t *fully_connected_select(const mpq_dims_t *in, uint8_t w_bits,
                                                     const mpq_dims_t *out) {
    (void)in;
    (void)w_bits;
    (void)out;
    return MPQ_PICK(fully_connected_m7, fully_connected_ref);
}

int mpq_fully_connected(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                        const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                        const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_fully_connected_check(in, x, in_offset, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_fully_connected_unchecked(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

int mpq_fully_connected_unchecked(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                  const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                  const mpq_dims_t *out, void *y, void *scratch) {
    fully_connected_select(in, w_bits, out)->run(in, x, in_offset, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

uint32_t mpq_fully_connected_get_buffer_size(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out) {
    return fully_connected_select(in, w_bits, out)->buffer_size(in, w_bits, out);
}

/* ---- global_avg_pool (no scratch) ---- */

typedef mpq_global_avg_pool_body_fn *global_avg_pool_kernel_t;

static global_avg_pool_kernel_t global_avg_pool_select(const mpq_dims_t *in, const mpq_dims_t *out) {
    (void)in;
    (void)out;
    return MPQ_USE_REF ? mpq_ref_global_avg_pool : mpq_m7_global_avg_pool;
}

int mpq_global_avg_pool(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                        const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_global_avg_pool_check(in, x, in_offset, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_global_avg_pool_unchecked(in, x, in_offset, rq, out, y);
    return MPQ_OK;
}

int mpq_global_avg_pool_unchecked(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                  const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    global_avg_pool_select(in, out)(in, x, in_offset, rq, out, y);
    return MPQ_OK;
}

/* ---- avg_pool (no scratch) ---- */

typedef mpq_avg_pool_body_fn *avg_pool_kernel_t;

static avg_pool_kernel_t avg_pool_select(const mpq_dims_t *in, const mpq_window_t *win, const mpq_dims_t *out) {
    (void)in;
    (void)win;
    (void)out;
    return MPQ_USE_REF ? mpq_ref_avg_pool : mpq_m7_avg_pool;
}

int mpq_avg_pool(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                 const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_avg_pool_check(in, x, win, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_avg_pool_unchecked(in, x, win, rq, out, y);
    return MPQ_OK;
}

int mpq_avg_pool_unchecked(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                           const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    avg_pool_select(in, win, out)(in, x, win, rq, out, y);
    return MPQ_OK;
}

/* ---- max_pool (no scratch) ---- */

typedef mpq_max_pool_body_fn *max_pool_kernel_t;

static max_pool_kernel_t max_pool_select(const mpq_dims_t *in, const mpq_window_t *win, const mpq_dims_t *out) {
    (void)in;
    (void)win;
    (void)out;
    return MPQ_USE_REF ? mpq_ref_max_pool : mpq_m7_max_pool;
}

int mpq_max_pool(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                 const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    if (mpq_max_pool_check(in, x, win, rq, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_max_pool_unchecked(in, x, win, rq, out, y);
    return MPQ_OK;
}

int mpq_max_pool_unchecked(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                           const mpq_requant_t *rq, const mpq_dims_t *out, void *y) {
    max_pool_select(in, win, out)(in, x, win, rq, out, y);
    return MPQ_OK;
}

/* ---- add (no scratch) ---- */

typedef mpq_add_body_fn *add_kernel_t;

static add_kernel_t add_select(const mpq_dims_t *in1, const mpq_dims_t *in2, const mpq_dims_t *out) {
    (void)in1;
    (void)in2;
    (void)out;
    return MPQ_USE_REF ? mpq_ref_add : mpq_m7_add;
}

int mpq_add(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
            const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    if (mpq_add_check(in1, x1, in2, x2, p, out, y) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_add_unchecked(in1, x1, in2, x2, p, out, y);
    return MPQ_OK;
}

int mpq_add_unchecked(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2, const uint8_t *x2,
                      const mpq_add_params_t *p, const mpq_dims_t *out, void *y) {
    add_select(in1, in2, out)(in1, x1, in2, x2, p, out, y);
    return MPQ_OK;
}
