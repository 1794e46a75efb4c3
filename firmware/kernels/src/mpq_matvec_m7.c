/*
 * The weight-streaming engine of the _m7 fully connected and wide pointwise kernels (mpq_m7.h):
 * y[p][o] = requant(bias[o] + sum_i w[o][i] * x[p][i]) for one or two input pixels p.
 *
 * The weights are read once, straight from their packed rows, and widened in registers:
 * SXTB16 (and SXTB16 ROR #8) turns one word of four 8-bit weights into two words of int16 lanes;
 * a word of 4-bit (2-bit) weights is first masked into two (four) words whose bytes hold the
 * codes in their top bits, i.e. the weights times 16 (64), so the same SXTB16 widen them and the
 * dot product comes out scaled by 16 (64), which is divided out exactly at the end. The lanes
 * come out of a word in a fixed order (ORDER8/4/2); the input pixels are unpacked once per call
 * and stored in that order, so each SMLAD multiplies matching values. Two output channels share
 * each input load; with two pixels each widened weight word serves both. The last, partial word
 * of a row is read byte by byte and masked. A layer of short rows (at most 16 inputs, 8-bit
 * weights and outputs, every shift above 32) keeps its pixel in registers instead (short_rows);
 * one of few output channels (at most 12) and 8-bit inputs widens its pixel in registers as each
 * group of channels reads it (few_rows).
 */
#include "mpq_m7.h"

/* Index, within a weight word, of the value each int16 lane of the widened words holds. */
static const uint8_t ORDER8[4] = {0, 2, 1, 3};
static const uint8_t ORDER4[8] = {0, 4, 2, 6, 1, 5, 3, 7};
static const uint8_t ORDER2[16] = {0, 8, 4, 12, 1, 9, 5, 13, 2, 10, 6, 14, 3, 11, 7, 15};

/* Up to four output channels by up to two pixels: acc[MPQ_MV_ROWS * p + r]. */
#define MPQ_MV_ROWS 4u
/* A one-pixel 8-bit layer of at most this many output channels reads its input raw (few_rows). */
#define MPQ_M7_FEW_ROWS 12u

/* Lane word i of each channel's widened weight word (v[r]) against lane word i of each pixel
 * (pixel 1 is `lanes` words after pixel 0). */
MPQ_M7_INLINE void mac_lanes(const uint32_t *v, uint32_t rows, const mpq_word_t *x, uint32_t i, uint32_t lanes,
                             uint32_t pixels, int32_t *acc) {
#pragma GCC unroll 4
    for (uint32_t p = 0; p < pixels; ++p) {
        const uint32_t xv = x[p * lanes + i];
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            acc[MPQ_MV_ROWS * p + r] = mpq_smlad(xv, v[r], acc[MPQ_MV_ROWS * p + r]);
        }
    }
}

/* One packed weight word of each channel (w[r]) against the matching values of the pixels. */
MPQ_M7_INLINE void mac_word(const uint32_t *w, uint32_t rows, uint32_t bits, const mpq_word_t *x, uint32_t pixels,
                            int32_t *acc) {
    const uint32_t lanes = 16u / bits; /* int16 lane words per weight word */
    uint32_t lo[MPQ_MV_ROWS], hi[MPQ_MV_ROWS];
    if (bits == 8u) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            lo[r] = mpq_sxtb16(w[r]);
            hi[r] = mpq_sxtb16_ror8(w[r]);
        }
        mac_lanes(lo, rows, x, 0u, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 1u, lanes, pixels, acc);
        return;
    }
    if (bits == 4u) {
        const uint32_t mask = 0xF0F0F0F0u;
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            const uint32_t m = mpq_and_lsl4(mask, w[r]); /* codes 0, 2, 4, 6 at the bytes' tops */
            lo[r] = mpq_sxtb16(m);
            hi[r] = mpq_sxtb16_ror8(m);
        }
        mac_lanes(lo, rows, x, 0u, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 1u, lanes, pixels, acc);
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            const uint32_t m = w[r] & mask; /* codes 1, 3, 5, 7 */
            lo[r] = mpq_sxtb16(m);
            hi[r] = mpq_sxtb16_ror8(m);
        }
        mac_lanes(lo, rows, x, 2u, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 3u, lanes, pixels, acc);
        return;
    }
    const uint32_t mask = 0xC0C0C0C0u;
#pragma GCC unroll 4
    for (uint32_t s = 0; s < 4u; ++s) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) { /* code s of each byte at the byte's top */
            const uint32_t m = s == 0u ? mpq_and_lsl6(mask, w[r]) : s == 1u ? mpq_and_lsl4(mask, w[r])
                               : s == 2u ? mpq_and_lsl2(mask, w[r]) : w[r] & mask;
            lo[r] = mpq_sxtb16(m);
            hi[r] = mpq_sxtb16_ror8(m);
        }
        mac_lanes(lo, rows, x, 2u * s, lanes, pixels, acc);
        mac_lanes(hi, rows, x, 2u * s + 1u, lanes, pixels, acc);
    }
}

/* The last `bytes` (1 to 4) bytes of a row holding `values` codes, the bits beyond them cleared. */
static uint32_t load_tail(const uint8_t *p, uint32_t bytes, uint32_t values, uint32_t bits) {
    uint32_t v = 0u;
    memcpy(&v, p, bytes); /* little-endian */
    return values * bits == 32u ? v : v & ((1u << (values * bits)) - 1u);
}

/* Puts the unpacked values of one row (t: int16 pairs in value order, `padded` values) into
 * lane order for `bits`-wide weights, a weight word's values every `stride` words of dst (bits a
 * constant after inlining). Each lane word holds values a and a + per_word / 2 of the same parity
 * (the ORDERs), i.e. the same halves of two words of t: one PKHBT or PKHTB per lane word. */
MPQ_M7_INLINE void order_lanes(const mpq_word_t *t, uint32_t padded, uint32_t bits, uint32_t stride,
                               mpq_word_t *dst) {
    const uint32_t per_word = 32u / bits;
    const uint8_t *order = bits == 8u ? ORDER8 : bits == 4u ? ORDER4 : ORDER2;
    for (uint32_t j = 0; j < padded; j += per_word, t += per_word / 2u, dst += stride) {
#pragma GCC unroll 8
        for (uint32_t q = 0; q < per_word / 2u; ++q) {
            const uint32_t a = order[2u * q];
            const uint32_t lo = t[a >> 1], hi = t[(a >> 1) + per_word / 4u];
            dst[q] = (a & 1u) != 0u ? mpq_pack_hi(lo, hi) : mpq_pack_lo(lo, hi);
        }
    }
}

/* One pixel's 8-bit activations in lane order for 8-bit weights, a weight word's two lane words
 * every `stride` words of dst: ORDER8 is what UXTB16 and its ROR #8 take out of an input word, so
 * the values go there straight, with no row in value order between. Values past cin are zero. */
MPQ_M7_INLINE void lanes_8x8(const uint8_t *x, uint32_t cin, uint32_t padded, int32_t in_offset, uint32_t stride,
                             mpq_word_t *dst) {
    const uint32_t k = mpq_pair(in_offset, in_offset);
    const uint32_t words = cin / 4u;
    uint32_t i = 0;
#if MPQ_HAVE_DSP && defined(__OPTIMIZE__) && !defined(MPQ_M7_NO_ASM)
    if (stride == 2u && words != 0u) { /* one pixel: the two lane words of a word stored as a pair */
        const uint8_t *end = x + 4u * words;
        uint32_t v, a, b;
        __asm__ volatile(
            "1:\n\t"
            "ldr     %[v], [%[x]], #4\n\t"
            "uxtab16 %[a], %[k], %[v]\n\t"
            "uxtab16 %[b], %[k], %[v], ror #8\n\t"
            "strd    %[a], %[b], [%[d]], #8\n\t"
            "cmp     %[x], %[end]\n\t"
            "bne     1b\n\t"
            : [x] "+r"(x), [d] "+r"(dst), [v] "=&r"(v), [a] "=&r"(a), [b] "=&r"(b)
            : [k] "r"(k), [end] "r"(end)
            : "cc", "memory");
        i = words;
    }
#endif
    for (; i < words; ++i, x += 4, dst += stride) {
        const uint32_t v = mpq_m7_load_word(x);
        dst[0] = mpq_sadd16(mpq_uxtb16(v), k);
        dst[1] = mpq_sadd16(mpq_uxtb16_ror8(v), k);
    }
    if (padded > 4u * words) { /* the last 1 to 3 values */
        int32_t t[4] = {0, 0, 0, 0};
        for (uint32_t j = 0; j < cin - 4u * words; ++j) {
            t[j] = (int32_t)x[j] + in_offset;
        }
        dst[0] = mpq_pair(t[0], t[2]);
        dst[1] = mpq_pair(t[1], t[3]);
    }
}

/* Unpacks the pixels p0 .. p0 + pixels - 1 of x into cols: for each weight word, pixel 0's
 * values in lane order, then pixel 1's; values past cin are zero. tmp: room for `padded` int16. */
__attribute__((noinline)) /* inlined, it costs the streaming loops registers */
static void fill_columns(const mpq_m7_matvec_t *m, uint32_t p0, uint32_t pixels, uint32_t padded, int16_t *tmp,
                         int16_t *cols) {
    const uint32_t per_word = 32u / m->w_bits;
    const uint32_t x_row = mpq_row_bytes(m->cin, m->in_bits);
    const uint32_t stride = pixels * per_word / 2u;
    if (m->in_bits == 8u && m->w_bits == 8u) {
        if (pixels == 1u) { /* the stride a constant: the stores pair up */
            lanes_8x8(m->x + p0 * x_row, m->cin, padded, m->in_offset, 2u, (mpq_word_t *)(void *)cols);
            return;
        }
        for (uint32_t p = 0; p < pixels; ++p) {
            lanes_8x8(m->x + (p0 + p) * x_row, m->cin, padded, m->in_offset, stride,
                      (mpq_word_t *)(void *)(cols + p * per_word));
        }
        return;
    }
    memset(tmp + m->cin, 0, (padded - m->cin) * sizeof(int16_t));
    for (uint32_t p = 0; p < pixels; ++p) {
        mpq_m7_unpack_activations(m->x + (p0 + p) * x_row, m->cin, m->in_bits, m->in_offset, tmp);
        const mpq_word_t *t = (const mpq_word_t *)(const void *)tmp;
        mpq_word_t *dst = (mpq_word_t *)(void *)(cols + p * per_word);
        switch (m->w_bits) {
        case 8u:
            order_lanes(t, padded, 8u, stride, dst);
            break;
        case 4u:
            order_lanes(t, padded, 4u, stride, dst);
            break;
        default:
            order_lanes(t, padded, 2u, stride, dst);
            break;
        }
    }
}

/* Output channels o .. o + n - 1 from their accumulators, at positions out->c0 + o .. of a cleared
 * row (out may be an output-channel window), the output bits a constant in each case (the
 * requantization inlined, its short path for shift <= 32 too). */
static void write_outputs(uint8_t *row, uint32_t o, uint32_t n, const int32_t *acc, const mpq_requant_t *rq,
                          const mpq_dims_t *out) {
    const uint32_t at = out->c0 + o;
    const int32_t *mult = rq->mult + o; /* locals: the stores through row may alias *rq */
    const int8_t *shift = rq->shift + o;
    switch (out->bits) {
    case 8u:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 8u, acc[i], mult[i], shift[i], MPQ_M7_RQ_SMALL);
        }
        break;
    case 4u:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 4u, acc[i], mult[i], shift[i], MPQ_M7_RQ_SMALL);
        }
        break;
    case 2u:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 2u, acc[i], mult[i], shift[i], MPQ_M7_RQ_SMALL);
        }
        break;
    default:
        for (uint32_t i = 0; i < n; ++i) {
            mpq_m7_store_as(row, at + i, 32u, acc[i], 0, 1, MPQ_M7_RQ_NARROW);
        }
        break;
    }
}

/* ---- written-out inner loops (DSP extension): the common cases of stream_channels ----
 * The same arithmetic as its generic loop (mac_word), in inline assembly: compiled, these loops
 * spill their row pointers to the stack and reload them every turn. The host build (no DSP
 * extension) runs the generic loop, which the host tests check; the device tests check these.
 * They need 14 free core registers: an optimized build that omits the frame pointer (GCC's
 * default from -O1 up). An unoptimized build runs the generic loop; a build that reserves a
 * register (-fno-omit-frame-pointer, -ffixed-r9) must define MPQ_M7_NO_ASM to do the same, or
 * GCC stops with "'asm' operand has impossible constraints". */
#if MPQ_HAVE_DSP && defined(__OPTIMIZE__) && !defined(MPQ_M7_NO_ASM)
/* The weight word in register w against the lane words x0, x1 into acc: two widenings, two
 * SMLADs; and the same after loading w from addr. */
#define MPQ_M7_W8_LANES(acc, w) \
    "sxtb16 %[t], " w "\n\t" \
    "smlad  " acc ", %[x0], %[t], " acc "\n\t" \
    "sxtb16 %[t], " w ", ror #8\n\t" \
    "smlad  " acc ", %[x1], %[t], " acc "\n\t"
#define MPQ_M7_W8_ROW(acc, addr) "ldr    %[w], " addr "\n\t" MPQ_M7_W8_LANES(acc, "%[w]")
/* One weight word of two rows of 8-bit weights (row 1 at r + w_row into acc1, row 0 at r into
 * acc0, r moved on a word) against the lane words x0, x1: two loads, four widenings, four SMLADs. */
#define MPQ_M7_W8_ROWS(acc1, acc0, r) MPQ_M7_W8_ROW(acc1, "[" r ", %[s]]") MPQ_M7_W8_ROW(acc0, "[" r "], #4")

/* The pixel's next two lane words into x0, x1: from the filled columns, or (raw) one word of four
 * 8-bit values widened with the input offset (k, in both halves) as lanes_8x8 does, in registers. */
#define MPQ_M7_X8_LANES "ldrd   %[x0], %[x1], [%[x]], #8\n\t"
#define MPQ_M7_X8_RAW \
    "ldr     %[w], [%[x]], #4\n\t" \
    "uxtab16 %[x0], %[k], %[w]\n\t" \
    "uxtab16 %[x1], %[k], %[w], ror #8\n\t"
/* One word of two rows (from ra) or four (ra and rb), its lane words loaded by load_x. */
#define MPQ_M7_W8_2ROWS(load_x) load_x MPQ_M7_W8_ROWS("%[a1]", "%[a0]", "%[ra]")
#define MPQ_M7_W8_4ROWS(load_x) MPQ_M7_W8_2ROWS(load_x) MPQ_M7_W8_ROWS("%[a3]", "%[a2]", "%[rb]")
/* Z set when x has reached end: a register, or (a loop short of registers) a memory operand. */
#define MPQ_M7_AT_END "cmp    %[x], %[end]\n\t"
#define MPQ_M7_AT_END_MEM "ldr    %[t], %[end]\n\t" "cmp    %[x], %[t]\n\t"
/* `word` once per turn of the loop until at_end. */
#define MPQ_M7_EACH_WORD(word, at_end) \
    "1:\n\t" \
    word at_end \
    "bne    1b\n\t"
/* `word` once if t (the word count) is odd, then twice per turn of the loop until at_end. */
#define MPQ_M7_ODD_THEN_PAIRS(word, at_end) \
    "tst    %[t], #1\n\t" \
    "beq    2f\n\t" \
    word at_end \
    "beq    3f\n\t" \
    "2:\n\t" \
    word word at_end \
    "bne    2b\n\t" \
    "3:\n\t"

/* acc[r] = w[r] . x for four consecutive rows of 8-bit weights from r0 (w_row bytes apart), over
 * `words` weight words of one pixel. Each word costs its four weight loads, one load of its two
 * lane words, eight widenings and eight SMLADs. Two words a turn would save one instruction in 25,
 * but take 8/8/8 further from the 4- and 2-bit weight loops, which have registers for two rows only
 * (the suite keeps every combination within 15 % of 8/8/8). */
__attribute__((noinline)) static void dot4_w8(const uint8_t *r0, uint32_t w_row, const mpq_word_t *x, uint32_t words,
                                              int32_t *acc) {
    const uint8_t *ra = r0, *rb = r0 + 2u * w_row;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const mpq_word_t *end = x + 2u * words;
    if (x != end) {
        uint32_t x0, x1, w, t;
        __asm__ volatile(
            MPQ_M7_EACH_WORD(MPQ_M7_W8_4ROWS(MPQ_M7_X8_LANES), MPQ_M7_AT_END)
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [ra] "+r"(ra), [rb] "+r"(rb),
              [x] "+r"(x), [x0] "=&r"(x0), [x1] "=&r"(x1), [w] "=&r"(w), [t] "=&r"(t)
            : [s] "r"(w_row), [end] "r"(end)
            : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* As dot4_w8 for two rows: the channels after the last group of four (an odd last one computed
 * with the one before it again). */
__attribute__((noinline)) static void dot2_w8(const uint8_t *r0, uint32_t w_row, const mpq_word_t *x, uint32_t words,
                                              int32_t *acc) {
    const uint8_t *ra = r0;
    int32_t a0 = 0, a1 = 0;
    const mpq_word_t *end = x + 2u * words;
    if (x != end) {
        uint32_t x0, x1, w, t = words; /* t holds words until the first word is read */
        __asm__ volatile(
            MPQ_M7_ODD_THEN_PAIRS(MPQ_M7_W8_2ROWS(MPQ_M7_X8_LANES), MPQ_M7_AT_END)
            : [a0] "+r"(a0), [a1] "+r"(a1), [ra] "+r"(ra), [x] "+r"(x), [x0] "=&r"(x0), [x1] "=&r"(x1),
              [w] "=&r"(w), [t] "+&r"(t)
            : [s] "r"(w_row), [end] "r"(end)
            : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc[r] = init[r] + w[r] . (x + in_offset) for four consecutive rows of 8-bit weights from r0
 * (w_row bytes apart) and one pixel of `words` (at least one) words of 8-bit values read raw
 * (few_rows): each word costs dot4_w8's work with its lane words made in registers (a load, two
 * UXTAB16); the offset takes the register that held the loop's end, which is read from the stack. */
__attribute__((noinline)) static void dot4_w8_raw(const uint8_t *r0, uint32_t w_row, const uint8_t *x, uint32_t words,
                                                  uint32_t k, const int32_t *init, int32_t *acc) {
    const uint8_t *ra = r0, *rb = r0 + 2u * w_row;
    int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3];
    const uint8_t *end = x + 4u * words;
    uint32_t x0, x1, w, t = words; /* t holds words until the first word is read */
    __asm__ volatile(
        MPQ_M7_ODD_THEN_PAIRS(MPQ_M7_W8_4ROWS(MPQ_M7_X8_RAW), MPQ_M7_AT_END_MEM)
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [ra] "+r"(ra), [rb] "+r"(rb),
          [x] "+r"(x), [x0] "=&r"(x0), [x1] "=&r"(x1), [w] "=&r"(w), [t] "+&r"(t)
        : [s] "r"(w_row), [end] "m"(end), [k] "r"(k)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* As dot4_w8_raw for two rows, with x, r0 and w_row word-aligned (few_rows_fit): after an odd
 * first word, each turn loads two input words and two words of each row with LDRD (LDRD
 * faults on an unaligned address), 25 instructions for two words where single loads take 28.
 * The first input word's register takes row 0's second weight word once its lanes are made. */
__attribute__((noinline)) static void dot2_w8_raw(const uint8_t *r0, uint32_t w_row, const uint8_t *x, uint32_t words,
                                                  uint32_t k, const int32_t *init, int32_t *acc) {
    const uint8_t *ra = r0, *rb = r0 + w_row;
    int32_t a0 = init[0], a1 = init[1];
    const uint8_t *end = x + 4u * words;
    uint32_t x0, x1, v, u, w, y, t = words; /* t holds words until the first word is read */
    __asm__ volatile(
        "tst     %[t], #1\n\t"
        "beq     2f\n\t"
        "ldr     %[w], [%[x]], #4\n\t"
        "uxtab16 %[x0], %[k], %[w]\n\t"
        "uxtab16 %[x1], %[k], %[w], ror #8\n\t"
        MPQ_M7_W8_ROW("%[a0]", "[%[ra]], #4")
        MPQ_M7_W8_ROW("%[a1]", "[%[rb]], #4")
        MPQ_M7_AT_END
        "beq     3f\n\t"
        "2:\n\t"
        "ldrd    %[v], %[u], [%[x]], #8\n\t"
        "uxtab16 %[x0], %[k], %[v]\n\t"
        "uxtab16 %[x1], %[k], %[v], ror #8\n\t"
        "ldrd    %[w], %[v], [%[ra]], #8\n\t"
        MPQ_M7_W8_LANES("%[a0]", "%[w]")
        "ldrd    %[w], %[y], [%[rb]], #8\n\t"
        MPQ_M7_W8_LANES("%[a1]", "%[w]")
        "uxtab16 %[x0], %[k], %[u]\n\t"
        "uxtab16 %[x1], %[k], %[u], ror #8\n\t"
        MPQ_M7_W8_LANES("%[a0]", "%[v]")
        MPQ_M7_W8_LANES("%[a1]", "%[y]")
        MPQ_M7_AT_END
        "bne     2b\n\t"
        "3:\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [ra] "+r"(ra), [rb] "+r"(rb), [x] "+r"(x), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [v] "=&r"(v), [u] "=&r"(u), [w] "=&r"(w), [y] "=&r"(y), [t] "+&r"(t)
        : [end] "r"(end), [k] "r"(k)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
}

/* acc[MPQ_MV_ROWS * p + r] = w[r] . x[p] for two consecutive rows r of 8-bit weights from r0
 * (w_row bytes apart) and two pixels p, over `words` weight words: per word, one load of each
 * pixel's two lane words, two weight loads, four widenings and eight SMLADs. */
__attribute__((noinline)) static void dot2x2_w8(const uint8_t *r0, uint32_t w_row, const mpq_word_t *x,
                                                uint32_t words, int32_t *acc) {
    const uint8_t *ra = r0;
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0; /* pixel, row */
    const mpq_word_t *end = x + 4u * words;
    if (x != end) {
        uint32_t xa0, xa1, xb0, xb1, w, t;
        __asm__ volatile(
            "1:\n\t"
            "ldrd   %[xa0], %[xa1], [%[x]], #8\n\t"
            "ldrd   %[xb0], %[xb1], [%[x]], #8\n\t"
            "ldr    %[w], [%[ra], %[s]]\n\t"
            "sxtb16 %[t], %[w]\n\t"
            "smlad  %[a01], %[xa0], %[t], %[a01]\n\t"
            "smlad  %[a11], %[xb0], %[t], %[a11]\n\t"
            "sxtb16 %[t], %[w], ror #8\n\t"
            "smlad  %[a01], %[xa1], %[t], %[a01]\n\t"
            "smlad  %[a11], %[xb1], %[t], %[a11]\n\t"
            "ldr    %[w], [%[ra]], #4\n\t"
            "sxtb16 %[t], %[w]\n\t"
            "smlad  %[a00], %[xa0], %[t], %[a00]\n\t"
            "smlad  %[a10], %[xb0], %[t], %[a10]\n\t"
            "sxtb16 %[t], %[w], ror #8\n\t"
            "smlad  %[a00], %[xa1], %[t], %[a00]\n\t"
            "smlad  %[a10], %[xb1], %[t], %[a10]\n\t"
            "cmp    %[x], %[end]\n\t"
            "bne    1b\n\t"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [ra] "+r"(ra), [x] "+r"(x),
              [xa0] "=&r"(xa0), [xa1] "=&r"(xa1), [xb0] "=&r"(xb0), [xb1] "=&r"(xb1), [w] "=&r"(w), [t] "=&r"(t)
            : [s] "r"(w_row), [end] "r"(end)
            : "cc", "memory");
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[MPQ_MV_ROWS] = a10;
    acc[MPQ_MV_ROWS + 1u] = a11;
}

/* One row's part of a weight word in the 4- and 2-bit loops below: `load` brings the row's word
 * into w; `lo` and `hi` mask two of its code groups into t, each at the bytes' tops (as
 * mac_word); each is widened twice into u and multiplied into `acc` with lane words x0, x1
 * (lo) and x2, x3 (hi). */
#define MPQ_M7_ROW_CODES(acc, load, lo, hi) \
    load "\n\t" \
    lo "\n\t" \
    "sxtb16 %[u], %[t]\n\t" \
    "smlad  " acc ", %[x0], %[u], " acc "\n\t" \
    "sxtb16 %[u], %[t], ror #8\n\t" \
    "smlad  " acc ", %[x1], %[u], " acc "\n\t" \
    hi "\n\t" \
    "sxtb16 %[u], %[t]\n\t" \
    "smlad  " acc ", %[x2], %[u], " acc "\n\t" \
    "sxtb16 %[u], %[t], ror #8\n\t" \
    "smlad  " acc ", %[x3], %[u], " acc "\n\t"
/* The next four lane words of the pixel into x0 .. x3. */
#define MPQ_M7_LANES4 \
    "ldrd   %[x0], %[x1], [%[x]], #8\n\t" \
    "ldrd   %[x2], %[x3], [%[x]], #8\n\t"
/* Row 1 is at ra + w_row, row 0 at ra; the last load of row 0 in a word moves ra on. */
#define MPQ_M7_ROW1 "ldr    %[w], [%[ra], %[s]]"
#define MPQ_M7_ROW0 "ldr    %[w], [%[ra]]"
#define MPQ_M7_ROW0_NEXT "ldr    %[w], [%[ra]], #4"

/* acc[r] = 16 * (w[r] . x) for two consecutive rows r of 4-bit weights from r0 (w_row bytes
 * apart) and one pixel, over `words` weight words: per word, two loads of the pixel's four lane
 * words, and per row one load, two maskings (codes 0, 2, 4, 6 then 1, 3, 5, 7), four widenings
 * and four SMLADs. */
__attribute__((noinline)) static void dot2_w4(const uint8_t *r0, uint32_t w_row, const mpq_word_t *x, uint32_t words,
                                              int32_t *acc) {
    const uint32_t mask = 0xF0F0F0F0u;
    const uint8_t *ra = r0;
    int32_t a0 = 0, a1 = 0;
    const mpq_word_t *end = x + 4u * words;
    if (x != end) {
        uint32_t x0, x1, x2, x3, w, t = words, u; /* t holds words until the first word is read */
        /* one word if they are odd, then two per turn of the loop (its cmp and branch paid
         * every other word) */
#define MPQ_DOT2_W4_WORD \
            MPQ_M7_LANES4 \
            MPQ_M7_ROW_CODES("%[a1]", MPQ_M7_ROW1, "and    %[t], %[mask], %[w], lsl #4", "and    %[t], %[w], %[mask]") \
            MPQ_M7_ROW_CODES("%[a0]", MPQ_M7_ROW0_NEXT, "and    %[t], %[mask], %[w], lsl #4", "and    %[t], %[w], %[mask]")
        __asm__ volatile(
            "tst    %[t], #1\n\t"
            "beq    2f\n\t"
            MPQ_DOT2_W4_WORD
            "cmp    %[x], %[end]\n\t"
            "beq    3f\n\t"
            "2:\n\t"
            MPQ_DOT2_W4_WORD
            MPQ_DOT2_W4_WORD
            "cmp    %[x], %[end]\n\t"
            "bne    2b\n\t"
            "3:\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [ra] "+r"(ra), [x] "+r"(x), [x0] "=&r"(x0), [x1] "=&r"(x1),
              [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(w), [t] "+&r"(t), [u] "=&r"(u)
            : [s] "r"(w_row), [end] "r"(end), [mask] "r"(mask)
            : "cc", "memory");
#undef MPQ_DOT2_W4_WORD
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc[r] = 64 * (w[r] . x) for two consecutive rows r of 2-bit weights from r0 (w_row bytes
 * apart) and one pixel, over `words` weight words: the pixel's eight lane words of a weight word
 * in two halves of four, and per half and row one weight load, two maskings (codes 0 and 1 of
 * each byte, then 2 and 3), four widenings and four SMLADs. */
__attribute__((noinline)) static void dot2_w2(const uint8_t *r0, uint32_t w_row, const mpq_word_t *x, uint32_t words,
                                              int32_t *acc) {
    const uint32_t mask = 0xC0C0C0C0u;
    const uint8_t *ra = r0;
    int32_t a0 = 0, a1 = 0;
    const mpq_word_t *end = x + 8u * words;
    if (x != end) {
        uint32_t x0, x1, x2, x3, w, t, u;
        __asm__ volatile(
            "1:\n\t"
            MPQ_M7_LANES4
            MPQ_M7_ROW_CODES("%[a1]", MPQ_M7_ROW1, "and    %[t], %[mask], %[w], lsl #6", "and    %[t], %[mask], %[w], lsl #4")
            MPQ_M7_ROW_CODES("%[a0]", MPQ_M7_ROW0, "and    %[t], %[mask], %[w], lsl #6", "and    %[t], %[mask], %[w], lsl #4")
            MPQ_M7_LANES4
            MPQ_M7_ROW_CODES("%[a1]", MPQ_M7_ROW1, "and    %[t], %[mask], %[w], lsl #2", "and    %[t], %[w], %[mask]")
            MPQ_M7_ROW_CODES("%[a0]", MPQ_M7_ROW0_NEXT, "and    %[t], %[mask], %[w], lsl #2", "and    %[t], %[w], %[mask]")
            "cmp    %[x], %[end]\n\t"
            "bne    1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [ra] "+r"(ra), [x] "+r"(x), [x0] "=&r"(x0), [x1] "=&r"(x1),
              [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(w), [t] "=&r"(t), [u] "=&r"(u)
            : [s] "r"(w_row), [end] "r"(end), [mask] "r"(mask)
            : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
}
#undef MPQ_M7_W8_LANES
#undef MPQ_M7_W8_ROW
#undef MPQ_M7_W8_ROWS
#undef MPQ_M7_X8_LANES
#undef MPQ_M7_X8_RAW
#undef MPQ_M7_W8_2ROWS
#undef MPQ_M7_W8_4ROWS
#undef MPQ_M7_AT_END
#undef MPQ_M7_AT_END_MEM
#undef MPQ_M7_EACH_WORD
#undef MPQ_M7_ODD_THEN_PAIRS
#undef MPQ_M7_ROW_CODES
#undef MPQ_M7_LANES4
#undef MPQ_M7_ROW1
#undef MPQ_M7_ROW0
#undef MPQ_M7_ROW0_NEXT

/* Runs the written-out loop of (bits, pixels, rows) into acc, if there is one: 1 when it ran. */
MPQ_M7_INLINE int dot_written_out(uint32_t bits, uint32_t pixels, uint32_t rows, const uint8_t *r0, uint32_t w_row,
                                  const mpq_word_t *x, uint32_t words, int32_t *acc) {
    if (bits == 8u && pixels == 1u && rows == 4u) {
        dot4_w8(r0, w_row, x, words, acc);
    } else if (bits == 8u && pixels == 1u && rows == 2u) {
        dot2_w8(r0, w_row, x, words, acc);
    } else if (bits == 8u && pixels == 2u && rows == 2u) {
        dot2x2_w8(r0, w_row, x, words, acc);
    } else if (bits == 4u && pixels == 1u && rows == 2u) {
        dot2_w4(r0, w_row, x, words, acc);
    } else if (bits == 2u && pixels == 1u && rows == 2u) {
        dot2_w2(r0, w_row, x, words, acc);
    } else {
        return 0;
    }
    return 1;
}

/* acc[r] = init[r] + w[r] . (x + in_offset) for `rows` (4 or 2) rows (dot4_w8_raw, dot2_w8_raw). */
MPQ_M7_INLINE void dot_raw_w8(uint32_t rows, const uint8_t *r0, uint32_t w_row, const uint8_t *x, uint32_t words,
                              uint32_t k, const int32_t *init, int32_t *acc) {
    if (rows == 4u) {
        dot4_w8_raw(r0, w_row, x, words, k, init, acc);
    } else {
        dot2_w8_raw(r0, w_row, x, words, k, init, acc);
    }
}
#else
/* The written-out dot_raw_w8 in C: each input word widened into its two lane words. */
MPQ_M7_INLINE void dot_raw_w8(uint32_t rows, const uint8_t *r0, uint32_t w_row, const uint8_t *x, uint32_t words,
                              uint32_t k, const int32_t *init, int32_t *acc) {
    for (uint32_t r = 0; r < rows; ++r) {
        acc[r] = init[r];
    }
    for (uint32_t j = 0; j < words; ++j) {
        const uint32_t v = mpq_m7_load_word(x + 4u * j);
        const uint32_t x0 = mpq_sadd16(mpq_uxtb16(v), k), x1 = mpq_sadd16(mpq_uxtb16_ror8(v), k);
        for (uint32_t r = 0; r < rows; ++r) {
            const uint32_t w = mpq_m7_load_word(r0 + r * w_row + 4u * j);
            acc[r] = mpq_smlad(x1, mpq_sxtb16_ror8(w), mpq_smlad(x0, mpq_sxtb16(w), acc[r]));
        }
    }
}

MPQ_M7_INLINE int dot_written_out(uint32_t bits, uint32_t pixels, uint32_t rows, const uint8_t *r0, uint32_t w_row,
                                  const mpq_word_t *x, uint32_t words, int32_t *acc) {
    (void)bits, (void)pixels, (void)rows, (void)r0, (void)w_row, (void)x, (void)words, (void)acc;
    return 0;
}
#endif

/* Output channels o .. o + rows - 1 (rows a constant) of `pixels` pixels (a constant) whose
 * columns are in cols, as bias + dot product into sums[p * MPQ_M7_MATVEC_CHUNK + o - o0]; bits a
 * constant after inlining. The layer comes as values, not through its descriptor, which the stores
 * of sums might alias (every turn would reload it). */
MPQ_M7_INLINE void stream_channels(const uint8_t *weights, uint32_t cin, const int32_t *bias, uint32_t bits,
                                   uint32_t pixels, uint32_t rows, uint32_t o, uint32_t o0, const mpq_word_t *cols,
                                   int32_t *sums) {
    const uint32_t per_word = 32u / bits;
    const int32_t scale = bits == 8u ? 1 : bits == 4u ? 16 : 64;
    const uint32_t w_row = mpq_row_bytes(cin, bits);
    const uint32_t full = cin / per_word;
    const uint32_t tail_values = cin - full * per_word;
    const uint32_t step = pixels * per_word / 2u; /* column words per weight word */
    const uint8_t *r0 = weights + o * w_row;
    const mpq_word_t *x = cols;
    int32_t acc[2u * MPQ_MV_ROWS];
    uint32_t w[MPQ_MV_ROWS];
    if (dot_written_out(bits, pixels, rows, r0, w_row, x, full, acc)) {
        x += step * full;
    } else {
#pragma GCC unroll 8
        for (uint32_t i = 0; i < 2u * MPQ_MV_ROWS; ++i) {
            acc[i] = 0;
        }
#pragma GCC unroll 2
        for (uint32_t j = 0; j < full; ++j, x += step) {
#pragma GCC unroll 4
            for (uint32_t r = 0; r < rows; ++r) {
                w[r] = mpq_m7_load_word(r0 + r * w_row + 4u * j);
            }
            mac_word(w, rows, bits, x, pixels, acc);
        }
    }
    if (tail_values != 0u) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            w[r] = load_tail(r0 + r * w_row + 4u * full, w_row - 4u * full, tail_values, bits);
        }
        mac_word(w, rows, bits, x, pixels, acc);
    }
#pragma GCC unroll 4
    for (uint32_t p = 0; p < pixels; ++p) {
#pragma GCC unroll 4
        for (uint32_t r = 0; r < rows; ++r) {
            sums[p * MPQ_M7_MATVEC_CHUNK + o - o0 + r] = bias[o + r] + acc[MPQ_MV_ROWS * p + r] / scale;
        }
    }
}

/* Every output channel of `pixels` (1 or 2, a constant) pixels, a chunk of MPQ_M7_MATVEC_CHUNK at a
 * time, their sums into `sums` ([pixels][MPQ_M7_MATVEC_CHUNK]): four channels at a time for one
 * pixel (then two), two for two (what the registers hold); an odd last channel is computed with
 * the one before it again, and a last chunk of one channel takes the channel before it too (its
 * output stored again, the same value). Then the chunk's outputs are requantized and stored, so
 * the store loop's set-up is paid once per chunk. At least two channels (single_channel). */
MPQ_M7_INLINE void stream_rows(const mpq_m7_matvec_t *m, uint32_t bits, uint32_t pixels, const mpq_word_t *cols,
                               const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y0, int32_t *sums) {
    const uint32_t group = pixels == 1u && bits == 8u ? 4u : 2u;
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    const uint8_t *weights = m->w;
    const uint32_t cin = m->cin;
    const int32_t *bias = rq->bias;
    for (uint32_t next = 0; next < out->c; next += MPQ_M7_MATVEC_CHUNK) {
        const uint32_t left = out->c - next < MPQ_M7_MATVEC_CHUNK ? out->c - next : MPQ_M7_MATVEC_CHUNK;
        const uint32_t o0 = left == 1u ? next - 1u : next, n = left == 1u ? 2u : left;
        uint32_t o = o0;
        if (group == 4u) {
            for (; o + 4u <= o0 + n; o += 4u) {
                stream_channels(weights, cin, bias, bits, pixels, 4u, o, o0, cols, sums);
            }
        }
        for (; o < o0 + n; o += 2u) { /* one call site: each copy of the loops costs flash */
            stream_channels(weights, cin, bias, bits, pixels, 2u, o + 2u <= o0 + n ? o : o - 1u, o0, cols, sums);
        }
        for (uint32_t p = 0; p < pixels; ++p) {
            write_outputs(y0 + p * y_row, o0, n, sums + p * MPQ_M7_MATVEC_CHUNK, rq, out);
        }
    }
}

MPQ_M7_INLINE void stream_pixels(const mpq_m7_matvec_t *m, uint32_t bits, const mpq_word_t *cols,
                                 uint32_t pixels, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y,
                                 int32_t *sums) {
    if (pixels == 2u) {
        stream_rows(m, bits, 2u, cols, rq, out, y, sums);
    } else {
        stream_rows(m, bits, 1u, cols, rq, out, y, sums);
    }
}

/* Whether every one of n shifts is above 32 (mpq_m7_requantize_narrow), four a word: the shifts
 * lie in [1, MPQ_MAX_SHIFT] (mpq_requant_ok), so adding 95 sets a byte's top bit exactly when it
 * is 33 or more, and carries into no other byte. */
static int shifts_narrow(const int8_t *shift, uint32_t n) {
    uint32_t all = 0x80808080u, i = 0;
    for (; i + 4u <= n; i += 4u) {
        all &= mpq_m7_load_word((const uint8_t *)shift + i) + 0x5F5F5F5Fu;
    }
    for (; i < n; ++i) {
        all &= shift[i] > 32 ? 0x80808080u : 0u;
    }
    return all == 0x80808080u;
}

/* Whether the layer has 8-bit weights and outputs and every shift above 32 (its requantization
 * without a branch): the last check of short_rows_fit and few_rows_fit. */
static int narrow_8x8(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out) {
    return m->w_bits == 8u && out->bits == 8u && shifts_narrow(rq->shift, out->c);
}

/* Whether the layer takes short_rows: one pixel of 4, 8, 12 or 16 values, narrow_8x8. */
static int short_rows_fit(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out) {
    return m->pixels == 1u && m->cin % 4u == 0u && m->cin <= 16u && narrow_8x8(m, rq, out);
}

/* A layer of short rows (short_rows_fit), `words` weight words each (a constant after inlining):
 * the pixel's lane words (cols) stay in registers, and each output channel's dot product,
 * requantization and store follow one another, so a layer of few inputs (an autoencoder's 8-wide
 * bottleneck) pays per channel its weight loads, widenings, SMLADs and requantization only. */
MPQ_M7_INLINE void short_rows(const mpq_m7_matvec_t *m, uint32_t words, const mpq_word_t *cols,
                              const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    uint32_t x[8];
#pragma GCC unroll 8
    for (uint32_t i = 0; i < 2u * words; ++i) {
        x[i] = cols[i];
    }
    const uint8_t *w = m->w;
    const int32_t *bias = rq->bias, *mult = rq->mult; /* locals: the stores through y may alias them */
    const int8_t *shift = rq->shift;
    const uint32_t n = out->c;
    y += out->c0;
    for (uint32_t o = 0; o < n; ++o, w += 4u * words) {
        int32_t acc = bias[o];
#pragma GCC unroll 4
        for (uint32_t j = 0; j < words; ++j) {
            const uint32_t v = mpq_m7_load_word(w + 4u * j);
            acc = mpq_smlad(x[2u * j], mpq_sxtb16(v), acc);
            acc = mpq_smlad(x[2u * j + 1u], mpq_sxtb16_ror8(v), acc);
        }
        mpq_m7_store_as(y, o, 8u, acc, mult[o], shift[o], MPQ_M7_RQ_NARROW);
    }
}

/* Whether the layer takes few_rows: one pixel of more than 16 8-bit values (fewer take short_rows),
 * a whole number of words of them, word-aligned input and weights (dot2_w8_raw's LDRD), 2 to
 * MPQ_M7_FEW_ROWS output channels, 8-bit weights, and int32 outputs (a classifier's logits) or
 * narrow_8x8. */
static int few_rows_fit(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out) {
    return m->pixels == 1u && out->c >= 2u && m->in_bits == 8u && m->cin > 16u && m->cin % 4u == 0u &&
           ((uintptr_t)m->x | (uintptr_t)m->w) % 4u == 0u && out->c <= MPQ_M7_FEW_ROWS &&
           ((m->w_bits == 8u && out->bits == 32u) || narrow_8x8(m, rq, out));
}

/* few_rows at `bits` (8 or 32, a constant after inlining) of output: each group (four channels,
 * then two) reads the pixel raw (dot_raw_w8) from its bias on, then stores its outputs,
 * requantized (8) or as they are (32). An odd last channel is computed with the one before it
 * again. */
MPQ_M7_INLINE void few_rows_as(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out,
                               uint8_t *y, uint32_t bits) {
    const uint32_t k = mpq_pair(m->in_offset, m->in_offset), cin = m->cin, n = out->c, c0 = out->c0;
    const int32_t *bias = rq->bias, *mult = rq->mult; /* locals: the stores through y may alias them */
    const int8_t *shift = rq->shift;
    int32_t acc[MPQ_MV_ROWS];
    for (uint32_t o = 0; o < n;) {
        const uint32_t rows = n - o >= 4u ? 4u : 2u, at = n - o == 1u ? o - 1u : o;
        dot_raw_w8(rows, m->w + at * cin, cin, m->x, cin / 4u, k, bias + at, acc);
        for (uint32_t r = 0; r < rows; ++r) {
            mpq_m7_store_as(y, c0 + at + r, bits, acc[r], bits == 32u ? 0 : mult[at + r],
                            bits == 32u ? 0 : shift[at + r], MPQ_M7_RQ_NARROW);
        }
        o = at + rows;
    }
}

/* A layer of few output channels (few_rows_fit), at least two: filled lane words would serve at
 * most three groups of four channels, fewer than pay for the fill, so each group reads the pixel
 * raw (few_rows_as). */
__attribute__((noinline)) static void few_rows(const mpq_m7_matvec_t *m, const mpq_requant_t *rq,
                                               const mpq_dims_t *out, uint8_t *y) {
    if (out->bits == 32u) {
        few_rows_as(m, rq, out, y, 32u);
    } else {
        few_rows_as(m, rq, out, y, 8u);
    }
}

/* A layer of one output channel, which has no neighbour to stream with: its weight row and each
 * pixel unpacked (w: int16 [padded], tmp: int16 [padded]) and multiplied a pair at a time. */
static void single_channel(const mpq_m7_matvec_t *m, uint32_t padded, const mpq_requant_t *rq,
                           const mpq_dims_t *out, uint8_t *y, int16_t *tmp, int16_t *w) {
    const uint32_t x_row = mpq_row_bytes(m->cin, m->in_bits);
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    memset(tmp + m->cin, 0, (padded - m->cin) * sizeof(int16_t));
    memset(w + m->cin, 0, (padded - m->cin) * sizeof(int16_t));
    mpq_m7_unpack_weights(m->w, m->cin, m->w_bits, w);
    const mpq_word_t *wp = (const mpq_word_t *)(void *)w, *xp = (const mpq_word_t *)(void *)tmp;
    for (uint32_t p = 0; p < m->pixels; ++p, y += y_row) {
        mpq_m7_unpack_activations(m->x + p * x_row, m->cin, m->in_bits, m->in_offset, tmp);
        int32_t sum = rq->bias[0];
        for (uint32_t i = 0; i < padded / 2u; ++i) {
            sum = mpq_smlad(xp[i], wp[i], sum);
        }
        mpq_m7_clear_outputs(y, out);
        write_outputs(y, 0u, 1u, &sum, rq, out);
    }
}

void mpq_m7_matvec(const mpq_m7_matvec_t *m, const mpq_requant_t *rq, const mpq_dims_t *out, uint8_t *y) {
    if (few_rows_fit(m, rq, out)) { /* first: it needs none of the set-up below */
        few_rows(m, rq, out, y);
        return;
    }
    const uint32_t padded = mpq_m7_matvec_padded(m->cin, m->w_bits);
    const uint32_t y_row = mpq_row_bytes(mpq_row_channels(out), out->bits);
    int16_t *tmp = (int16_t *)(void *)mpq_m7_work;
    int16_t *cols = tmp + padded;
    if (out->c == 1u) {
        single_channel(m, padded, rq, out, y, tmp, cols);
        return;
    }
    if (short_rows_fit(m, rq, out)) {
        fill_columns(m, 0u, 1u, padded, tmp, cols);
        const mpq_word_t *lanes = (const mpq_word_t *)cols;
        switch (m->cin / 4u) {
        case 1u:
            short_rows(m, 1u, lanes, rq, out, y);
            break;
        case 2u:
            short_rows(m, 2u, lanes, rq, out, y);
            break;
        case 3u:
            short_rows(m, 3u, lanes, rq, out, y);
            break;
        default:
            short_rows(m, 4u, lanes, rq, out, y);
            break;
        }
        return;
    }
    int32_t *sums = (int32_t *)(void *)(cols + mpq_m7_matvec_columns(m->pixels) * padded); /* padded: 4k */
    for (uint32_t p = 0; p < m->pixels; p += 2u) {
        const uint32_t pixels = m->pixels - p < 2u ? 1u : 2u;
        uint8_t *yp = y + p * y_row;
        fill_columns(m, p, pixels, padded, tmp, cols);
        mpq_m7_clear_outputs(yp, out);
        if (pixels == 2u) {
            mpq_m7_clear_outputs(yp + y_row, out);
        }
        switch (m->w_bits) {
        case 8u:
            stream_pixels(m, 8u, (const mpq_word_t *)cols, pixels, rq, out, yp, sums);
            break;
        case 4u:
            stream_pixels(m, 4u, (const mpq_word_t *)cols, pixels, rq, out, yp, sums);
            break;
        default:
            stream_pixels(m, 2u, (const mpq_word_t *)cols, pixels, rq, out, yp, sums);
            break;
        }
    }
}
