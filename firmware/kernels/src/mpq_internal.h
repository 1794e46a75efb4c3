/*
 * Helpers shared by the kernels (not part of the public API): argument checks, unpacking a
 * packed row into int16, int16 dot products, requantization and writing one output value.
 *
 * Arithmetic: docs/integer-arithmetic.md. Everything here is fully defined C11: no right shift
 * of a negative value, no out-of-range signed conversion, no signed overflow as long as the
 * accumulators fit int32 (the lowering guarantees it; every partial sum is bounded by the same
 * worst case, so summing in any order is safe).
 *
 * Value ranges that make int16 buffers exact: an input value plus in_offset lies in
 * [-255, 255], a weight in [-128, 127], their product in int16 * int16 -> int32.
 */
#ifndef MPQ_INTERNAL_H
#define MPQ_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "mpq_kernels.h"

#define MPQ_MAX_SHIFT 62

/* ---- scratch layouts of the portable kernels (bytes; callers pass 4-byte aligned scratch) ---- */

/* conv2d: the unpacked input taps of one output pixel [kh][kw][cin] and one weight row [cin]. */
static inline uint32_t mpq_conv2d_ref_buffer_size(const mpq_dims_t *in, const mpq_window_t *win,
                                                  uint8_t w_bits, const mpq_dims_t *out) {
    (void)w_bits;
    (void)out;
    return ((uint32_t)win->kh * win->kw * in->c + in->c) * (uint32_t)sizeof(int16_t);
}

/* pointwise / fully connected: one unpacked input pixel [cin] and one weight row [cin]. */
static inline uint32_t mpq_matvec_ref_buffer_size(const mpq_dims_t *in, uint8_t w_bits,
                                                  const mpq_dims_t *out) {
    (void)w_bits;
    (void)out;
    return 2u * in->c * (uint32_t)sizeof(int16_t);
}

/* depthwise: int32 accumulators [c], then one unpacked input row [c] and one weight row [c]. */
static inline uint32_t mpq_depthwise_conv2d_ref_buffer_size(const mpq_dims_t *in, const mpq_window_t *win,
                                                            uint8_t w_bits, const mpq_dims_t *out) {
    (void)win;
    (void)w_bits;
    (void)out;
    return in->c * (uint32_t)(sizeof(int32_t) + 2u * sizeof(int16_t));
}

/* ---- argument checks (each returns 1 when the argument is valid) ---- */

static inline int mpq_packed_bits_ok(uint32_t bits) {
    return bits == 2u || bits == 4u || bits == 8u;
}

/* A feature map: non-NULL data, non-empty, packed bits (or int32 when allow_int32), whole rows. */
static inline int mpq_tensor_ok(const mpq_dims_t *d, const void *data, int allow_int32) {
    return d != NULL && data != NULL && d->h > 0u && d->w > 0u && d->c > 0u &&
           (mpq_packed_bits_ok(d->bits) || (allow_int32 && d->bits == 32u)) && d->c0 == 0u && d->row_c == 0u;
}

/* ---- output-channel windows (mpq_dims_t.c0, row_c) ---- */

/* Channels one output row holds. */
static inline uint32_t mpq_row_channels(const mpq_dims_t *out) {
    return out->row_c ? out->row_c : out->c;
}

/* An output that may be a window: as mpq_tensor_ok, with channels c0 .. c0 + c - 1 inside the row. */
static inline int mpq_window_out_ok(const mpq_dims_t *d, const void *y) {
    if (d == NULL || (d->row_c == 0u && d->c0 != 0u) || (uint32_t)d->c0 + d->c > mpq_row_channels(d)) {
        return 0;
    }
    const mpq_dims_t whole = {d->h, d->w, d->c, d->bits, 0u, 0u};
    return mpq_tensor_ok(&whole, y, 1);
}

/* in_offset is minus the input zero-point: -(2^bits - 1) <= in_offset <= 0. */
static inline int mpq_in_offset_ok(int32_t in_offset, uint32_t in_bits) {
    return in_offset <= 0 && in_offset >= -(int32_t)((1u << in_bits) - 1u);
}

/* bias always; mult in [0, 2^31) and shift in [1, 62] unless the output is int32 (unused then);
 * out of line (mpq_args.c): every kernel checks its layer with the one copy. */
int mpq_requant_ok(const mpq_requant_t *rq, uint32_t channels, uint32_t out_bits);

/* Input, output and requantization of any layer (the output whole rows). */
static inline int mpq_layer_ok(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                               const mpq_requant_t *rq, const mpq_dims_t *out, const void *y) {
    return mpq_tensor_ok(in, x, 0) && mpq_tensor_ok(out, y, 1) && mpq_in_offset_ok(in_offset, in->bits) &&
           mpq_requant_ok(rq, out->c, out->bits);
}

/* As mpq_layer_ok, the output may be an output-channel window (rq holds the window's c channels). */
static inline int mpq_window_layer_ok(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                      const mpq_requant_t *rq, const mpq_dims_t *out, const void *y) {
    return mpq_tensor_ok(in, x, 0) && mpq_window_out_ok(out, y) && mpq_in_offset_ok(in_offset, in->bits) &&
           mpq_requant_ok(rq, out->c, out->bits);
}

static inline int mpq_weights_ok(const uint8_t *w, uint32_t w_bits) {
    return w != NULL && mpq_packed_bits_ok(w_bits);
}

/* Scratch of `bytes` bytes: may be NULL only when none is needed; 4-byte aligned otherwise. */
static inline int mpq_scratch_ok(const void *scratch, uint32_t bytes) {
    return bytes == 0u || (scratch != NULL && ((uintptr_t)scratch & 3u) == 0u);
}

/* One axis of a sliding window: the first window overlaps the padding by less than a kernel,
 * the last one starts inside the input, and no input beyond a bottom/right pad >= 0 is left out. */
static inline int mpq_window_axis_ok(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad, uint32_t out) {
    return k > 0u && stride > 0u && pad < k && (out - 1u) * stride < in + pad && out * stride + k > in + pad;
}

static inline int mpq_window_ok(const mpq_dims_t *in, const mpq_window_t *win, const mpq_dims_t *out) {
    return mpq_window_axis_ok(in->h, win->kh, win->sh, win->pad_top, out->h) &&
           mpq_window_axis_ok(in->w, win->kw, win->sw, win->pad_left, out->w);
}

/* ---- the kernels' bodies, for checked arguments (mpq_<op>_check) ---- */

/* mpq_ref_<op> computes what mpq_<op>_ref computes, and mpq_m7_<op> (mpq_m7.h) what mpq_<op>_m7
 * does, without checking the arguments first: the checked kernels, mpq_<op>_unchecked and an _m7
 * kernel's fallback for a layer too large for its work buffer run them. */
typedef void mpq_conv2d_body_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                const mpq_dims_t *out, void *y, void *scratch);
typedef void mpq_pointwise_body_fn(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                   const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                   const mpq_dims_t *out, void *y, void *scratch);
typedef void mpq_depthwise_conv2d_body_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                          const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                          const mpq_dims_t *out, void *y, void *scratch);
typedef void mpq_fully_connected_body_fn(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                         const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                                         const mpq_dims_t *out, void *y, void *scratch);
typedef void mpq_global_avg_pool_body_fn(const mpq_dims_t *in, const uint8_t *x, int32_t in_offset,
                                         const mpq_requant_t *rq, const mpq_dims_t *out, void *y);
typedef void mpq_avg_pool_body_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                  const mpq_requant_t *rq, const mpq_dims_t *out, void *y);
typedef void mpq_max_pool_body_fn(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                  const mpq_requant_t *rq, const mpq_dims_t *out, void *y);
typedef void mpq_add_body_fn(const mpq_dims_t *in1, const uint8_t *x1, const mpq_dims_t *in2,
                             const uint8_t *x2, const mpq_add_params_t *p, const mpq_dims_t *out, void *y);

mpq_conv2d_body_fn mpq_ref_conv2d;
mpq_pointwise_body_fn mpq_ref_pointwise;
mpq_depthwise_conv2d_body_fn mpq_ref_depthwise_conv2d;
mpq_fully_connected_body_fn mpq_ref_fully_connected;
mpq_global_avg_pool_body_fn mpq_ref_global_avg_pool;
mpq_avg_pool_body_fn mpq_ref_avg_pool;
mpq_max_pool_body_fn mpq_ref_max_pool;
mpq_add_body_fn mpq_ref_add;

/* One axis of a window at one output position: its first tap's input coordinate (negative in the
 * top/left padding) and the taps [lo, hi) that fall inside 0 .. size-1. */
typedef struct {
    int32_t start;
    uint32_t lo, hi;
} mpq_window_axis_t;

static inline mpq_window_axis_t mpq_window_axis(uint32_t o, uint32_t stride, uint32_t pad, uint32_t k,
                                                uint32_t size) {
    const int32_t start = (int32_t)(o * stride) - (int32_t)pad;
    const int32_t end = start + (int32_t)k;
    const mpq_window_axis_t axis = {start, start < 0 ? (uint32_t)-start : 0u,
                                    end > (int32_t)size ? k - (uint32_t)(end - (int32_t)size) : k};
    return axis;
}

/* The input pixel (row-major index) under tap (ky, kx) of windows at rows `ry` and columns `rx`. */
static inline uint32_t mpq_window_pixel(const mpq_window_axis_t *ry, const mpq_window_axis_t *rx, uint32_t ky,
                                        uint32_t kx, uint32_t in_w) {
    return (uint32_t)(ry->start + (int32_t)ky) * in_w + (uint32_t)(rx->start + (int32_t)kx);
}

/* ---- unpacking ---- */

/* n values of `bits` (a constant after inlining), each decoded as ((code ^ half) - half) + offset:
 * half = 2^(bits-1) sign-extends two's complement, half = 0 reads an unsigned code. */
static inline void mpq_unpack_row_at(const uint8_t *row, uint32_t n, uint32_t bits, int32_t half,
                                     int32_t offset, int16_t *dst) {
    const uint32_t per_byte = 8u / bits;
    const uint32_t mask = (1u << bits) - 1u;
    const uint32_t full_bytes = n / per_byte;
    for (uint32_t b = 0; b < full_bytes; ++b) {
        uint32_t byte = row[b];
        for (uint32_t k = 0; k < per_byte; ++k) {
            *dst++ = (int16_t)(((int32_t)(byte & mask) ^ half) - half + offset);
            byte >>= bits;
        }
    }
    uint32_t byte = n % per_byte ? row[full_bytes] : 0u;
    for (uint32_t k = 0; k < n % per_byte; ++k) {
        *dst++ = (int16_t)(((int32_t)(byte & mask) ^ half) - half + offset);
        byte >>= bits;
    }
}

/* Call unpack_at(row, n, bits, half, offset, dst) with `bits` a constant in each case, so every
 * case compiles with constant shifts and masks (`half` sign-extends signed values, 0 otherwise). */
#define MPQ_UNPACK_BY_BITS(unpack_at, row, n, bits, is_signed, offset, dst)  \
    do {                                                                     \
        switch (bits) {                                                      \
        case 8u:                                                             \
            unpack_at(row, n, 8u, (is_signed) ? 128 : 0, offset, dst);       \
            break;                                                           \
        case 4u:                                                             \
            unpack_at(row, n, 4u, (is_signed) ? 8 : 0, offset, dst);         \
            break;                                                           \
        default:                                                             \
            unpack_at(row, n, 2u, (is_signed) ? 2 : 0, offset, dst);         \
            break;                                                           \
        }                                                                    \
    } while (0)

static inline void mpq_unpack_row(const uint8_t *row, uint32_t n, uint32_t bits, int is_signed,
                                  int32_t offset, int16_t *dst) {
    MPQ_UNPACK_BY_BITS(mpq_unpack_row_at, row, n, bits, is_signed, offset, dst);
}

/* A row of unsigned activations, in_offset added: values in [-255, 255]. */
static inline void mpq_unpack_activations(const uint8_t *row, uint32_t n, uint32_t bits, int32_t in_offset,
                                          int16_t *dst) {
    mpq_unpack_row(row, n, bits, 0, in_offset, dst);
}

/* A row of signed weights: values in [-128, 127]. */
static inline void mpq_unpack_weights(const uint8_t *row, uint32_t n, uint32_t bits, int16_t *dst) {
    mpq_unpack_row(row, n, bits, 1, 0, dst);
}

/* ---- multiply-accumulate ---- */

static inline int32_t mpq_dot_s16(const int16_t *a, const int16_t *b, uint32_t n) {
    int32_t sum = 0;
    for (uint32_t i = 0; i < n; ++i) {
        sum += (int32_t)a[i] * b[i];
    }
    return sum;
}

/* acc[i] += a[i] * b[i] */
static inline void mpq_mac_s16(int32_t *acc, const int16_t *a, const int16_t *b, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
        acc[i] += (int32_t)a[i] * b[i];
    }
}

/* ---- output ---- */

/* y = clamp((acc * mult + 2^(shift-1)) >> shift, 0, 2^bits - 1) with an exact int64 product.
 * A negative sum floors to a negative value, which clamps to 0: returning early avoids shifting
 * a negative number (implementation-defined in C). */
static inline int32_t mpq_requantize(int32_t acc, int32_t mult, int32_t shift, uint32_t bits) {
    const int64_t sum = (int64_t)acc * mult + ((int64_t)1 << (shift - 1));
    if (sum < 0) {
        return 0;
    }
    const uint64_t y = (uint64_t)sum >> shift;
    const uint64_t top = (1u << bits) - 1u;
    return (int32_t)(y < top ? y : top);
}

/* Zero a packed output row so values can be OR-ed in (this also zeroes the bits after the last value). */
static inline void mpq_clear_row(uint8_t *row, uint32_t n, uint32_t bits) {
    memset(row, 0, mpq_row_bytes(n, bits));
}

/* Zeroes, in one output row, the bits of the call's channels c0 .. c0 + c - 1 (their values are
 * then OR-ed in) and, when the window ends the row, the padding bits after the last value; the
 * other channels' bits are kept. For a whole row this is mpq_clear_row(). */
static inline void mpq_clear_outputs(uint8_t *row, const mpq_dims_t *out) {
    const uint32_t n = mpq_row_channels(out), bits = out->bits;
    if (out->row_c == 0u) {
        mpq_clear_row(row, n, bits);
        return;
    }
    const uint32_t lo = (uint32_t)out->c0 * bits;
    const uint32_t hi = out->c0 + out->c == n ? 8u * mpq_row_bytes(n, bits) : ((uint32_t)out->c0 + out->c) * bits;
    uint32_t first = lo >> 3;
    const uint32_t last = hi >> 3;
    if ((lo & 7u) != 0u) { /* a byte shared with the channels before */
        const uint32_t above = first == last ? ~((1u << (hi & 7u)) - 1u) : 0u;
        row[first] &= (uint8_t)(((1u << (lo & 7u)) - 1u) | above);
        if (first == last) {
            return;
        }
        ++first;
    }
    memset(row + first, 0, last - first);
    if ((hi & 7u) != 0u) { /* a byte shared with the channels after */
        row[last] &= (uint8_t)~((1u << (hi & 7u)) - 1u);
    }
}

/* Output value i (of rq) at position pos of a cleared row (mpq_clear_outputs): requantized to
 * `bits`, or the raw accumulator as a little-endian int32 when bits == 32. */
static inline void mpq_write_output_at(uint8_t *row, uint32_t pos, uint32_t i, uint32_t bits, int32_t acc,
                                       const mpq_requant_t *rq) {
    if (bits == 32u) {
        const uint32_t v = (uint32_t)acc;
        row[4u * pos] = (uint8_t)v;
        row[4u * pos + 1u] = (uint8_t)(v >> 8);
        row[4u * pos + 2u] = (uint8_t)(v >> 16);
        row[4u * pos + 3u] = (uint8_t)(v >> 24);
        return;
    }
    const uint32_t y = (uint32_t)mpq_requantize(acc, rq->mult[i], rq->shift[i], bits);
    row[(pos * bits) >> 3] |= (uint8_t)(y << ((pos * bits) & 7u));
}

/* Output value i at position i of a row. */
static inline void mpq_write_output(uint8_t *row, uint32_t i, uint32_t bits, int32_t acc, const mpq_requant_t *rq) {
    mpq_write_output_at(row, i, i, bits, acc, rq);
}

/* ---- the portable pools ---- */

/* Channels a portable pool reduces per pass (on the stack: MPQ_POOL_CHUNK * (4 + 2) = 192 bytes);
 * a multiple of 4 so every chunk starts on a byte. */
#define MPQ_POOL_CHUNK 32u

/* avg_pool (take_max 0: acc = bias + the sum of the in-bounds taps) or max_pool (take_max 1:
 * acc = bias + the largest in-bounds tap; padded taps take no part), requantized per channel
 * (docs/integer-arithmetic.md, "avg_pool", "max_pool"). Arguments already checked. */
static inline void mpq_pool_ref(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                                const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *yp, int take_max) {
    const uint32_t x_row = mpq_row_bytes(in->c, in->bits);
    const uint32_t y_row = mpq_row_bytes(out->c, out->bits);
    int32_t acc[MPQ_POOL_CHUNK];
    int16_t values[MPQ_POOL_CHUNK];

    for (uint32_t oy = 0; oy < out->h; ++oy) {
        const mpq_window_axis_t ry = mpq_window_axis(oy, win->sh, win->pad_top, win->kh, in->h);
        for (uint32_t ox = 0; ox < out->w; ++ox, yp += y_row) {
            const mpq_window_axis_t rx = mpq_window_axis(ox, win->sw, win->pad_left, win->kw, in->w);
            mpq_clear_row(yp, out->c, out->bits);
            for (uint32_t c0 = 0; c0 < in->c; c0 += MPQ_POOL_CHUNK) {
                const uint32_t n = in->c - c0 < MPQ_POOL_CHUNK ? in->c - c0 : MPQ_POOL_CHUNK;
                for (uint32_t i = 0; i < n; ++i) {
                    acc[i] = take_max ? INT32_MIN : 0;
                }
                for (uint32_t ky = ry.lo; ky < ry.hi; ++ky) {
                    for (uint32_t kx = rx.lo; kx < rx.hi; ++kx) {
                        const uint32_t pixel = mpq_window_pixel(&ry, &rx, ky, kx, in->w);
                        mpq_unpack_activations(x + pixel * x_row + c0 * in->bits / 8u, n, in->bits, win->in_offset,
                                               values);
                        for (uint32_t i = 0; i < n; ++i) {
                            acc[i] = take_max ? (values[i] > acc[i] ? values[i] : acc[i]) : acc[i] + values[i];
                        }
                    }
                }
                for (uint32_t i = 0; i < n; ++i) {
                    mpq_write_output(yp, c0 + i, out->bits, rq->bias[c0 + i] + acc[i], rq);
                }
            }
        }
    }
}

/* One output pixel of a 1x1 layer: y_row[c0 + o] = bias[o] + sum_i w[o][i] * xs[i], requantized
 * (out may be a window); xs holds the unpacked input (in_offset added), wbuf room for one
 * unpacked weight row. */
static inline void mpq_matvec_pixel(const int16_t *xs, uint32_t cin, const uint8_t *w, uint32_t w_bits,
                                    int16_t *wbuf, const mpq_requant_t *rq, const mpq_dims_t *out,
                                    uint8_t *y_row) {
    const uint32_t w_row = mpq_row_bytes(cin, w_bits);
    mpq_clear_outputs(y_row, out);
    for (uint32_t o = 0; o < out->c; ++o) {
        mpq_unpack_weights(w + o * w_row, cin, w_bits, wbuf);
        mpq_write_output_at(y_row, out->c0 + o, o, out->bits, rq->bias[o] + mpq_dot_s16(xs, wbuf, cin), rq);
    }
}

#endif /* MPQ_INTERNAL_H */
