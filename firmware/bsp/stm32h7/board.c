/*
 * Board facts and bring-up of the STM32H743 (RM0433): LDO supply, voltage scaling, flash wait
 * states and PLL1 from the 64 MHz HSI, then caches, USART3 and the cycle counter.
 *
 * STM32H7_SYSCLK_MHZ picks the core clock (a board setting, passed by the Makefile's board table):
 *   480  VOS0 (VOS1 + SYSCFG overdrive): silicon revision V only;
 *   400  VOS1: revision Y and V.
 * The HSI is used rather than the HSE so the image needs no solder-bridge change on the Nucleo
 * (its 8 MHz HSE comes from the ST-LINK's MCO only on some board revisions).
 */
#include "bsp.h"
#include "stm32h7_regs.h"

#ifndef BSP_BOARD_NAME
#error "BSP_BOARD_NAME must be defined (the Makefile passes the BOARD name)"
#endif
#ifndef BSP_COUNTER_KIND
#define BSP_COUNTER_KIND BSP_COUNTER_CORE_CYCLES
#endif
#ifndef STM32H7_SYSCLK_MHZ
#define STM32H7_SYSCLK_MHZ 480
#endif

/* PLL1 from HSI 64 MHz: ref1_ck = 64 / DIVM1 = 16 MHz, VCO = 16 * DIVN1, sys_ck = VCO / DIVP1.
 * Flash: RM0433 Table 17 (AXI clock = sys_ck / 2). */
#define PLL1_DIVM 4u
#define PLL1_DIVP 2u
#if STM32H7_SYSCLK_MHZ == 480
#define PLL1_DIVN 60u       /* VCO 960 MHz */
#define FLASH_WAIT_STATES 4u /* 240 MHz AXI at VOS0 */
#define USE_OVERDRIVE 1
#elif STM32H7_SYSCLK_MHZ == 400
#define PLL1_DIVN 50u       /* VCO 800 MHz */
#define FLASH_WAIT_STATES 2u /* 200 MHz AXI at VOS1 */
#define USE_OVERDRIVE 0
#else
#error "STM32H7_SYSCLK_MHZ must be 480 (revision V) or 400"
#endif
#define FLASH_WRHIGHFREQ 2u
#define SYSCLK_HZ ((uint32_t)STM32H7_SYSCLK_MHZ * 1000000u)
#define HSI_HZ 64000000u

/* NULL, or why the clock tree is not what the board file says (see bsp_boot_problem). */
static const char *boot_problem;

const char bsp_board_name[] = BSP_BOARD_NAME;
const uint8_t bsp_counter_kind = BSP_COUNTER_KIND;
const uint32_t bsp_counter_hz = SYSCLK_HZ; /* DWT CYCCNT counts core clock cycles */
const uint32_t bsp_core_hz = SYSCLK_HZ;

/* Supply and voltage scaling, RM0433 §6.8.4 / §6.6.2: LDO on, bypass off, then lock the supply
 * configuration (SCUEN is write-once) and raise VOS to scale 1 (and overdrive for 480 MHz). */
static void power_init(void) {
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_BYPASS | PWR_CR3_SCUEN)) | PWR_CR3_LDOEN;
    (void)stm32h7_wait(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY);
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MASK) | PWR_D3CR_VOS_SCALE1;
    (void)stm32h7_wait(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY);
#if USE_OVERDRIVE
    RCC_APB4ENR |= RCC_APB4ENR_SYSCFGEN;
    (void)RCC_APB4ENR; /* read back: the clock is on before SYSCFG is written */
    SYSCFG_PWRCR |= SYSCFG_PWRCR_ODEN;
    (void)stm32h7_wait(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY);
#endif
}

/* Flash latency first (the clock only goes up after it reads back), RM0433 §4.3.8. */
static void flash_init(void) {
    FLASH_ACR = (FLASH_ACR & ~(FLASH_ACR_LATENCY_MASK | FLASH_ACR_WRHIGHFREQ_MASK)) |
                FLASH_ACR_LATENCY(FLASH_WAIT_STATES) | FLASH_ACR_WRHIGHFREQ(FLASH_WRHIGHFREQ);
    (void)stm32h7_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_LATENCY(FLASH_WAIT_STATES));
}

/* PLL1 on the HSI, bus prescalers, then switch sys_ck to pll1_p_ck, RM0433 §8.5. */
void stm32h7_clock_init(void) {
    power_init();
    flash_init();
    RCC_CR = (RCC_CR & ~RCC_CR_HSIDIV_MASK) | RCC_CR_HSION;
    (void)stm32h7_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_CR &= ~RCC_CR_PLL1ON; /* PLL1 must be off while it is configured */
    (void)stm32h7_wait(&RCC_CR, RCC_CR_PLL1RDY, 0u);
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~(RCC_PLLCKSELR_PLLSRC_MASK | RCC_PLLCKSELR_DIVM1_MASK)) |
                    RCC_PLLCKSELR_DIVM1(PLL1_DIVM);
    RCC_PLL1DIVR = RCC_PLL1DIVR_DIVN1(PLL1_DIVN) | RCC_PLL1DIVR_DIVP1(PLL1_DIVP) |
                   RCC_PLL1DIVR_DIVQ1(4u) | RCC_PLL1DIVR_DIVR1(2u);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~(RCC_PLLCFGR_PLL1FRACEN | RCC_PLLCFGR_PLL1VCOSEL | RCC_PLLCFGR_PLL1RGE_MASK)) |
                  RCC_PLLCFGR_PLL1RGE_8_16MHZ | RCC_PLLCFGR_DIVP1EN;
    RCC_CR |= RCC_CR_PLL1ON;
    if (!stm32h7_wait(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY)) {
        /* no lock: stay on the HSI (bus prescalers at their reset value 1) rather than switch to
         * a dead clock; the UART is then set up for the HSI, so the hello that says so is legible */
        boot_problem = "PLL1 did not lock: the core runs on the 64 MHz HSI, not the board's clock";
        return;
    }
    RCC_D1CFGR = RCC_D1CFGR_D1CPRE_DIV1 | RCC_D1CFGR_HPRE_DIV2 | RCC_D1CFGR_D1PPRE_DIV2;
    RCC_D2CFGR = RCC_D2CFGR_D2PPRE1_DIV2 | RCC_D2CFGR_D2PPRE2_DIV2;
    RCC_D3CFGR = RCC_D3CFGR_D3PPRE_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    (void)stm32h7_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL1);
}

/* USART3's kernel clock: rcc_pclk1 (the reset selection of RCC_D2CCIP2R.USART234578SEL) =
 * sys_ck / 2 (HPRE) / 2 (D2PPRE1) on the PLL, the undivided HSI when PLL1 did not lock. */
uint32_t stm32h7_usart3_clock_hz(void) {
    return boot_problem == 0 ? SYSCLK_HZ / 4u : HSI_HZ;
}

const char *bsp_boot_problem(void) {
    return boot_problem;
}

void bsp_init(void) {
    stm32h7_clock_init();
    stm32h7_cache_init();
    stm32h7_uart_init();
    stm32h7_ticks_init();
    __asm__ volatile("cpsie i" ::: "memory");
}
