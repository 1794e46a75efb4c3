/*
 * Cortex-M7 L1 caches on (ARMv7-M ARM B2.2.7, Cortex-M7 TRM §3.3): invalidate, then enable.
 * Nothing here uses DMA, so no memory is shared with a bus master that bypasses the D-cache.
 */
#include "stm32h7_regs.h"

#define CCSIDR_SETS(ccsidr) ((((ccsidr) >> 13) & 0x7FFFu) + 1u)
#define CCSIDR_WAYS(ccsidr) ((((ccsidr) >> 3) & 0x3FFu) + 1u)
#define DCISW_SET_SHIFT 5u  /* 32-byte lines */
#define DCISW_WAY_SHIFT 30u /* 4 ways */

static void barrier(void) {
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

void stm32h7_cache_init(void) {
    barrier();
    SCB_ICIALLU = 0u;
    barrier();
    SCB_CCR |= SCB_CCR_IC;
    barrier();

    SCB_CSSELR = 0u; /* level 1 data cache */
    barrier();
    uint32_t ccsidr = SCB_CCSIDR;
    for (uint32_t set = 0; set < CCSIDR_SETS(ccsidr); ++set) {
        for (uint32_t way = 0; way < CCSIDR_WAYS(ccsidr); ++way) {
            SCB_DCISW = (set << DCISW_SET_SHIFT) | (way << DCISW_WAY_SHIFT);
        }
    }
    barrier();
    SCB_CCR |= SCB_CCR_DC;
    barrier();
}
