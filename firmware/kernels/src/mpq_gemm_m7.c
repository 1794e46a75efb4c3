/*
 * The matrix engine of the _m7 conv2d, pointwise and fully connected kernels (mpq_m7.h).
 *
 * Weights of a chunk of output channels are unpacked to int16 once, two rows at a time, and
 * stored interleaved: word j of channel o, then word j of channel o + 1. Then, for a batch of
 * output pixels (as many as the rest of the work buffer holds), the im2col columns are unpacked
 * (in_offset added) and interleaved two pixels by two the same way (or, where the layer gives
 * `columns`, unpacked a pixel pair at a time straight into that layout), and every pair of output
 * channels takes, along the batch, 2 x 2 register blocks of dot products:
 * one column word pair and one weight word pair feed four SMLAD (8 MACs), the loads being
 * sequential so they merge into LDRD/LDM. Rows are zero-padded to a multiple of 4; an odd pixel
 * or channel count is padded with a zero column or row whose results are not written. A channel
 * pair whose requantization needs no branch (both shifts above 32, or both channels' accumulators
 * bounded: mpq_m7_bounded_ok) runs its
 * pixel pairs in a loop with no checks, its 2 x 2 results requantized and stored whole.
 */
#include "mpq_m7.h"

uint32_t mpq_m7_work[MPQ_M7_WORK_BYTES / 4u];

void mpq_m7_unpack_activations(const uint8_t *row, uint32_t n, uint32_t bits, int32_t in_offset, int16_t *dst) {
    mpq_m7_unpack(row, n, bits, 0, in_offset, dst);
}

void mpq_m7_unpack_weights(const uint8_t *row, uint32_t n, uint32_t bits, int16_t *dst) {
    mpq_m7_unpack(row, n, bits, 1, 0, dst);
}

/* dst[2j] = word j of a, dst[2j + 1] = word j of b, for the kp / 2 words of each row. */
static void interleave(const int16_t *a, const int16_t *b, uint32_t kp, mpq_word_t *dst) {
    const mpq_word_t *wa = (const mpq_word_t *)a, *wb = (const mpq_word_t *)b;
    for (uint32_t j = 0; j < kp / 2u; ++j) {
        dst[2u * j] = wa[j];
        dst[2u * j + 1u] = wb[j];
    }
}

/* The 2 x 2 block (columns p, p + 1) x (channels o, o + 1): acc[2*i + j] += dot(channel i, column j).
 * Each LDRD brings a word of both columns or of both channels. kp >= 4 (k >= 1: the argument checks),
 * so the loop tests its end only after each pass. */
MPQ_M7_INLINE void dot_2x2(const mpq_word_t *cols, const mpq_word_t *w, uint32_t kp, int32_t acc[4]) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const uint32_t *c = (const uint32_t *)cols, *v = (const uint32_t *)w;
    const uint32_t *const end = c + kp;
    do {
        uint32_t x0, x1, v0, v1;
        mpq_load2_post(&c, &x0, &x1);
        mpq_load2_post(&v, &v0, &v1);
        a00 = mpq_smlad(x0, v0, a00);
        a01 = mpq_smlad(x1, v0, a01);
        a10 = mpq_smlad(x0, v1, a10);
        a11 = mpq_smlad(x1, v1, a11);
        mpq_load2_post(&c, &x0, &x1);
        mpq_load2_post(&v, &v0, &v1);
        a00 = mpq_smlad(x0, v0, a00);
        a01 = mpq_smlad(x1, v0, a01);
        a10 = mpq_smlad(x0, v1, a10);
        a11 = mpq_smlad(x1, v1, a11);
    } while (c < end);
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* The 2 x 2 blocks of channels (o, o + 1) along the `pixels` pixels, requantized with mode (a
 * constant after inlining: MPQ_M7_RQ_NARROW when both shifts exceed 32) and stored. */
MPQ_M7_INLINE void pair_outputs(const mpq_word_t *cols, const mpq_word_t *w, uint32_t kp, uint32_t pixels, int second,
                                const int32_t bias[2], const int32_t mult[2], const int32_t shift[2], int mode,
                                uint32_t out_bits, uint8_t *y, uint32_t y_row, uint32_t at) {
    for (uint32_t p = 0; p < pixels; p += 2u, y += 2u * y_row) {
        const int pair = p + 1u < pixels;
        int32_t acc[4] = {bias[0], bias[0], bias[1], bias[1]};
        dot_2x2(cols + p / 2u * kp, w, kp, acc);
        mpq_m7_store_as(y, at, out_bits, acc[0], mult[0], shift[0], mode);
        if (pair) {
            mpq_m7_store_as(y + y_row, at, out_bits, acc[1], mult[0], shift[0], mode);
        }
        if (second) {
            mpq_m7_store_as(y, at + 1u, out_bits, acc[2], mult[1], shift[1], mode);
            if (pair) {
                mpq_m7_store_as(y + y_row, at + 1u, out_bits, acc[3], mult[1], shift[1], mode);
            }
        }
    }
}

/* pair_outputs() with any shifts at whole-row outputs of 8, 4 or 2 bits (a window starting on a
 * byte), out of line: one copy per width for what batch_outputs leaves to it. */
__attribute__((noinline)) static void remaining_outputs(const mpq_word_t *cols, const mpq_word_t *w, uint32_t kp,
                                                        uint32_t pixels, int second, const int32_t bias[2],
                                                        const int32_t mult[2], const int32_t shift[2],
                                                        uint32_t out_bits, uint8_t *y, uint32_t y_row, uint32_t at) {
    switch (out_bits) {
    case 8u:
        pair_outputs(cols, w, kp, pixels, second, bias, mult, shift, MPQ_M7_RQ_ANY, 8u, y, y_row, at);
        break;
    case 4u:
        pair_outputs(cols, w, kp, pixels, second, bias, mult, shift, MPQ_M7_RQ_ANY, 4u, y, y_row, at);
        break;
    default:
        pair_outputs(cols, w, kp, pixels, second, bias, mult, shift, MPQ_M7_RQ_ANY, 2u, y, y_row, at);
        break;
    }
}

/* One output of full_pairs, mode (a constant after inlining) NARROW or BOUNDED: the 2 x 2 blocks
 * leave a register for mpq_m7_requantize_narrow_smmla()'s rounding term. */
MPQ_M7_INLINE uint32_t full_pair_value(int32_t acc, int32_t mult, int32_t shift, mpq_m7_bounded_t k, int mode,
                                       uint32_t bits) {
    return (uint32_t)(mode == MPQ_M7_RQ_NARROW ? mpq_m7_requantize_narrow_smmla(acc, mult, shift, bits)
                                               : mpq_m7_requantize_bounded(acc, mult, k, bits));
}

/* Whether both channels of a pair pass mpq_m7_bounded_ok() with the bound |bias| + 255 * 2^(w_bits-1)
 * * k (|x + in_offset| <= 255 at any input bits, |w| <= 2^(w_bits-1)): a check of a few
 * instructions per pair and batch; a channel whose shift exceeds 32 passes as it is. */
MPQ_M7_INLINE int pair_bounded(uint64_t products, const int32_t bias[2], const int32_t shift[2]) {
    for (uint32_t i = 0; i < 2u; ++i) {
        const int64_t b = bias[i];
        if (!mpq_m7_bounded_ok((uint64_t)(b < 0 ? -b : b) + products, shift[i])) {
            return 0;
        }
    }
    return 1;
}

/* Channels (o, o + 1) (o even, the row's window starting on a byte) of an even number of pixels,
 * requantized with mode (constants after inlining: MPQ_M7_RQ_NARROW when both shifts exceed 32,
 * else MPQ_M7_RQ_BOUNDED: pair_bounded) and stored with no checks in the loop: at 8 bits a byte
 * each, at 4 bits the pair's byte whole, at 2 bits the pair's nibble OR-ed into the cleared row. */
MPQ_M7_INLINE void full_pairs(const mpq_word_t *cols, const mpq_word_t *w, uint32_t kp, uint32_t pixels,
                              const int32_t bias[2], const int32_t mult[2], const int32_t shift[2], int mode,
                              uint32_t out_bits, uint8_t *y, uint32_t y_row, uint32_t o) {
    const mpq_m7_bounded_t k0 = mpq_m7_bounded_of(shift[0]), k1 = mpq_m7_bounded_of(shift[1]);
    const uint32_t nibble = (o * out_bits) & 7u;
    uint8_t *at = y + ((o * out_bits) >> 3);
    for (const mpq_word_t *c = cols, *end = cols + pixels / 2u * kp; c < end; c += kp, at += 2u * y_row) {
        int32_t acc[4] = {bias[0], bias[0], bias[1], bias[1]};
        dot_2x2(c, w, kp, acc);
        const uint32_t v[4] = {full_pair_value(acc[0], mult[0], shift[0], k0, mode, out_bits),
                               full_pair_value(acc[1], mult[0], shift[0], k0, mode, out_bits),
                               full_pair_value(acc[2], mult[1], shift[1], k1, mode, out_bits),
                               full_pair_value(acc[3], mult[1], shift[1], k1, mode, out_bits)};
        if (out_bits == 8u) {
            at[0] = (uint8_t)v[0];
            at[y_row] = (uint8_t)v[1];
            at[1] = (uint8_t)v[2];
            at[y_row + 1u] = (uint8_t)v[3];
        } else if (out_bits == 4u) {
            at[0] = (uint8_t)(v[0] | v[2] << 4);
            at[y_row] = (uint8_t)(v[1] | v[3] << 4);
        } else {
            at[0] |= (uint8_t)((v[0] | v[2] << 2) << nibble);
            at[y_row] |= (uint8_t)((v[1] | v[3] << 2) << nibble);
        }
    }
}

/* Output channels o0 .. o0 + n - 1 of the `pixels` pixels whose interleaved column pairs are
 * in cols (kp words a pair), stored at positions c0 + o0 .. of their rows y, y + y_row, ...
 * (c0: the output-channel window's offset from y inside its first byte). A channel pair's bias,
 * multipliers and shifts are read once for all the pixels (before the stores: a byte store may
 * alias them). With `aligned` (a constant: c0 is 0, outputs of 8, 4 or 2 bits) a pair whose shifts
 * both exceed 32, or whose accumulators are both bounded (pair_bounded: `products` bounds
 * sum |x * w|), runs its pixel pairs through full_pairs and the rest through remaining_outputs;
 * otherwise every pair runs pair_outputs inline. */
MPQ_M7_INLINE void batch_outputs(const mpq_word_t *cols, const mpq_word_t *rows, uint32_t kp, uint32_t o0, uint32_t n,
                                 uint32_t pixels, const mpq_requant_t *rq, uint64_t products, uint32_t out_bits,
                                 uint8_t *y, uint32_t y_row, uint32_t c0, int aligned) {
    const int raw = out_bits == 32u;
    for (uint32_t i = 0; i < n; i += 2u) {
        const uint32_t o = o0 + i;
        const int second = i + 1u < n;
        const int32_t bias[2] = {rq->bias[o], second ? rq->bias[o + 1u] : 0};
        const int32_t mult[2] = {raw ? 0 : rq->mult[o], raw || !second ? 0 : rq->mult[o + 1u]};
        const int32_t shift[2] = {raw ? 1 : rq->shift[o], raw || !second ? 33 : rq->shift[o + 1u]};
        const mpq_word_t *w = rows + i / 2u * kp;
        if (!aligned) {
            pair_outputs(cols, w, kp, pixels, second, bias, mult, shift, MPQ_M7_RQ_ANY, out_bits, y, y_row, c0 + o);
            continue;
        }
        uint32_t done = 0u;
        if (second && shift[0] > 32 && shift[1] > 32) {
            done = pixels & ~1u;
            full_pairs(cols, w, kp, done, bias, mult, shift, MPQ_M7_RQ_NARROW, out_bits, y, y_row, o);
        } else if (second && pair_bounded(products, bias, shift)) {
            done = pixels & ~1u;
            full_pairs(cols, w, kp, done, bias, mult, shift, MPQ_M7_RQ_BOUNDED, out_bits, y, y_row, o);
        }
        if (done < pixels) {
            remaining_outputs(cols + done / 2u * kp, w, kp, pixels - done, second, bias, mult, shift, out_bits,
                              y + done * y_row, y_row, o);
        }
    }
}

/* Output channel o unpacked into dst (kp int16, tail zero); a channel past cout is all zero. */
static void unpack_weight_row(const mpq_m7_gemm_t *g, uint32_t o, uint32_t cout, uint32_t kp, int16_t *dst) {
    const uint32_t w_row = mpq_row_bytes(g->cin, g->w_bits);
    const uint32_t taps = o < cout ? g->taps : 0u;
    for (uint32_t t = 0; t < taps; ++t) {
        mpq_m7_unpack_weights(g->w + (o * g->taps + t) * w_row, g->cin, g->w_bits, dst + t * g->cin);
    }
    memset(dst + taps * g->cin, 0, (kp - taps * g->cin) * sizeof(int16_t));
}

void mpq_m7_gemm(const mpq_m7_gemm_t *g, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    const uint32_t k = g->taps * g->cin;
    const uint32_t kp = mpq_m7_padded_k(k);
    const uint64_t products = 255u * ((uint64_t)1 << (g->w_bits - 1u)) * k; /* bound of sum |x * w| */
    const uint32_t cout = out->c;
    const uint32_t chunk = mpq_m7_chunk_channels_beside(k, cout, g->reserved_bytes);
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    const uint32_t halfwords = (MPQ_M7_WORK_BYTES - g->reserved_bytes) / 2u;
    int16_t *tmp0 = (int16_t *)(void *)(mpq_m7_work + g->reserved_bytes / 4u);
    int16_t *tmp1 = tmp0 + kp;
    mpq_word_t *rows = (mpq_word_t *)(tmp1 + kp);
    mpq_word_t *cols = rows + chunk / 2u * kp;
    /* pixels whose column pairs fit beside the chunk's weights (at least one pair: mpq_m7_chunk_channels) */
    const uint32_t batch = kp == 0u ? g->pixels : 2u * ((halfwords - (2u + chunk) * kp) / (2u * kp));

    for (uint32_t o0 = 0; o0 < cout; o0 += chunk) {
        const uint32_t n = cout - o0 < chunk ? cout - o0 : chunk;
        for (uint32_t i = 0; i < n; i += 2u) {
            unpack_weight_row(g, o0 + i, cout, kp, tmp0);
            unpack_weight_row(g, o0 + i + 1u, cout, kp, tmp1);
            interleave(tmp0, tmp1, kp, rows + i / 2u * kp);
        }
        memset(tmp0, 0, 2u * kp * sizeof(int16_t)); /* padding tails, and the column after a lone last pixel */
        for (uint32_t p0 = 0; p0 < g->pixels; p0 += batch) {
            const uint32_t m = g->pixels - p0 < batch ? g->pixels - p0 : batch;
            uint8_t *yb = y + p0 * y_row;
            for (uint32_t p = 0; p < m; p += 2u) {
                if (g->columns != NULL) {
                    g->columns(g->layer, p0 + p, p + 1u < m, (int16_t *)(void *)(cols + p / 2u * kp));
                    continue;
                }
                g->im2col(g->layer, p0 + p, tmp0);
                if (p + 1u < m) {
                    g->im2col(g->layer, p0 + p + 1u, tmp1);
                }
                interleave(tmp0, tmp1, kp, cols + p / 2u * kp);
            }
            if (o0 == 0u) {
                for (uint32_t p = 0; p < m; ++p) {
                    mpq_m7_clear_outputs(yb + p * y_row, out);
                }
            }
            /* the window's whole bytes move the row pointer; only a window starting inside a byte (2- and
             * 4-bit outputs) runs a copy with a channel offset, so whole rows keep offset-free code */
            uint8_t *yw = yb + (uint32_t)out->c0 * out->bits / 8u;
            const uint32_t inside = ((uint32_t)out->c0 * out->bits % 8u) / out->bits;
            switch (out->bits) {
            case 8u:
                batch_outputs(cols, rows, kp, o0, n, m, rq, products, 8u, yw, y_row, 0u, 1);
                break;
            case 4u:
                inside ? batch_outputs(cols, rows, kp, o0, n, m, rq, products, 4u, yw, y_row, inside, 0)
                       : batch_outputs(cols, rows, kp, o0, n, m, rq, products, 4u, yw, y_row, 0u, 1);
                break;
            case 2u:
                inside ? batch_outputs(cols, rows, kp, o0, n, m, rq, products, 2u, yw, y_row, inside, 0)
                       : batch_outputs(cols, rows, kp, o0, n, m, rq, products, 2u, yw, y_row, 0u, 1);
                break;
            default:
                batch_outputs(cols, rows, kp, o0, n, m, rq, products, 32u, yw, y_row, 0u, 0);
                break;
            }
        }
    }
}
