/*
 * The 64-bit tick counter: SysTick at the 25 MHz core clock, its wraps counted by the SysTick
 * interrupt. Under QEMU -icount shift=0 one tick is 40 instructions.
 *
 * MPS2_SYSTICK_RELOAD (default: the 24-bit maximum) may be made small to test the extension.
 */
#include "bsp.h"
#include "mps2_an500.h"

#ifndef MPS2_SYSTICK_RELOAD
#define MPS2_SYSTICK_RELOAD SYST_RELOAD_MAX
#endif
#if MPS2_SYSTICK_RELOAD < 255 || MPS2_SYSTICK_RELOAD > SYST_RELOAD_MAX
#error "MPS2_SYSTICK_RELOAD must be in 255 .. 0xFFFFFF"
#endif
#define PERIOD ((uint64_t)MPS2_SYSTICK_RELOAD + 1u) /* ticks per wrap */

static volatile uint32_t wraps; /* wraps the interrupt has counted since the last restart */
static volatile uint64_t base;  /* ticks counted before the last restart (bsp_ticks_align) */

void SysTick_Handler(void) {
    wraps = wraps + 1u;
}

void mps2_ticks_init(void) {
    SYST_CSR = 0;
    SYST_RVR = MPS2_SYSTICK_RELOAD;
    SYST_CVR = 0; /* any write clears the counter; it reloads on the next clock */
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

/*
 * Race-free read. The counter runs RELOAD, ..., 1, 0 and pends the interrupt on reaching 0, so a
 * period starts at 0: ticks = (wraps + pending) * PERIOD + (PERIOD - value) mod PERIOD. The
 * pending flag is sampled before and after the value; if it changed, or the interrupt ran
 * meanwhile (wraps changed), the sample is retried, so flag and value always belong together.
 */
uint64_t bsp_ticks(void) {
    uint32_t high, value, pending_before, pending_after;
    do {
        high = wraps;
        pending_before = SCB_ICSR & SCB_ICSR_PENDSTSET;
        value = SYST_CVR;
        pending_after = SCB_ICSR & SCB_ICSR_PENDSTSET;
    } while (pending_before != pending_after || high != wraps);
    uint64_t whole = (uint64_t)high + (pending_after ? 1u : 0u);
    uint64_t into_period = value == 0u ? 0u : PERIOD - value;
    return base + whole * PERIOD + into_period;
}

/*
 * Restart the SysTick period now. Writing SYST_CVR clears the counter, and QEMU's model starts
 * the next period at the instant of the write (its ptimer reloads relative to the current
 * virtual time), so the tick edges that follow sit at fixed instruction distances from here.
 * The ticks counted so far move into `base`, keeping bsp_ticks() monotonic; a wrap pended
 * before the write is part of `now` and is cleared with the write. Interrupts are masked so
 * the handler cannot count a wrap in between.
 */
uint64_t bsp_ticks_align(void) {
    __asm volatile("cpsid i" ::: "memory");
    uint64_t now = bsp_ticks();
    SYST_CVR = 0;
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
    wraps = 0;
    base = now;
    __asm volatile("cpsie i" ::: "memory");
    return now;
}
