/*
 * The 64-bit tick counter: DWT CYCCNT (32 bits, core clock cycles) extended in software. Every
 * reading adds the distance from the previous one (mod 2^32), so the count is exact as long as
 * readings are less than 2^32 cycles apart (8.9 s at 480 MHz); the SysTick interrupt reads it
 * every 2^24 cycles (35 ms at 480 MHz) to guarantee that, whatever the application does.
 */
#include "bsp.h"
#include "stm32h7_regs.h"

#define SYSTICK_RELOAD 0x00FFFFFFu

static volatile uint32_t last_cyccnt;
static volatile uint64_t total;

void SysTick_Handler(void);

void stm32h7_ticks_init(void) {
    DEMCR |= DEMCR_TRCENA;       /* power the DWT */
    DWT_LAR = DWT_LAR_UNLOCK;    /* the M7's DWT ignores writes until unlocked */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    last_cyccnt = 0u;
    total = 0u;
    SYST_CSR = 0u;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint64_t bsp_ticks(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    uint32_t now = DWT_CYCCNT;
    uint64_t ticks = total + (uint32_t)(now - last_cyccnt);
    total = ticks;
    last_cyccnt = now;
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
    return ticks;
}

/* A cycle counter has no period to restart: a timed region starts at any cycle. */
uint64_t bsp_ticks_align(void) {
    return bsp_ticks();
}

void SysTick_Handler(void) {
    (void)bsp_ticks();
}
