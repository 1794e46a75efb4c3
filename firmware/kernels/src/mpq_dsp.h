/*
 * The Cortex-M DSP-extension instructions the _m7 kernels use, one inline function each.
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33) they are the ACLE
 * intrinsics, i.e. single instructions. Everywhere else (the host, where the kernel tests run
 * through ctypes) they are exact C emulations of the same instructions, so the optimized
 * kernels compile and are checked bit for bit on any machine.
 *
 * Lanes: a uint32_t holds two int16 halfwords, lane 0 in bits 15:0, lane 1 in bits 31:16.
 * Sums wrap modulo 2^32 as the instructions do (computed in uint32_t: no signed overflow);
 * the kernels' accumulators never actually wrap (docs/integer-arithmetic.md, "Accumulator range").
 */
#ifndef MPQ_DSP_H
#define MPQ_DSP_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MPQ_HAVE_DSP 1
#else
#define MPQ_HAVE_DSP 0
#endif

#if !MPQ_HAVE_DSP
/* Lane i of a word as a signed 16-bit value (two's complement, no implementation-defined cast). */
static inline int32_t mpq_lane_s16(uint32_t v, unsigned lane) {
    const int32_t h = (int32_t)((v >> (16u * lane)) & 0xFFFFu);
    return h >= 0x8000 ? h - 0x10000 : h;
}

static inline uint32_t mpq_wrap_add(int32_t acc, int32_t a, int32_t b) {
    return (uint32_t)acc + (uint32_t)a + (uint32_t)b;
}

/* uint32 -> int32 with the two's-complement meaning (what the instructions write). */
static inline int32_t mpq_as_s32(uint32_t v) {
    return v < 0x80000000u ? (int32_t)v : (int32_t)(v - 0x80000000u) - 0x7FFFFFFF - 1;
}
#endif

/* SMLAD: acc + lo(a)*lo(b) + hi(a)*hi(b), two signed 16-bit MACs. */
static inline int32_t mpq_smlad(uint32_t a, uint32_t b, int32_t acc) {
#if MPQ_HAVE_DSP
    return __smlad(a, b, acc);
#else
    return mpq_as_s32(mpq_wrap_add(acc, mpq_lane_s16(a, 0) * mpq_lane_s16(b, 0),
                                   mpq_lane_s16(a, 1) * mpq_lane_s16(b, 1)));
#endif
}

/* SMLABB: acc + lo(a)*lo(b). */
static inline int32_t mpq_smlabb(uint32_t a, uint32_t b, int32_t acc) {
#if MPQ_HAVE_DSP
    return __smlabb(a, b, acc);
#else
    return mpq_as_s32(mpq_wrap_add(acc, mpq_lane_s16(a, 0) * mpq_lane_s16(b, 0), 0));
#endif
}

/* SMLATT: acc + hi(a)*hi(b). */
static inline int32_t mpq_smlatt(uint32_t a, uint32_t b, int32_t acc) {
#if MPQ_HAVE_DSP
    return __smlatt(a, b, acc);
#else
    return mpq_as_s32(mpq_wrap_add(acc, mpq_lane_s16(a, 1) * mpq_lane_s16(b, 1), 0));
#endif
}

/* SMMUL: the top word of the 64-bit product a*b, i.e. floor(a*b / 2^32). */
static inline int32_t mpq_smmul(int32_t a, int32_t b) {
#if MPQ_HAVE_DSP
    int32_t r;
    __asm__("smmul %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return mpq_as_s32((uint32_t)((uint64_t)((int64_t)a * b) >> 32));
#endif
}

/* SMMLA: the top word of acc * 2^32 + a*b, i.e. floor((a*b + acc * 2^32) / 2^32) (exact while the sum
 * stays within int64). */
static inline int32_t mpq_smmla(int32_t a, int32_t b, int32_t acc) {
#if MPQ_HAVE_DSP
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return mpq_as_s32((uint32_t)((uint64_t)((int64_t)a * b + (int64_t)acc * 4294967296) >> 32));
#endif
}

/* ASR: floor(v / 2^n), 0 <= n < 32 (an arithmetic shift; emulated without shifting a negative number). */
static inline int32_t mpq_asr(int32_t v, uint32_t n) {
#if MPQ_HAVE_DSP
    return v >> n;
#else
    return v >= 0 ? (int32_t)((uint32_t)v >> n) : ~(int32_t)((uint32_t)~v >> n);
#endif
}

/* USAT: v clamped to [0, 2^bits - 1] (one instruction when bits is a constant 2, 4, 8 or 31). */
static inline uint32_t mpq_usat(int32_t v, uint32_t bits) {
#if MPQ_HAVE_DSP
    switch (bits) {
    case 8u:
        return (uint32_t)__usat(v, 8);
    case 4u:
        return (uint32_t)__usat(v, 4);
    case 2u:
        return (uint32_t)__usat(v, 2);
    case 31u:
        return (uint32_t)__usat(v, 31);
    default:
        break;
    }
#endif
    const int32_t top = (int32_t)((1u << bits) - 1u);
    return (uint32_t)(v < 0 ? 0 : (v > top ? top : v));
}

/* SXTB16: bytes 0 and 2 of v, sign-extended into the two halfwords. */
static inline uint32_t mpq_sxtb16(uint32_t v) {
#if MPQ_HAVE_DSP
    return __sxtb16(v);
#else
    return ((v & 0x80u) ? 0xFF00u : 0u) | (v & 0xFFu) | ((v & 0x800000u) ? 0xFF000000u : 0u) | (v & 0xFF0000u);
#endif
}

/* UXTB16: bytes 0 and 2 of v, zero-extended into the two halfwords. */
static inline uint32_t mpq_uxtb16(uint32_t v) {
#if MPQ_HAVE_DSP
    return __uxtb16(v);
#else
    return v & 0x00FF00FFu;
#endif
}

/* SADD16: lane-wise 16-bit addition (each lane wraps on its own). */
static inline uint32_t mpq_sadd16(uint32_t a, uint32_t b) {
#if MPQ_HAVE_DSP
    return __sadd16(a, b);
#else
    return (((a & 0xFFFFu) + (b & 0xFFFFu)) & 0xFFFFu) | (((a >> 16) + (b >> 16)) << 16);
#endif
}

/* UXTAB16: a plus bytes 0 and 2 of v, lane by lane (each lane wraps on its own). */
static inline uint32_t mpq_uxtab16(uint32_t a, uint32_t v) {
#if MPQ_HAVE_DSP
    return __uxtab16(a, v);
#else
    return mpq_sadd16(a, mpq_uxtb16(v));
#endif
}

/* ROR by a constant 0 < n < 32. */
static inline uint32_t mpq_ror(uint32_t v, unsigned n) {
    return (v >> n) | (v << (32u - n));
}

/* UXTB16 with ROR #8: bytes 1 and 3 of v, zero-extended into the two halfwords (one instruction;
 * compilers do not fold the rotation themselves). */
static inline uint32_t mpq_uxtb16_ror8(uint32_t v) {
#if MPQ_HAVE_DSP
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return mpq_uxtb16(mpq_ror(v, 8));
#endif
}

/* UXTAB16 with ROR #8: a plus bytes 1 and 3 of v, lane by lane (one instruction). */
static inline uint32_t mpq_uxtab16_ror8(uint32_t a, uint32_t v) {
#if MPQ_HAVE_DSP
    uint32_t r;
    __asm__("uxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
#else
    return mpq_sadd16(a, mpq_uxtb16_ror8(v));
#endif
}

/* SXTB16 with ROR #8: bytes 1 and 3 of v, sign-extended into the two halfwords (one instruction). */
static inline uint32_t mpq_sxtb16_ror8(uint32_t v) {
#if MPQ_HAVE_DSP
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return mpq_sxtb16(mpq_ror(v, 8));
#endif
}

/* mask & (v << n) for n = 2, 4, 6: one AND with a shifted operand on the core (compilers emit a
 * shift and an AND with an immediate mask instead). */
#if MPQ_HAVE_DSP
#define MPQ_AND_LSL(n)                                                                  \
    static inline uint32_t mpq_and_lsl##n(uint32_t mask, uint32_t v) {                 \
        uint32_t r;                                                                     \
        __asm__("and %0, %1, %2, lsl #" #n : "=r"(r) : "r"(mask), "r"(v));              \
        return r;                                                                       \
    }
#else
#define MPQ_AND_LSL(n)                                                                  \
    static inline uint32_t mpq_and_lsl##n(uint32_t mask, uint32_t v) {                 \
        return mask & (v << n);                                                         \
    }
#endif
MPQ_AND_LSL(2)
MPQ_AND_LSL(4)
MPQ_AND_LSL(6)
#undef MPQ_AND_LSL

/* PKHBT: lane 0 from lo(a), lane 1 from lo(b). */
static inline uint32_t mpq_pack_lo(uint32_t a, uint32_t b) {
#if MPQ_HAVE_DSP
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (a & 0xFFFFu) | (b << 16);
#endif
}

/* PKHTB: lane 0 from hi(a), lane 1 from hi(b). */
static inline uint32_t mpq_pack_hi(uint32_t a, uint32_t b) {
#if MPQ_HAVE_DSP
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (a >> 16) | (b & 0xFFFF0000u);
#endif
}

/* *lo, *hi = the two words at *p (4-byte aligned), then *p += 2: one LDRD with post-increment
 * on the core (compilers split such loads into two LDR). */
static inline void mpq_load2_post(const uint32_t **p, uint32_t *lo, uint32_t *hi) {
#if MPQ_HAVE_DSP
    __asm__ volatile("ldrd %0, %1, [%2], #8" : "=r"(*lo), "=r"(*hi), "+r"(*p) : : "memory");
#else
    *lo = (*p)[0];
    *hi = (*p)[1];
    *p += 2;
#endif
}

/* USUB8 then SEL: the bytewise unsigned maximum of a and b (four uint8 lanes). */
static inline uint32_t mpq_umax8(uint32_t a, uint32_t b) {
#if MPQ_HAVE_DSP
    uint32_t r;
    __asm__("usub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
#else
    uint32_t r = 0u;
    for (unsigned k = 0; k < 32u; k += 8u) {
        const uint32_t x = (a >> k) & 0xFFu, y = (b >> k) & 0xFFu;
        r |= (x >= y ? x : y) << k;
    }
    return r;
#endif
}

/* Two int16 values as one word (lane 0 = lo). */
static inline uint32_t mpq_pair(int32_t lo, int32_t hi) {
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}

#endif /* MPQ_DSP_H */
