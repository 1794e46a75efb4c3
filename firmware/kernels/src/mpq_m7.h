/*
 * Shared parts of the Cortex-M7 (_m7) kernels: their work buffer, unpacking and requantization
 * with the DSP extension, and the matrix engine that conv2d, pointwise and fully connected run
 * on. Not part of the public API.
 *
 * The _m7 kernels compute exactly what the _ref kernels compute (docs/integer-arithmetic.md),
 * with the DSP extension (mpq_dsp.h): operands are unpacked to int16 once, in the work buffer,
 * and multiplied two at a time with SMLAD. Every bit combination goes through the same inner
 * loops; the bits only change the unpacking. Measured costs: docs/benchmarks.md.
 */
#ifndef MPQ_M7_H
#define MPQ_M7_H

#include "mpq_dsp.h"
#include "mpq_internal.h"

/* The _m7 kernels unpack their operands into a static work buffer of MPQ_M7_WORK_BYTES (.bss of
 * mpq_gemm_m7.c), not into the caller's scratch: they ask for the same scratch as the portable
 * kernels (so one arena plan serves both builds) and run the portable kernel for a layer whose
 * working set does not fit. Not reentrant (the firmware runs one layer at a time). */
#ifndef MPQ_M7_WORK_BYTES
#define MPQ_M7_WORK_BYTES 24576u
#endif
extern uint32_t mpq_m7_work[MPQ_M7_WORK_BYTES / 4u];

/* A 32-bit word that may alias int16 data: two unpacked values read or written at once. */
typedef uint32_t __attribute__((may_alias)) mpq_word_t;

/* For the helpers of inner loops: inlined even where the compiler would rather call. */
#define MPQ_M7_INLINE static inline __attribute__((always_inline))

/* mpq_requantize() for shift <= 32, out of line to keep the inner loops' registers free: with
 * q = floor(acc*mult / 2^(shift-1)), (acc*mult + 2^(shift-1)) >> shift = ceil(q / 2). When
 * acc < 2^(shift-2), q is the top word of (acc << (33 - shift)) * mult (SMMUL); otherwise the
 * 64-bit product is shifted, and a q of 2^32 or more clamps to the top. acc > 0. */
__attribute__((noinline, unused)) static uint32_t mpq_m7_requantize_wide(int32_t acc, int32_t mult, int32_t shift,
                                                                        uint32_t top) {
    uint32_t q;
    if (shift > 1 && ((uint32_t)acc >> (shift - 2)) == 0u) {
        q = (uint32_t)mpq_smmul((int32_t)((uint32_t)acc << (33 - shift)), mult); /* acc << .. < 2^31 */
    } else {
        const uint64_t wide = ((uint64_t)(uint32_t)acc * (uint32_t)mult) >> (shift - 1);
        if (wide >> 32) {
            return top; /* q >= 2^32 */
        }
        q = (uint32_t)wide;
    }
    const uint32_t y = (q >> 1) + (q & 1u);
    return y < top ? y : top;
}

/* mpq_requantize() when shift > 32 (a multiplier below 2^-2, the usual case), without a branch:
 * q = floor(acc*mult / 2^(shift-1)) is the top word of the product (SMMUL) shifted arithmetically
 * by shift - 33 (|q| < 2^30), and (acc*mult + 2^(shift-1)) >> shift = floor((q + 1) / 2), which
 * USAT clamps (a negative acc gives at most 0: mult >= 0). */
MPQ_M7_INLINE int32_t mpq_m7_requantize_narrow(int32_t acc, int32_t mult, int32_t shift, uint32_t bits) {
    const int32_t q = mpq_asr(mpq_smmul(acc, mult), (uint32_t)(shift - 33));
    return (int32_t)mpq_usat(mpq_asr(q + 1, 1u), bits);
}

/* mpq_m7_requantize_narrow() in one instruction fewer for loops with a register to spare per channel
 * (the rounding term, which the compiler keeps beside mult): 2^(shift-1) is a whole multiple of
 * 2^32, so one SMMLA of acc, mult and 2^(shift-33) gives floor((acc*mult + 2^(shift-1)) / 2^32)
 * exactly (no overflow: shift <= MPQ_MAX_SHIFT), shifted arithmetically by shift - 32 and clamped
 * by USAT. Register-bound loops (depthwise) are faster with mpq_m7_requantize_narrow(). */
MPQ_M7_INLINE int32_t mpq_m7_requantize_narrow_smmla(int32_t acc, int32_t mult, int32_t shift, uint32_t bits) {
    const int32_t r = mpq_smmla(acc, mult, (int32_t)(1u << (shift - 33)));
    return (int32_t)mpq_usat(mpq_asr(r, (uint32_t)(shift - 32)), bits);
}

/* The constants of mpq_m7_requantize_bounded() for a shift. */
typedef struct {
    uint32_t left, round, right;
} mpq_m7_bounded_t;

static inline mpq_m7_bounded_t mpq_m7_bounded_of(int32_t shift) {
    if (shift > 32) {
        return (mpq_m7_bounded_t){0u, 1u << (shift - 33), (uint32_t)shift - 32u};
    }
    return (mpq_m7_bounded_t){33u - (uint32_t)shift, 1u, 1u};
}

/* Whether mpq_m7_requantize_bounded() is exact for a channel whose accumulators never exceed
 * `bound` in magnitude: any shift above 32; from 3 to 32, bound < 2^(shift-2) (so the left shift
 * by 33 - shift stays inside int32). */
static inline int mpq_m7_bounded_ok(uint64_t bound, int32_t shift) {
    return shift > 32 || (shift >= 3 && bound < ((uint64_t)1 << (shift - 2)));
}

/* mpq_requantize() without a branch or a clamp, for a channel that passes mpq_m7_bounded_ok():
 * the accumulator shifted left by `left`, SMMLA with mult and `round`, shifted right by `right`
 * and clamped by USAT (mpq_m7_bounded_of). At shift > 32 that is mpq_m7_requantize_narrow_smmla();
 * at shift <= 32, q = floor((acc << left) * mult / 2^32) = floor(acc*mult / 2^(shift-1)), SMMLA
 * gives q + 1 and the result floor((q + 1) / 2) = (acc*mult + 2^(shift-1)) >> shift (a negative
 * accumulator gives at most 0, which USAT keeps: mult >= 0). */
MPQ_M7_INLINE int32_t mpq_m7_requantize_bounded(int32_t acc, int32_t mult, mpq_m7_bounded_t k, uint32_t bits) {
    const int32_t r = mpq_smmla((int32_t)((uint32_t)acc << k.left), mult, (int32_t)k.round);
    return (int32_t)mpq_usat(mpq_asr(r, k.right), bits);
}

/* How mpq_m7_store() requantizes (a constant after inlining). */
enum { MPQ_M7_RQ_ANY, MPQ_M7_RQ_NARROW /* shift > 32 */, MPQ_M7_RQ_SMALL /* shift <= 32 likely */,
       MPQ_M7_RQ_BOUNDED /* mpq_m7_bounded_ok(): mpq_m7_requantize_bounded(), not mpq_m7_store_as() */ };

/* mpq_requantize(), any shift. With `inline_small` (a constant) the SMMUL path of
 * mpq_m7_requantize_wide() for acc < 2^(shift-2) is inlined too (for loops where shift <= 32). */
MPQ_M7_INLINE int32_t mpq_m7_requantize_any(int32_t acc, int32_t mult, int32_t shift, uint32_t bits,
                                            int inline_small) {
    if (shift > 32) {
        return mpq_m7_requantize_narrow(acc, mult, shift, bits);
    }
    const uint32_t top = (1u << bits) - 1u;
    if (acc <= 0) {
        return 0;
    }
    if (inline_small && shift > 1 && ((uint32_t)acc >> (shift - 2)) == 0u) {
        const uint32_t q = (uint32_t)mpq_smmul((int32_t)((uint32_t)acc << (33 - shift)), mult);
        const uint32_t y = (q >> 1) + (q & 1u);
        return (int32_t)(y < top ? y : top);
    }
    return (int32_t)mpq_m7_requantize_wide(acc, mult, shift, top);
}

MPQ_M7_INLINE int32_t mpq_m7_requantize(int32_t acc, int32_t mult, int32_t shift, uint32_t bits) {
    return mpq_m7_requantize_any(acc, mult, shift, bits, 0);
}

/* Requantized value y at position i of a cleared row of bits-wide values (bits a constant after inlining). */
MPQ_M7_INLINE void mpq_m7_put_value(uint8_t *row, uint32_t i, uint32_t bits, uint32_t y) {
    if (bits == 8u) {
        row[i] = (uint8_t)y;
    } else {
        row[(i * bits) >> 3] |= (uint8_t)(y << ((i * bits) & 7u));
    }
}

/* Output value i of a cleared row (bits and mode constants after inlining): requantized with
 * (mult, shift) to bits 2/4/8, or the raw accumulator as a little-endian int32 when bits == 32. */
MPQ_M7_INLINE void mpq_m7_store_as(uint8_t *row, uint32_t i, uint32_t bits, int32_t acc, int32_t mult, int32_t shift,
                                   int mode) {
    if (bits == 32u) {
        const uint32_t v = (uint32_t)acc;
        row[4u * i] = (uint8_t)v;
        row[4u * i + 1u] = (uint8_t)(v >> 8);
        row[4u * i + 2u] = (uint8_t)(v >> 16);
        row[4u * i + 3u] = (uint8_t)(v >> 24);
        return;
    }
    mpq_m7_put_value(row, i, bits, (uint32_t)(mode == MPQ_M7_RQ_NARROW ? mpq_m7_requantize_narrow(acc, mult, shift, bits)
                                              : mpq_m7_requantize_any(acc, mult, shift, bits, mode == MPQ_M7_RQ_SMALL)));
}

MPQ_M7_INLINE void mpq_m7_store(uint8_t *row, uint32_t i, uint32_t bits, int32_t acc, int32_t mult, int32_t shift) {
    mpq_m7_store_as(row, i, bits, acc, mult, shift, MPQ_M7_RQ_ANY);
}

/* mpq_clear_outputs() where values are OR-ed in: 8-bit and 32-bit values are stored whole
 * (mpq_m7_store_as), so their rows need no clearing. */
static inline void mpq_m7_clear_outputs(uint8_t *row, const mpq_dims_t *out) {
    if (out->bits < 8u) {
        mpq_clear_outputs(row, out);
    }
}

/* ---- unpacking with the DSP extension ---- */

/* The 4 bytes at p as a little-endian word, at any alignment (LDR: the M7 reads words unaligned). */
MPQ_M7_INLINE uint32_t mpq_m7_load_word(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Stores two int16 lanes at dst (any 2-byte alignment: the M7 stores words unaligned). */
MPQ_M7_INLINE void mpq_m7_put(int16_t *dst, uint32_t lanes) {
    memcpy(dst, &lanes, sizeof lanes);
}

/* Lanes (v ^ h) + k: h = half | half << 16 sign-extends bits-wide codes, k adds the offset. */
MPQ_M7_INLINE uint32_t mpq_m7_decode(uint32_t v, uint32_t h, uint32_t k) {
    return mpq_sadd16(v ^ h, k);
}

/* 32 / bits values of one little-endian word into dst, their pairs (words) `step` halfwords apart
 * (bits and step constants after inlining): the codes are spread into halfword lanes with masks and
 * UXTB16, paired in order with PKHBT/PKHTB. At step 4 two rows unpack straight into the matrix
 * engine's interleaved column pairs. */
MPQ_M7_INLINE void mpq_m7_unpack_word_to(uint32_t w, uint32_t bits, uint32_t h, uint32_t k, int16_t *dst,
                                         uint32_t step) {
    if (bits == 8u) {
        const uint32_t a = mpq_uxtb16(w), b = mpq_uxtb16_ror8(w); /* (x0, x2), (x1, x3) */
        mpq_m7_put(dst, mpq_m7_decode(mpq_pack_lo(a, b), h, k));
        mpq_m7_put(dst + step, mpq_m7_decode(mpq_pack_hi(a, b), h, k));
    } else if (bits == 4u) {
        const uint32_t lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
        const uint32_t a = mpq_uxtb16(lo), b = mpq_uxtb16_ror8(lo); /* (x0, x4), (x2, x6) */
        const uint32_t c = mpq_uxtb16(hi), d = mpq_uxtb16_ror8(hi); /* (x1, x5), (x3, x7) */
        mpq_m7_put(dst, mpq_m7_decode(mpq_pack_lo(a, c), h, k));
        mpq_m7_put(dst + step, mpq_m7_decode(mpq_pack_lo(b, d), h, k));
        mpq_m7_put(dst + 2u * step, mpq_m7_decode(mpq_pack_hi(a, c), h, k));
        mpq_m7_put(dst + 3u * step, mpq_m7_decode(mpq_pack_hi(b, d), h, k));
    } else {
        uint32_t u[4][2]; /* u[s]: values s, s + 8 and s + 4, s + 12; unrolled so u stays in registers */
#pragma GCC unroll 4
        for (uint32_t s = 0; s < 4u; ++s) {
            const uint32_t crumbs = (w >> (2u * s)) & 0x03030303u;
            u[s][0] = mpq_uxtb16(crumbs);
            u[s][1] = mpq_uxtb16_ror8(crumbs);
        }
#pragma GCC unroll 2
        for (uint32_t half = 0; half < 2u; ++half) {
            int16_t *d = dst + 2u * half * step;
            mpq_m7_put(d, mpq_m7_decode(mpq_pack_lo(u[0][half], u[1][half]), h, k));
            mpq_m7_put(d + step, mpq_m7_decode(mpq_pack_lo(u[2][half], u[3][half]), h, k));
            mpq_m7_put(d + 4u * step, mpq_m7_decode(mpq_pack_hi(u[0][half], u[1][half]), h, k));
            mpq_m7_put(d + 5u * step, mpq_m7_decode(mpq_pack_hi(u[2][half], u[3][half]), h, k));
        }
    }
}

/* mpq_m7_unpack_word_to() into consecutive halfwords. */
MPQ_M7_INLINE void mpq_m7_unpack_word(uint32_t w, uint32_t bits, uint32_t h, uint32_t k, int16_t *dst) {
    mpq_m7_unpack_word_to(w, bits, h, k, dst, 2u);
}

/* For up to 16 bits x of 4- or 2-bit codes (bits a constant after inlining): x | x << (16 - bits)
 * puts code 2q + 1 a lane above code 2q, so that mpq_m7_code_pair() takes the pair q of codes out
 * of it with a shift and a mask, in order. */
MPQ_M7_INLINE uint32_t mpq_m7_spread(uint32_t x, uint32_t bits) {
    return x | x << (16u - bits);
}

MPQ_M7_INLINE uint32_t mpq_m7_code_pair(uint32_t spread, uint32_t bits, uint32_t q) {
    return (spread >> (2u * bits * q)) & (bits == 4u ? 0x000F000Fu : 0x00030003u);
}

/* `bytes` bytes of 4- or 2-bit codes into dst (bits a constant after inlining), a pair of codes at
 * a time (mpq_m7_spread). */
MPQ_M7_INLINE void mpq_m7_unpack_bytes(const uint8_t *row, uint32_t bytes, uint32_t bits, uint32_t h, uint32_t k,
                                       int16_t *dst) {
    for (uint32_t i = 0; i < bytes; ++i, dst += 8u / bits) {
        const uint32_t u = mpq_m7_spread(row[i], bits);
#pragma GCC unroll 2
        for (uint32_t q = 0; q < 4u / bits; ++q) {
            mpq_m7_put(dst + 2u * q, mpq_m7_decode(mpq_m7_code_pair(u, bits, q), h, k));
        }
    }
}

MPQ_M7_INLINE void mpq_m7_unpack_at(const uint8_t *row, uint32_t n, uint32_t bits, int32_t half, int32_t offset,
                                    int16_t *dst) {
    const uint32_t per_word = 32u / bits, per_byte = 8u / bits;
    const uint32_t words = n / per_word;
    const uint32_t h = mpq_pair(half, half), k = mpq_pair(offset - half, offset - half);
    for (uint32_t i = 0; i < words; ++i, row += 4, dst += per_word) {
        mpq_m7_unpack_word(mpq_m7_load_word(row), bits, h, k, dst);
    }
    uint32_t rest = n - words * per_word;
    if (bits < 8u) { /* the last word's whole bytes, then the codes of a last partial byte */
        const uint32_t bytes = rest / per_byte;
        mpq_m7_unpack_bytes(row, bytes, bits, h, k, dst);
        row += bytes;
        dst += bytes * per_byte;
        rest -= bytes * per_byte;
    }
    mpq_unpack_row_at(row, rest, bits, half, offset, dst);
}

/* mpq_unpack_row(), a word (4 to 16 values) at a time. */
static inline void mpq_m7_unpack(const uint8_t *row, uint32_t n, uint32_t bits, int is_signed, int32_t offset,
                                 int16_t *dst) {
    MPQ_UNPACK_BY_BITS(mpq_m7_unpack_at, row, n, bits, is_signed, offset, dst);
}

/* A row of unsigned activations, in_offset added: values in [-255, 255]. One out-of-line copy
 * (mpq_gemm_m7.c) for the kernels whose rows are long or rare; the engines' per-pixel loops
 * inline mpq_m7_unpack(). */
void mpq_m7_unpack_activations(const uint8_t *row, uint32_t n, uint32_t bits, int32_t in_offset, int16_t *dst);

/* A row of signed weights: values in [-128, 127]. One out-of-line copy (mpq_gemm_m7.c): a layer
 * unpacks each weight row once (per chunk or block). */
void mpq_m7_unpack_weights(const uint8_t *row, uint32_t n, uint32_t bits, int16_t *dst);

/* ---- the matrix engine: y[pixel][o] = requant(bias[o] + sum_k w[o][k] * col[pixel][k]) ---- */

/* Length of an unpacked column or weight row: k values rounded up to a multiple of 4, zero-padded,
 * so the inner loop always takes two SMLAD pairs at a time. */
static inline uint32_t mpq_m7_padded_k(uint32_t k) {
    return (k + 3u) & ~3u;
}

/* Output channels whose weights are unpacked at once: as many as fit in the work buffer (less its
 * first reserved_bytes) beside the columns, at most cout rounded up to even; below 2 the layer does
 * not fit (mpq_m7_gemm_fits). */
static inline uint32_t mpq_m7_chunk_channels_beside(uint32_t k, uint32_t cout, uint32_t reserved_bytes) {
    const uint32_t kp = mpq_m7_padded_k(k);
    const uint32_t halfwords = (MPQ_M7_WORK_BYTES - reserved_bytes) / 2u;
    const uint32_t all = (cout + 1u) & ~1u;
    if (kp == 0u) {
        return all;
    }
    if (4u * kp >= halfwords) {
        return 0u;
    }
    const uint32_t fit = ((halfwords - 4u * kp) / kp) & ~1u;
    return fit < all ? fit : all;
}

/* ... with the whole work buffer for the engine. */
static inline uint32_t mpq_m7_chunk_channels(uint32_t k, uint32_t cout) {
    return mpq_m7_chunk_channels_beside(k, cout, 0u);
}

/* Work buffer of the engine, all int16 [padded k] rows: two rows to unpack into, the two im2col
 * columns interleaved, and one chunk of weight rows (interleaved two by two). */
static inline int mpq_m7_gemm_fits(uint32_t k, uint32_t cout) {
    return mpq_m7_chunk_channels(k, cout) >= 2u;
}

/* Writes the k unpacked input values (in_offset added) of one output pixel into col. */
typedef void (*mpq_m7_im2col_fn)(const void *layer, uint32_t pixel, int16_t *col);

/* Writes the columns of output pixels pixel and pixel + 1 (pixel twice when !pair) straight into
 * the engine's interleaved layout: word j of the first, word j of the second, for kp words each. */
typedef void (*mpq_m7_columns_fn)(const void *layer, uint32_t pixel, int pair, int16_t *cols);

/* A layer as the engine sees it: `pixels` output pixels, each a dot product of k = taps * cin values
 * with every output channel. Weights are `taps` packed rows of cin values per output channel
 * ([o][tap][cin], rows of w_row bytes), exactly the packed layout of conv2d and fully connected.
 * The engine leaves the first reserved_bytes (a multiple of 4) of the work buffer to im2col. With
 * `columns` (else NULL) the engine takes a pixel pair's interleaved columns from it, not im2col. */
typedef struct {
    uint32_t pixels, taps, cin;
    const uint8_t *w;
    uint32_t w_bits;
    mpq_m7_im2col_fn im2col;
    const void *layer;
    uint32_t reserved_bytes;
    mpq_m7_columns_fn columns;
} mpq_m7_gemm_t;

/* Runs the engine into y (channels c0 .. c0 + c - 1 of rows of mpq_row_channels(out) values at out->bits,
 * out an output-channel window or whole rows), in mpq_m7_work; the layer must fit
 * (mpq_m7_gemm_fits). */
void mpq_m7_gemm(const mpq_m7_gemm_t *g, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y);

/* A 1x1 window without padding as the engine's im2col sees it: output pixel p takes input pixel
 * (p / out_w * sh, p % out_w * sw), p itself at stride 1. */
typedef struct {
    const mpq_dims_t *in;
    const uint8_t *x;
    int32_t in_offset;
    uint32_t out_w, sh, sw;
} mpq_m7_pointwise_layer_t;

/* Runs the engine over such a window of `pixels` output pixels (mpq_pointwise_m7.c, which runs
 * stride 1; mpq_conv2d_m7.c the others); the layer must fit (mpq_m7_gemm_fits). */
void mpq_m7_pointwise_gemm(const mpq_m7_pointwise_layer_t *l, uint32_t pixels, const uint8_t *w, uint32_t w_bits,
                           const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y);

/* ---- the weight-streaming engine (mpq_matvec_m7.c): y[p][o] = requant(bias[o] + w[o] . x[p]) ---- */

/* `pixels` input pixels of cin values at in_bits (rows of x), in_offset added, against weights
 * [cout][cin] packed along cin at w_bits: the shape of pointwise (one row per pixel) and fully
 * connected (one pixel). */
typedef struct {
    uint32_t pixels, cin;
    const uint8_t *x;
    uint32_t in_bits;
    int32_t in_offset;
    const uint8_t *w;
    uint32_t w_bits;
} mpq_m7_matvec_t;

/* A pointwise layer whose matrix-engine chunks would hold fewer output channels than this runs the
 * streaming engine: the matrix engine re-unpacks each pixel per chunk, which costs more than
 * widening the weights in registers when chunks are small (measured at 8-bit inputs: at
 * 7x7x512 -> 512, chunks of 20, the matrix engine is the faster at every weight width; at
 * 7x7x1024 -> 1024, chunks of 8, the streaming one at 2- and 8-bit weights). 2-bit input pixels
 * cost about twice as much to unpack, so they stream below twice the chunk, except under 4-bit
 * weights, whose two-pixel streaming loop has no written-out copy (at 7x7x512 -> 512, 2/4/8:
 * 1.65 instructions/MAC streamed, 1.32 in the matrix engine). A layer of fewer than
 * MPQ_M7_STREAM_PIXELS pixels streams too (too few to amortize unpacking every weight). */
#define MPQ_M7_STREAM_BELOW 12u
#define MPQ_M7_STREAM_BELOW_2BIT_INPUT 24u
#define MPQ_M7_STREAM_PIXELS 16u

/* cin rounded up to whole weight words (4, 8 or 16 values). */
static inline uint32_t mpq_m7_matvec_padded(uint32_t cin, uint32_t w_bits) {
    const uint32_t per_word = 32u / w_bits;
    return (cin + per_word - 1u) / per_word * per_word;
}

/* Output channels whose sums the engine keeps (per pixel) before it requantizes and stores them. */
#define MPQ_M7_MATVEC_CHUNK 64u

/* Columns the engine unpacks at once for a layer of `pixels` pixels (one or two). */
static inline uint32_t mpq_m7_matvec_columns(uint32_t pixels) {
    return pixels < 2u ? 1u : 2u;
}

/* Work buffer: one unpacked pixel and the columns, int16 [padded] each, then the sums of a chunk
 * of output channels of each column, int32 [columns][MPQ_M7_MATVEC_CHUNK]. */
static inline int mpq_m7_matvec_fits(uint32_t cin, uint32_t w_bits, uint32_t pixels) {
    const uint32_t columns = mpq_m7_matvec_columns(pixels);
    return (1u + columns) * mpq_m7_matvec_padded(cin, w_bits) * (uint32_t)sizeof(int16_t) +
               columns * MPQ_M7_MATVEC_CHUNK * (uint32_t)sizeof(int32_t) <= MPQ_M7_WORK_BYTES;
}

/* Runs the engine into y (channels c0 .. c0 + c - 1 of rows of mpq_row_channels(out) values at out->bits,
 * out an output-channel window or whole rows); the layer must fit. */
void mpq_m7_matvec(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y);

/* The Cortex-M7 kernels' bodies (mpq_internal.h); the average pool of a window that is the whole
 * map runs the global average pool's (mpq_avg_pool_m7.c). */
mpq_conv2d_body_fn mpq_m7_conv2d;
mpq_pointwise_body_fn mpq_m7_pointwise;
mpq_depthwise_conv2d_body_fn mpq_m7_depthwise_conv2d;
mpq_fully_connected_body_fn mpq_m7_fully_connected;
mpq_global_avg_pool_body_fn mpq_m7_global_avg_pool;
mpq_avg_pool_body_fn mpq_m7_avg_pool;
mpq_max_pool_body_fn mpq_m7_max_pool;
mpq_add_body_fn mpq_m7_add;

/* depthwise: channels (rounded up to even) in blocks as large as the work buffer holds, stored in
 * pairs (one word = two channels). For one block of bc channels: the input row each ring slot
 * holds and the ring offset of each window row (int32 [2][kh]), one unpacked pixel (int16 [bc]),
 * weights [bc/2][kh][kw] words, a ring of kh + 1 input rows [kh + 1][bc/2][wp] words, the last
 * one all zero, with wp = (out->w - 1) * sw + kw, and a flag per pair (uint8 [bc/2]). */
static inline uint32_t mpq_depthwise_m7_channels(uint32_t c) {
    return (c + 1u) & ~1u;
}

static inline uint32_t mpq_depthwise_m7_row_width(const mpq_window_t *win, const mpq_dims_t *out) {
    return out->w == 0u ? 0u : ((uint32_t)out->w - 1u) * win->sw + win->kw;
}

/* Channels per block: all of them if they fit, else a multiple of 4 (so every block starts on a
 * byte of a packed row at any bits); 0 when not even 4 fit (the layer runs the _ref kernel). */
static inline uint32_t mpq_depthwise_m7_block_channels(const mpq_dims_t *in, const mpq_window_t *win,
                                                       const mpq_dims_t *out) {
    const uint32_t cp = mpq_depthwise_m7_channels(in->c);
    const uint32_t taps = (uint32_t)win->kh * win->kw;
    const uint32_t per_channel = (1u + taps + ((uint32_t)win->kh + 1u) * mpq_depthwise_m7_row_width(win, out)) *
                                     (uint32_t)sizeof(int16_t) + 1u; /* + a byte per pair, rounded up */
    const uint32_t fixed = 2u * win->kh * (uint32_t)sizeof(int32_t);
    const uint32_t fit = MPQ_M7_WORK_BYTES > fixed ? (MPQ_M7_WORK_BYTES - fixed) / per_channel : 0u;
    return cp <= fit ? cp : fit & ~3u;
}

#endif /* MPQ_M7_H */
