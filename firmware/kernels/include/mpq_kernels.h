/*
 * Mixed-precision integer kernels: the public API.
 *
 * Arithmetic, packing and layouts: docs/integer-arithmetic.md (the contract).
 * Naming follows CMSIS-NN: mpq_<op>[_shape]_<impl>. Every op has a portable reference
 * kernel (<op>_ref, one per file in src/) and a wrapper mpq_<op>() that picks the fastest
 * kernel available for the given shape and bits; all of them are bit-exact with the
 * host reference (harness/ir/reference.py). Every op also has a Cortex-M7 kernel (<op>_m7: the
 * DSP extension's SIMD instructions, SMLAD on int16 operands for the MACs; it compiles, with exact
 * C stand-ins for the instructions, on any host), which the wrapper picks unless the firmware is
 * built with -DMPQ_FORCE_REF.
 *
 * Conventions for every kernel:
 *   - tensors are NHWC, batch 1, rows packed along channels (bits 2/4/8), every pixel on a
 *     byte boundary; an output with bits == 32 is raw int32 accumulators (logits);
 *   - padding bottom/right is implied by the output dims; padded taps contribute nothing;
 *   - scratch is a buffer of mpq_<op>_get_buffer_size() bytes (may be NULL when that is 0);
 *   - return MPQ_OK, or MPQ_ERR_ARG for unsupported bits / inconsistent dims, writing nothing then.
 *
 * Every op also has mpq_<op>_check(), the wrapper's argument checks alone (MPQ_OK or MPQ_ERR_ARG;
 * it writes nothing), and mpq_<op>_unchecked(), the wrapper's kernel without them (it returns
 * MPQ_OK), for arguments that mpq_<op>_check() accepted (anything else is undefined behaviour).
 * A caller whose arguments never change checks them once and runs unchecked, as TFLite Micro's
 * Prepare and Eval do: a generated model's check() checks every layer, its run() calls the kernels
 * unchecked (harness/build/codegen.py). The five entries of an op share one type, mpq_<op>_fn.
 */
#ifndef MPQ_KERNELS_H
#define MPQ_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPQ_OK 0
#define MPQ_ERR_ARG (-1)

/* A feature map: height, width, channels and bits per value (2, 4, 8, or 32 for int32 output).
 * As the output of conv2d, pointwise or fully connected it may be an output-channel window:
 * the call computes channels c0 .. c0 + c - 1 of rows that hold row_c channels, leaving the
 * other channels' bits as they are (a channel-wise layer runs one call per run of equal weight
 * bits). row_c = 0 (the default) means the row holds exactly c channels and c0 is 0. */
typedef struct {
    uint16_t h, w, c;
    uint8_t bits;
    uint16_t c0, row_c;
} mpq_dims_t;

/* Sliding window of conv2d / depthwise: kernel size, stride, top/left padding, input offset (-zero_point). */
typedef struct {
    uint8_t kh, kw;
    uint8_t sh, sw;
    uint8_t pad_top, pad_left;
    int32_t in_offset;
} mpq_window_t;

/* Per-output-channel requantization: y = clamp((acc*mult + 2^(shift-1)) >> shift, 0, 2^bits-1). */
typedef struct {
    const int32_t *bias;
    const int32_t *mult;
    const int8_t *shift;
} mpq_requant_t;

/* Bytes one packed row of c values at `bits` takes (bits == 32: 4*c). */
static inline uint32_t mpq_row_bytes(uint32_t c, uint32_t bits) {
    return bits == 32 ? 4u * c : (c * bits + 7u) / 8u;
}

/* conv2d k x k, weights [cout][kh][kw][cin] packed along cin at w_bits; out may be a window. */
typedef int mpq_conv2d_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                          const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                          const mpq_dims_t *out, void *y, void *scratch);
mpq_conv2d_fn mpq_conv2d, mpq_conv2d_ref, mpq_conv2d_m7, mpq_conv2d_check, mpq_conv2d_unchecked;
uint32_t mpq_conv2d_get_buffer_size(const mpq_dims_t *in, const mpq_window_t *win, uint8_t w_bits,
                                    const mpq_dims_t *out);

/* pointwise 1x1, stride 1, no padding; weights [cout][cin] packed along cin; out may be a window. */
typedef int mpq_pointwise_fn(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                             const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                             const mpq_dims_t *out, void *y, void *scratch);
mpq_pointwise_fn mpq_pointwise, mpq_pointwise_ref, mpq_pointwise_m7, mpq_pointwise_check,
                 mpq_pointwise_unchecked;
uint32_t mpq_pointwise_get_buffer_size(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out);

/* depthwise k x k, weights [kh][kw][c] packed along c. */
typedef int mpq_depthwise_conv2d_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                    const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                    const mpq_dims_t *out, void *y, void *scratch);
mpq_depthwise_conv2d_fn mpq_depthwise_conv2d, mpq_depthwise_conv2d_ref, mpq_depthwise_conv2d_m7,
                        mpq_depthwise_conv2d_check, mpq_depthwise_conv2d_unchecked;
uint32_t mpq_depthwise_conv2d_get_buffer_size(const mpq_dims_t *in, const mpq_window_t *win,
                                              uint8_t w_bits, const mpq_dims_t *out);

/* fully connected, input 1x1xcin, weights [cout][cin] packed along cin; out may be a window. */
typedef int mpq_fully_connected_fn(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                   const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                   const mpq_dims_t *out, void *y, void *scratch);
mpq_fully_connected_fn mpq_fully_connected, mpq_fully_connected_ref, mpq_fully_connected_m7,
                       mpq_fully_connected_check, mpq_fully_connected_unchecked;
uint32_t mpq_fully_connected_get_buffer_size(const mpq_dims_t *in, uint8_t w_bits, const mpq_dims_t *out);

/* global average pool H x W x C -> 1 x 1 x C (sum, then requantize; 1/(H*W) lives in mult). */
typedef int mpq_global_avg_pool_fn(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                   const mpq_requant_t *rq, const mpq_dims_t *out, void *y);
mpq_global_avg_pool_fn mpq_global_avg_pool, mpq_global_avg_pool_ref, mpq_global_avg_pool_m7,
                       mpq_global_avg_pool_check, mpq_global_avg_pool_unchecked;

/* average pool kh x kw with stride and padding (sum of in-bounds taps; 1/(kh*kw) lives in mult),
 * channels kept, 2/4/8-bit output; no scratch. */
typedef int mpq_avg_pool_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                            const mpq_requant_t *rq, const mpq_dims_t *out, void *y);
mpq_avg_pool_fn mpq_avg_pool, mpq_avg_pool_ref, mpq_avg_pool_m7, mpq_avg_pool_check, mpq_avg_pool_unchecked;

/* max pool kh x kw with stride and padding: bias + the largest in-bounds tap (padded taps take no
 * part), requantized per channel; channels kept, 2/4/8-bit output; no scratch. */
typedef int mpq_max_pool_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                            const mpq_requant_t *rq, const mpq_dims_t *out, void *y);
mpq_max_pool_fn mpq_max_pool, mpq_max_pool_ref, mpq_max_pool_m7, mpq_max_pool_check, mpq_max_pool_unchecked;

/* Requantization of a residual add (one for the whole tensor): see mpq_add. */
typedef struct {
    int32_t in1_offset, in2_offset; /* -zero_point of each input */
    int32_t mult1, mult2;           /* 0 <= mult < 2^31 */
    int32_t shift;                  /* 1 .. 62 */
    int32_t out_offset;             /* the output zero-point, 0 .. 2^bits-1 */
} mpq_add_params_t;

/* residual add of two maps of one shape (any bits each), 2/4/8-bit output; no scratch:
 * y = clamp(floor(((x1+in1_offset)*mult1 + (x2+in2_offset)*mult2 + 2^(shift-1)) / 2^shift)
 *           + out_offset, 0, 2^bits-1), computed in int64. */
typedef int mpq_add_fn(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2,
                       const uint8_t *x2, const mpq_add_params_t *p, const mpq_dims_t *out,
                       void *y);
mpq_add_fn mpq_add, mpq_add_ref, mpq_add_m7, mpq_add_check, mpq_add_unchecked;

#ifdef __cplusplus
}
#endif

#endif /* MPQ_KERNELS_H */
