/*
 * Cortex-M7 depthwise conv2d, any bits, sizes, strides and padding
 * (docs/integer-arithmetic.md, "depthwise_conv2d").
 *
 * Channels go in blocks as large as the work buffer holds (mpq_m7.h). Within a block, operands
 * are unpacked to int16 and stored channel-pair major, so the taps of one channel
 * pair are consecutive words: weights [cp/2][kh][kw] words, and a ring of kh input rows
 * [slot][cp/2][wp] words (word = the two channels of a pair at one column) with zero columns for
 * the left/right padding; a further all-zero row stands for the rows of the top/bottom padding
 * (padding is the real value zero). Each input row is unpacked once however many output rows
 * read it, a packed word at a time straight into the ring when the block's channels fill whole
 * words; the ring's padding columns and zero row are cleared once per channel block (no unpacked
 * row writes them). Two horizontally adjacent output pixels of one channel pair accumulate over
 * the whole window in registers: per tap, one weight word and an input word of each pixel feed SMLABB and
 * SMLATT; the 3x3 windows of stride 1 and 2 are fully unrolled and their two pixels share input loads
 * (full channel pairs only: the last pair of an odd channel count runs the generic window).
 * Scratch: as mpq_depthwise_conv2d_ref (the work happens in mpq_m7_work, mpq_m7.h); a layer whose
 * rows are too long for the work buffer runs mpq_depthwise_conv2d_ref.
 */
#include "mpq_m7.h"

/* Columns 0 .. n - 1 of one input row (x_row bytes a pixel, cb channels from src, cb a multiple of
 * 32 / bits, bits a constant) unpacked straight into ring columns col, col + 1, ..: each packed word
 * decodes in registers and its channel pairs go to col[q * wp], without an intermediate pixel. */
MPQ_M7_INLINE void unpack_columns(const uint8_t *src, uint32_t x_row, uint32_t n, uint32_t cb, uint32_t bits,
                                  int32_t in_offset, uint32_t wp, mpq_word_t *col) {
    const uint32_t per_word = 32u / bits, words = cb / per_word;
    const uint32_t k = mpq_pair(in_offset, in_offset);
    for (uint32_t ix = 0; ix < n; ++ix, src += x_row, ++col) {
        const uint8_t *p = src;
        mpq_word_t *dst = col;
        for (uint32_t i = 0; i < words; ++i, p += 4) {
            const uint32_t v = mpq_m7_load_word(p);
            if (bits == 2u) { /* each half word's four pairs straight into the ring (mpq_m7_spread) */
#pragma GCC unroll 2
                for (uint32_t half = 0; half < 2u; ++half) {
                    const uint32_t u = mpq_m7_spread(half == 0u ? (v & 0xFFFFu) : v >> 16, 2u);
#pragma GCC unroll 4
                    for (uint32_t q = 0; q < 4u; ++q, dst += wp) {
                        *dst = mpq_m7_decode(mpq_m7_code_pair(u, 2u, q), 0u, k);
                    }
                }
                continue;
            }
            union {
                int16_t h[16];
                uint32_t w[8];
            } u;
            mpq_m7_unpack_word(v, bits, 0u, k, u.h);
#pragma GCC unroll 8
            for (uint32_t q = 0; q < per_word / 2u; ++q, dst += wp) {
                *dst = u.w[q];
            }
        }
    }
}

/* The ring offset (words) of the slot holding input row iy (channels ch0 .. ch0 + cb - 1, in
 * `pairs` pairs), unpacked into it first if it holds another row; xs has room for 2 * pairs int16. */
static uint32_t ring_row(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, uint32_t wp,
                         uint32_t ch0, uint32_t cb, uint32_t pairs, int32_t *tags, mpq_word_t *ring, int16_t *xs,
                         uint32_t iy) {
    const uint32_t slot = iy % win->kh;
    mpq_word_t *row = ring + slot * pairs * wp;
    if (tags[slot] != (int32_t)iy) {
        const uint32_t x_row = mpq_row_bytes(in->c, in->bits);
        const uint32_t ix_end = wp - win->pad_left < in->w ? wp - win->pad_left : in->w;
        const mpq_word_t *pixel = (const mpq_word_t *)xs;
        xs[2u * pairs - 1u] = 0; /* the padding channel of an odd channel count */
        const uint8_t *src = x + iy * in->w * x_row + ch0 * in->bits / 8u;
        mpq_word_t *first = row + win->pad_left;
        if (in->bits == 8u && cb % 4u == 0u) {
            unpack_columns(src, x_row, ix_end, cb, 8u, win->in_offset, wp, first);
        } else if (in->bits == 4u && cb % 8u == 0u) {
            unpack_columns(src, x_row, ix_end, cb, 4u, win->in_offset, wp, first);
        } else if (in->bits == 2u && cb % 16u == 0u) {
            unpack_columns(src, x_row, ix_end, cb, 2u, win->in_offset, wp, first);
        }
        for (uint32_t ix = 0; ix < ix_end && cb % (32u / in->bits) != 0u; ++ix) {
            mpq_m7_unpack_activations(x + (iy * in->w + ix) * x_row + ch0 * in->bits / 8u, cb, in->bits,
                                      win->in_offset, xs);
            mpq_word_t *col = row + ix + win->pad_left;
            for (uint32_t j = 0; j < pairs; ++j) {
                col[j * wp] = pixel[j];
            }
        }
        tags[slot] = (int32_t)iy;
    }
    return slot * pairs * wp;
}

/* Accumulators of two output pixels (0, 1) x two channels (lo, hi): a[2*p + i]. */
typedef struct {
    int32_t a[4];
} acc_2x2_t;

MPQ_M7_INLINE void mac_pixel(uint32_t x, uint32_t w, int32_t *lo, int32_t *hi) {
    *lo = mpq_smlabb(x, w, *lo);
    *hi = mpq_smlatt(x, w, *hi);
}

/* 3x3 window, stride 1, two pixels: window row ky of pixel 0 starts at r0, r1, r2, w points at the 9
 * weights. The rows are scalars (not an array) so that they stay in registers along the row. */
MPQ_M7_INLINE void window_3x3_s1(const mpq_word_t *r0, const mpq_word_t *r1, const mpq_word_t *r2,
                                 const mpq_word_t *w, acc_2x2_t *acc) {
    const mpq_word_t *const rows[3] = {r0, r1, r2};
#pragma GCC unroll 3
    for (uint32_t ky = 0; ky < 3u; ++ky) {
        const mpq_word_t *r = rows[ky];
        const uint32_t x0 = r[0], x1 = r[1], x2 = r[2], x3 = r[3];
        const uint32_t w0 = w[3u * ky], w1 = w[3u * ky + 1u], w2 = w[3u * ky + 2u];
        mac_pixel(x0, w0, &acc->a[0], &acc->a[1]);
        mac_pixel(x1, w1, &acc->a[0], &acc->a[1]);
        mac_pixel(x2, w2, &acc->a[0], &acc->a[1]);
        mac_pixel(x1, w0, &acc->a[2], &acc->a[3]);
        mac_pixel(x2, w1, &acc->a[2], &acc->a[3]);
        mac_pixel(x3, w2, &acc->a[2], &acc->a[3]);
    }
}

/* 3x3 window, stride 2, two pixels: as window_3x3_s1, the second pixel two columns on, so the
 * pixels share the middle column's loads. */
MPQ_M7_INLINE void window_3x3_s2(const mpq_word_t *r0, const mpq_word_t *r1, const mpq_word_t *r2,
                                 const mpq_word_t *w, acc_2x2_t *acc) {
    const mpq_word_t *const rows[3] = {r0, r1, r2};
#pragma GCC unroll 3
    for (uint32_t ky = 0; ky < 3u; ++ky) {
        const mpq_word_t *r = rows[ky];
        const uint32_t x0 = r[0], x1 = r[1], x2 = r[2], x3 = r[3], x4 = r[4];
        const uint32_t w0 = w[3u * ky], w1 = w[3u * ky + 1u], w2 = w[3u * ky + 2u];
        mac_pixel(x0, w0, &acc->a[0], &acc->a[1]);
        mac_pixel(x1, w1, &acc->a[0], &acc->a[1]);
        mac_pixel(x2, w2, &acc->a[0], &acc->a[1]);
        mac_pixel(x2, w0, &acc->a[2], &acc->a[3]);
        mac_pixel(x3, w1, &acc->a[2], &acc->a[3]);
        mac_pixel(x4, w2, &acc->a[2], &acc->a[3]);
    }
}

/* 3x3 window, one pixel (the last of an odd row): window row ky starts at r0, r1, r2. */
MPQ_M7_INLINE void window_3x3_one(const mpq_word_t *r0, const mpq_word_t *r1, const mpq_word_t *r2,
                                  const mpq_word_t *w, acc_2x2_t *acc) {
    const mpq_word_t *const rows[3] = {r0, r1, r2};
#pragma GCC unroll 3
    for (uint32_t ky = 0; ky < 3u; ++ky) {
        const mpq_word_t *r = rows[ky];
        mac_pixel(r[0], w[3u * ky], &acc->a[0], &acc->a[1]);
        mac_pixel(r[1], w[3u * ky + 1u], &acc->a[0], &acc->a[1]);
        mac_pixel(r[2], w[3u * ky + 2u], &acc->a[0], &acc->a[1]);
    }
}

/* Any window: `pixels` (1 or 2) pixels, the second `sw` words after the first; window row ky
 * starts at ring + at + row_at[ky]. */
MPQ_M7_INLINE void window_any(const mpq_word_t *ring, const uint32_t *row_at, uint32_t at, const mpq_word_t *w,
                              uint32_t kh, uint32_t kw, uint32_t sw, uint32_t pixels, acc_2x2_t *acc) {
    for (uint32_t ky = 0; ky < kh; ++ky) {
        const mpq_word_t *r = ring + row_at[ky] + at;
        for (uint32_t kx = 0; kx < kw; ++kx) {
            const uint32_t wv = w[ky * kw + kx];
            mac_pixel(r[kx], wv, &acc->a[0], &acc->a[1]);
            if (pixels == 2u) {
                mac_pixel(r[kx + sw], wv, &acc->a[2], &acc->a[3]);
            }
        }
    }
}

/* The ring and weights of one output row and channel block, as channel_pair_row() reads them. */
typedef struct {
    uint32_t pair0; /* the block's first channel pair */
    const mpq_word_t *ring;
    const uint32_t *row_at; /* ring offset of each window row */
    const mpq_word_t *wts;
    const mpq_window_t *win;
    uint32_t wp, c, out_w, y_row;
    const mpq_requant_t *rq;
    const uint8_t *bounded; /* per pair of the block: both channels pass mpq_m7_bounded_ok() */
} dw_row_t;

/* The generic window's 4-, 2- and 32-bit outputs are requantized out of line (store_generic()), so
 * it compiles twice: for 8-bit outputs (MPQ_M7_RQ_SMALL inline) and for the others. */
#define DW_RQ_OUT_OF_LINE (-1)

/* Output i of a row of the generic window, any shift and output bits. */
__attribute__((noinline)) static void store_generic(uint8_t *y, uint32_t i, uint32_t bits, int32_t acc, int32_t mult,
                                                    int32_t shift) {
    switch (bits) {
    case 8u:
        mpq_m7_store_as(y, i, 8u, acc, mult, shift, MPQ_M7_RQ_SMALL);
        break;
    case 4u:
        mpq_m7_store_as(y, i, 4u, acc, mult, shift, MPQ_M7_RQ_SMALL);
        break;
    case 2u:
        mpq_m7_store_as(y, i, 2u, acc, mult, shift, MPQ_M7_RQ_SMALL);
        break;
    default:
        mpq_m7_store_as(y, i, 32u, acc, 0, 1, MPQ_M7_RQ_NARROW);
        break;
    }
}

/* Output i of a row requantized with mode (a constant after inlining); MPQ_M7_RQ_BOUNDED takes the
 * channel's constants k (mpq_m7_requantize_bounded) instead of its shift. */
MPQ_M7_INLINE void store_output(uint8_t *y, uint32_t i, uint32_t bits, int32_t acc, int32_t mult, int32_t shift,
                                mpq_m7_bounded_t k, int mode) {
    if (mode == DW_RQ_OUT_OF_LINE) {
        store_generic(y, i, bits, acc, mult, shift);
    } else if (mode == MPQ_M7_RQ_BOUNDED) {
        mpq_m7_put_value(y, i, bits, (uint32_t)mpq_m7_requantize_bounded(acc, mult, k, bits));
    } else {
        mpq_m7_store_as(y, i, bits, acc, mult, shift, mode);
    }
}

/* One output of the fast windows, mode (a constant after inlining) NARROW or BOUNDED. */
MPQ_M7_INLINE uint32_t fast_value(int32_t acc, int32_t mult, int32_t shift, mpq_m7_bounded_t k, int mode,
                                  uint32_t bits) {
    return (uint32_t)(mode == MPQ_M7_RQ_NARROW ? mpq_m7_requantize_narrow(acc, mult, shift, bits)
                                               : mpq_m7_requantize_bounded(acc, mult, k, bits));
}

/* Channels ch, ch + 1 (ch even) of one pixel of a cleared row at 4 or 2 bits, requantized without a
 * branch (mode NARROW or BOUNDED, as the fast windows take): at 4 bits the pair's byte stored
 * whole; at 2 bits the pair is the low (`high` 0) or high nibble of a byte, a constant: the low
 * nibble is stored as the byte (the high one comes after it), the high one OR-ed in. */
MPQ_M7_INLINE void store_pair(uint8_t *y, uint32_t ch, uint32_t bits, uint32_t high, int32_t acc0, int32_t acc1,
                              int32_t m0, int32_t s0, mpq_m7_bounded_t k0, int32_t m1, int32_t s1,
                              mpq_m7_bounded_t k1, int mode) {
    const uint32_t v = fast_value(acc0, m0, s0, k0, mode, bits) | fast_value(acc1, m1, s1, k1, mode, bits) << bits;
    if (bits == 4u) {
        y[ch >> 1] = (uint8_t)v;
    } else if (high == 0u) {
        y[ch >> 2] = (uint8_t)v;
    } else {
        y[ch >> 2] |= (uint8_t)(v << 4);
    }
}

/* Channel pair j of the block (channels ch, ch + 1) of every pixel of one output row (y_oy), out_bits
 * a constant after inlining: the channels' requantization parameters stay in registers along the row.
 * `high` (a constant): at 2-bit outputs, whether the pair is the high nibble of its bytes (store_pair). */
MPQ_M7_INLINE void channel_pair_row(const dw_row_t *r, uint32_t j, uint32_t out_bits, int mode, uint32_t fast,
                                    uint32_t high, uint8_t *y_oy) {
    const uint32_t kh = r->win->kh, kw = r->win->kw, sw = r->win->sw;
    const uint32_t ch = 2u * (r->pair0 + j);
    const int second = fast != 0u || ch + 1u < r->c; /* block_row() gives the fast windows full pairs */
    const int32_t b0 = r->rq->bias[ch], b1 = second ? r->rq->bias[ch + 1u] : 0;
    const int32_t m0 = out_bits == 32u ? 0 : r->rq->mult[ch], s0 = out_bits == 32u ? 1 : r->rq->shift[ch];
    const int32_t m1 = out_bits == 32u || !second ? 0 : r->rq->mult[ch + 1u];
    const int32_t s1 = out_bits == 32u || !second ? 1 : r->rq->shift[ch + 1u];
    /* the fast windows' 4- and 2-bit outputs store a pair at once (8-bit ones are faster a byte each) */
    const int pair = fast != 0u && (out_bits == 4u || out_bits == 2u);
    const int bounded = mode == MPQ_M7_RQ_BOUNDED; /* then block_row() checked both channels are */
    const mpq_m7_bounded_t none = {0u, 0u, 0u};
    const mpq_m7_bounded_t k0 = bounded ? mpq_m7_bounded_of(s0) : none;
    const mpq_m7_bounded_t k1 = bounded && second ? mpq_m7_bounded_of(s1) : none;
    const mpq_word_t *wj = r->wts + j * kh * kw;
    const uint32_t out_w = r->out_w, y_row = r->y_row, wp = r->wp;
    const mpq_word_t *const ring = r->ring, *const first = ring + j * wp;
    uint8_t *yp = y_oy;
    uint32_t ox = 0;
    /* the fast windows' rows, advanced along the output row */
    const mpq_word_t *r0 = first + (fast ? r->row_at[0] : 0u);
    const mpq_word_t *r1 = first + (fast ? r->row_at[1] : 0u);
    const mpq_word_t *r2 = first + (fast ? r->row_at[2] : 0u);
    for (; ox + 1u < out_w; ox += 2u, yp += 2u * y_row) {
        acc_2x2_t acc = {{b0, b1, b0, b1}};
        if (fast) {
            if (fast == 1u) {
                window_3x3_s1(r0, r1, r2, wj, &acc);
            } else {
                window_3x3_s2(r0, r1, r2, wj, &acc);
            }
            r0 += 2u * fast;
            r1 += 2u * fast;
            r2 += 2u * fast;
        } else {
            window_any(ring, r->row_at, j * wp + ox * sw, wj, kh, kw, sw, 2u, &acc);
        }
        if (pair) {
            store_pair(yp, ch, out_bits, high, acc.a[0], acc.a[1], m0, s0, k0, m1, s1, k1, mode);
            store_pair(yp + y_row, ch, out_bits, high, acc.a[2], acc.a[3], m0, s0, k0, m1, s1, k1, mode);
            continue;
        }
        store_output(yp, ch, out_bits, acc.a[0], m0, s0, k0, mode);
        store_output(yp + y_row, ch, out_bits, acc.a[2], m0, s0, k0, mode);
        if (second) {
            store_output(yp, ch + 1u, out_bits, acc.a[1], m1, s1, k1, mode);
            store_output(yp + y_row, ch + 1u, out_bits, acc.a[3], m1, s1, k1, mode);
        }
    }
    if (ox < out_w) {
        acc_2x2_t acc = {{b0, b1, b0, b1}};
        if (fast) {
            window_3x3_one(r0, r1, r2, wj, &acc);
        } else {
            window_any(ring, r->row_at, j * wp + ox * sw, wj, kh, kw, sw, 1u, &acc);
        }
        if (pair) {
            store_pair(yp, ch, out_bits, high, acc.a[0], acc.a[1], m0, s0, k0, m1, s1, k1, mode);
            return;
        }
        store_output(yp, ch, out_bits, acc.a[0], m0, s0, k0, mode);
        if (second) {
            store_output(yp, ch + 1u, out_bits, acc.a[1], m1, s1, k1, mode);
        }
    }
}

static void block_row_any(const dw_row_t *r, uint32_t j0, uint32_t nb, uint32_t ch0, uint32_t out_bits,
                          uint8_t *y_oy);

/* Channel pairs j0 .. nb - 1 of the block (nb pairs from channel ch0) along one output row; `fast`
 * (a constant) is the stride of an unrolled 3x3 window (1 or 2), or 0 for any other window. The
 * fast windows take only pairs of two channels (their loops then hold no test for the second
 * channel): the last pair of an odd channel count goes to block_row_any(). */
MPQ_M7_INLINE void block_row(const dw_row_t *r, uint32_t j0, uint32_t nb, uint32_t ch0, uint32_t out_bits,
                             uint32_t fast, uint8_t *y_oy) {
    const uint32_t full = fast != 0u && ch0 + 2u * nb > r->c ? nb - 1u : nb;
    /* the fast windows take the short requantization of both channels' shifts (NARROW when both
     * exceed 32, else BOUNDED when both channels' accumulators are bounded: mpq_m7_bounded_ok); a
     * pair that takes neither goes to the generic window, which takes any shift */
    for (uint32_t j = j0; j < full; ++j) {
        if (fast == 0u) {
            out_bits == 8u ? channel_pair_row(r, j, 8u, MPQ_M7_RQ_SMALL, 0u, 0u, y_oy)
                           : channel_pair_row(r, j, out_bits, DW_RQ_OUT_OF_LINE, 0u, 0u, y_oy);
            continue;
        }
        const uint32_t ch = ch0 + 2u * j;
        const int narrow = out_bits == 32u || (r->rq->shift[ch] > 32 && r->rq->shift[ch + 1u] > 32);
        if (!narrow && !r->bounded[j]) {
            block_row_any(r, j, j + 1u, ch0, out_bits, y_oy);
            continue;
        }
        switch (out_bits) {
        case 8u:
            narrow ? channel_pair_row(r, j, 8u, MPQ_M7_RQ_NARROW, fast, 0u, y_oy)
                   : channel_pair_row(r, j, 8u, MPQ_M7_RQ_BOUNDED, fast, 0u, y_oy);
            break;
        case 4u:
            narrow ? channel_pair_row(r, j, 4u, MPQ_M7_RQ_NARROW, fast, 0u, y_oy)
                   : channel_pair_row(r, j, 4u, MPQ_M7_RQ_BOUNDED, fast, 0u, y_oy);
            break;
        case 2u: /* pairs alternate between a byte's low and high nibble */
            if ((ch & 2u) == 0u) {
                narrow ? channel_pair_row(r, j, 2u, MPQ_M7_RQ_NARROW, fast, 0u, y_oy)
                       : channel_pair_row(r, j, 2u, MPQ_M7_RQ_BOUNDED, fast, 0u, y_oy);
            } else {
                narrow ? channel_pair_row(r, j, 2u, MPQ_M7_RQ_NARROW, fast, 1u, y_oy)
                       : channel_pair_row(r, j, 2u, MPQ_M7_RQ_BOUNDED, fast, 1u, y_oy);
            }
            break;
        default:
            channel_pair_row(r, j, 32u, MPQ_M7_RQ_NARROW, fast, 0u, y_oy);
            break;
        }
    }
    if (full < nb) {
        block_row_any(r, full, nb, ch0, out_bits, y_oy);
    }
}

static void block_row_3x3_s1(const dw_row_t *r, uint32_t nb, uint32_t ch0, uint32_t out_bits, uint8_t *y_oy) {
    block_row(r, 0u, nb, ch0, out_bits, 1u, y_oy);
}

static void block_row_3x3_s2(const dw_row_t *r, uint32_t nb, uint32_t ch0, uint32_t out_bits, uint8_t *y_oy) {
    block_row(r, 0u, nb, ch0, out_bits, 2u, y_oy);
}

static void block_row_any(const dw_row_t *r, uint32_t j0, uint32_t nb, uint32_t ch0, uint32_t out_bits,
                          uint8_t *y_oy) {
    block_row(r, j0, nb, ch0, out_bits, 0u, y_oy);
}

/* bounded[j]: whether both channels of pair j of a block (from channel ch0) pass mpq_m7_bounded_ok()
 * with the bound |bias| + (2^in_bits - 1) * sum |w| over the taps (|x + in_offset| < 2^in_bits);
 * a channel whose shift exceeds 32 passes without its sum. */
static void mark_bounded(const mpq_word_t *wts, uint32_t taps, uint32_t nb, uint32_t ch0, uint32_t c,
                         uint32_t in_bits, const mpq_requant_t *rq, uint8_t *bounded) {
    const uint64_t x_max = (1u << in_bits) - 1u;
    for (uint32_t j = 0; j < nb; ++j) {
        uint32_t ok = 1u;
        for (uint32_t lane = 0; lane < 2u && ch0 + 2u * j + lane < c; ++lane) {
            const uint32_t ch = ch0 + 2u * j + lane;
            if (rq->shift[ch] > 32) {
                continue;
            }
            uint32_t sum = 0u; /* at most 128 a tap */
            for (uint32_t t = 0; t < taps; ++t) {
                const int32_t v = (int16_t)(uint16_t)(wts[j * taps + t] >> (16u * lane));
                sum += (uint32_t)(v < 0 ? -v : v);
            }
            const int64_t b = rq->bias[ch];
            ok &= (uint32_t)mpq_m7_bounded_ok((uint64_t)(b < 0 ? -b : b) + x_max * sum, rq->shift[ch]);
        }
        bounded[j] = (uint8_t)ok;
    }
}

void mpq_m7_depthwise_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                             const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                             const mpq_dims_t *out, void *y, void *scratch) {
    const uint32_t block = mpq_depthwise_m7_block_channels(in, win, out) / 2u; /* pairs per block */
    if (block == 0u) {
        mpq_ref_depthwise_conv2d(in, x, win, w, w_bits, rq, out, y, scratch);
        return;
    }
    const uint32_t c = in->c;
    const uint32_t pairs = mpq_depthwise_m7_channels(c) / 2u;
    const uint32_t kh = win->kh, kw = win->kw;
    const uint32_t taps = kh * kw;
    const uint32_t wp = mpq_depthwise_m7_row_width(win, out);
    const uint32_t w_row = mpq_row_bytes(c, w_bits);
    const uint32_t y_row = mpq_row_bytes(c, out->bits);
    int32_t *tags = (int32_t *)(void *)mpq_m7_work;    /* [kh]: input row in each ring slot */
    uint32_t *row_at = (uint32_t *)(tags + kh);        /* [kh]: ring offset of window row ky */
    int16_t *xs = (int16_t *)(row_at + kh);            /* [2 * block]: one unpacked pixel or tap */
    mpq_word_t *wts = (mpq_word_t *)(xs + 2u * block); /* [block][kh][kw] */
    mpq_word_t *ring = wts + block * taps;             /* [kh + 1][block][wp], the last slot zero */
    uint8_t *bounded = (uint8_t *)(ring + (kh + 1u) * block * wp); /* [block] */

    if (out->bits < 8u) { /* 8- and 32-bit values are stored whole (mpq_m7_store_as) */
        memset(y, 0, (uint32_t)out->h * out->w * y_row);
    }
    for (uint32_t pair0 = 0; pair0 < pairs; pair0 += block) {
        const uint32_t nb = pairs - pair0 < block ? pairs - pair0 : block; /* pairs in this block */
        const uint32_t ch0 = 2u * pair0;                                   /* 0 or a multiple of 4 */
        const uint32_t cb = c - ch0 < 2u * nb ? c - ch0 : 2u * nb;         /* channels in this block */
        const uint32_t zero_row = kh * nb * wp;
        const dw_row_t rows = {pair0, ring, row_at, wts, win, wp, c, out->w, y_row, rq, bounded};
        xs[2u * nb - 1u] = 0; /* the padding channel of an odd channel count */
        for (uint32_t t = 0; t < taps; ++t) {
            mpq_m7_unpack_weights(w + t * w_row + ch0 * w_bits / 8u, cb, w_bits, xs);
            for (uint32_t j = 0; j < nb; ++j) {
                wts[j * taps + t] = ((const mpq_word_t *)xs)[j];
            }
        }
        if (out->bits != 32u) {
            mark_bounded(wts, taps, nb, ch0, c, in->bits, rq, bounded);
        }
        /* the slots' padding columns and the zero row: no unpacked row ever writes them */
        memset(ring, 0, (kh + 1u) * nb * wp * sizeof(mpq_word_t));
        for (uint32_t s = 0; s < kh; ++s) {
            tags[s] = -1;
        }
        for (uint32_t oy = 0; oy < out->h; ++oy) {
            const int32_t iy0 = (int32_t)(oy * win->sh) - win->pad_top;
            uint8_t *y_oy = (uint8_t *)y + oy * out->w * y_row;
            for (uint32_t ky = 0; ky < kh; ++ky) {
                const int32_t iy = iy0 + (int32_t)ky;
                row_at[ky] = iy < 0 || iy >= (int32_t)in->h
                                 ? zero_row
                                 : ring_row(in, x, win, wp, ch0, cb, nb, tags, ring, xs, (uint32_t)iy);
            }
            if (kh == 3u && kw == 3u && win->sw == 1u) {
                block_row_3x3_s1(&rows, nb, ch0, out->bits, y_oy);
            } else if (kh == 3u && kw == 3u && win->sw == 2u) {
                block_row_3x3_s2(&rows, nb, ch0, out->bits, y_oy);
            } else {
                block_row_any(&rows, 0u, nb, ch0, out->bits, y_oy);
            }
        }
    }
}

int mpq_depthwise_conv2d_m7(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                            const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                            const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_depthwise_conv2d_check(in, x, win, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_depthwise_conv2d(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}
