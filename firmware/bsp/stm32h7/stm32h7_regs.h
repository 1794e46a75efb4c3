/*
 * The few STM32H743 registers this BSP touches, from RM0433 (STM32H742/743/750/753 reference
 * manual) and the ARMv7-M / Cortex-M7 documents for the core peripherals. No vendor HAL: every
 * register is named as in the manual, with the section it comes from. Private to this BSP.
 */
#ifndef STM32H7_REGS_H
#define STM32H7_REGS_H

#include <stdint.h>

#include "cm7_core.h"

/* ---- PWR, RM0433 §6.8 (base 0x5802 4800) ---------------------------------------------- */
#define PWR_BASE 0x58024800u
#define PWR_CSR1 REG32(PWR_BASE + 0x04u)   /* control status register 1 */
#define PWR_CSR1_ACTVOSRDY (1u << 13)      /* VOS level of the regulator is ready */
#define PWR_CR3 REG32(PWR_BASE + 0x0Cu)    /* control register 3: supply configuration */
#define PWR_CR3_BYPASS (1u << 0)           /* power management unit bypass */
#define PWR_CR3_LDOEN (1u << 1)            /* LDO regulator enable */
#define PWR_CR3_SCUEN (1u << 2)            /* supply configuration update enable (write-once) */
#define PWR_D3CR REG32(PWR_BASE + 0x18u)   /* D3 domain control register: voltage scaling */
#define PWR_D3CR_VOS_MASK (3u << 14)       /* VOS: 01 scale 3, 10 scale 2, 11 scale 1 */
#define PWR_D3CR_VOS_SCALE1 (3u << 14)
#define PWR_D3CR_VOSRDY (1u << 13)         /* VOS ready */

/* ---- SYSCFG, RM0433 §12.3 (base 0x5800 0400) ------------------------------------------ */
#define SYSCFG_BASE 0x58000400u
#define SYSCFG_PWRCR REG32(SYSCFG_BASE + 0x2Cu) /* power control register */
#define SYSCFG_PWRCR_ODEN (1u << 0)        /* overdrive: VOS1 + ODEN = VOS0 (480 MHz, revision V) */

/* ---- FLASH, RM0433 §4.9 (base 0x5200 2000) -------------------------------------------- */
#define FLASH_BASE_REG 0x52002000u
#define FLASH_ACR REG32(FLASH_BASE_REG + 0x00u) /* access control register */
#define FLASH_ACR_LATENCY_MASK (0xFu << 0)      /* read latency in AXI clock cycles (wait states) */
#define FLASH_ACR_WRHIGHFREQ_MASK (3u << 4)     /* flash signal delay (programming) */
#define FLASH_ACR_LATENCY(ws) ((uint32_t)(ws) << 0)
#define FLASH_ACR_WRHIGHFREQ(n) ((uint32_t)(n) << 4)

/* ---- RCC, RM0433 §8.7 (base 0x5802 4400) ---------------------------------------------- */
#define RCC_BASE 0x58024400u
#define RCC_CR REG32(RCC_BASE + 0x00u)      /* source control register */
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_MASK (3u << 3)        /* HSI divider: 00 = 64 MHz */
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR REG32(RCC_BASE + 0x10u)    /* clock configuration register */
#define RCC_CFGR_SW_MASK (7u << 0)          /* system clock switch */
#define RCC_CFGR_SW_PLL1 (3u << 0)
#define RCC_CFGR_SWS_MASK (7u << 3)         /* system clock switch status */
#define RCC_CFGR_SWS_PLL1 (3u << 3)
#define RCC_D1CFGR REG32(RCC_BASE + 0x18u)  /* domain 1 clock configuration */
#define RCC_D1CFGR_HPRE_DIV2 (8u << 0)      /* AXI/AHB clock = sys_d1cpre_ck / 2 */
#define RCC_D1CFGR_D1PPRE_DIV2 (4u << 4)    /* APB3 = HCLK / 2 */
#define RCC_D1CFGR_D1CPRE_DIV1 (0u << 8)    /* core clock = sys_ck */
#define RCC_D2CFGR REG32(RCC_BASE + 0x1Cu)  /* domain 2 clock configuration */
#define RCC_D2CFGR_D2PPRE1_DIV2 (4u << 4)   /* APB1 (USART3) = HCLK / 2 */
#define RCC_D2CFGR_D2PPRE2_DIV2 (4u << 8)   /* APB2 = HCLK / 2 */
#define RCC_D3CFGR REG32(RCC_BASE + 0x20u)  /* domain 3 clock configuration */
#define RCC_D3CFGR_D3PPRE_DIV2 (4u << 4)    /* APB4 = HCLK / 2 */
#define RCC_PLLCKSELR REG32(RCC_BASE + 0x28u) /* PLLs clock source selection */
#define RCC_PLLCKSELR_PLLSRC_MASK (3u << 0)   /* 00 = HSI */
#define RCC_PLLCKSELR_DIVM1_MASK (0x3Fu << 4)
#define RCC_PLLCKSELR_DIVM1(m) ((uint32_t)(m) << 4) /* ref1_ck = source / DIVM1 */
#define RCC_PLLCFGR REG32(RCC_BASE + 0x2Cu)   /* PLLs configuration */
#define RCC_PLLCFGR_PLL1FRACEN (1u << 0)
#define RCC_PLLCFGR_PLL1VCOSEL (1u << 1)      /* 0: wide VCO range (192..960 MHz) */
#define RCC_PLLCFGR_PLL1RGE_MASK (3u << 2)
#define RCC_PLLCFGR_PLL1RGE_8_16MHZ (3u << 2) /* ref1_ck input range 8..16 MHz */
#define RCC_PLLCFGR_DIVP1EN (1u << 16)        /* pll1_p_ck output enable */
#define RCC_PLL1DIVR REG32(RCC_BASE + 0x30u)  /* PLL1 dividers: fields hold (value - 1) */
#define RCC_PLL1DIVR_DIVN1(n) ((uint32_t)((n) - 1u) << 0)
#define RCC_PLL1DIVR_DIVP1(p) ((uint32_t)((p) - 1u) << 9)
#define RCC_PLL1DIVR_DIVQ1(q) ((uint32_t)((q) - 1u) << 16)
#define RCC_PLL1DIVR_DIVR1(r) ((uint32_t)((r) - 1u) << 24)
#define RCC_AHB4ENR REG32(RCC_BASE + 0xE0u)   /* AHB4 peripheral clock enable */
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR REG32(RCC_BASE + 0xE8u)  /* APB1 low peripheral clock enable */
#define RCC_APB1LENR_USART3EN (1u << 18)
#define RCC_APB4ENR REG32(RCC_BASE + 0xF4u)   /* APB4 peripheral clock enable */
#define RCC_APB4ENR_SYSCFGEN (1u << 1)

/* ---- GPIOD, RM0433 §11.4 (base 0x5802 0C00) ------------------------------------------- */
#define GPIOD_BASE 0x58020C00u
#define GPIOD_MODER REG32(GPIOD_BASE + 0x00u)   /* 2 bits per pin: 10 = alternate function */
#define GPIOD_OSPEEDR REG32(GPIOD_BASE + 0x08u) /* 2 bits per pin: 10 = high speed */
#define GPIOD_AFRH REG32(GPIOD_BASE + 0x24u)    /* 4 bits per pin for pins 8..15 */
#define GPIO_MODE_AF 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_AF7_USART3 7u

/* ---- USART3, RM0433 §48.7 (base 0x4000 4800; ST-LINK virtual COM port on PD8 TX, PD9 RX) */
#define USART3_BASE 0x40004800u
#define USART3_CR1 REG32(USART3_BASE + 0x00u)  /* control register 1 */
#define USART_CR1_UE (1u << 0)                 /* USART enable */
#define USART_CR1_RE (1u << 2)                 /* receiver enable */
#define USART_CR1_TE (1u << 3)                 /* transmitter enable */
#define USART_CR1_RXNEIE (1u << 5)             /* RXNE (RX FIFO not empty) interrupt enable */
#define USART_CR1_FIFOEN (1u << 29)            /* 16-byte RX/TX FIFOs */
#define USART3_CR2 REG32(USART3_BASE + 0x04u)  /* control register 2: 1 stop bit at reset */
#define USART3_CR3 REG32(USART3_BASE + 0x08u)  /* control register 3 */
#define USART_CR3_OVRDIS (1u << 12)            /* overrun disable: keep receiving after an overrun */
#define USART3_BRR REG32(USART3_BASE + 0x0Cu)  /* baud rate: usart_ker_ck / baud (OVER8 = 0) */
#define USART3_ISR REG32(USART3_BASE + 0x1Cu)  /* interrupt and status register */
#define USART_ISR_PE (1u << 0)
#define USART_ISR_FE (1u << 1)
#define USART_ISR_NE (1u << 2)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)               /* a received byte is waiting (RXFNE with FIFO) */
#define USART_ISR_TXE (1u << 7)                /* room for a byte to send (TXFNF with FIFO) */
#define USART3_ICR REG32(USART3_BASE + 0x20u)  /* interrupt flag clear register */
#define USART_ICR_ERRORS (USART_ISR_PE | USART_ISR_FE | USART_ISR_NE | USART_ISR_ORE) /* same bits */
#define USART3_RDR REG32(USART3_BASE + 0x24u)  /* receive data */
#define USART3_TDR REG32(USART3_BASE + 0x28u)  /* transmit data */
#define USART3_IRQ 39u                         /* RM0433 Table 145 (NVIC position) */

/* Set up by the other BSP files, called once from bsp_init(). */
void stm32h7_clock_init(void);
void stm32h7_cache_init(void);
void stm32h7_uart_init(void);
void stm32h7_ticks_init(void);
uint32_t stm32h7_usart3_clock_hz(void); /* USART3 kernel clock after stm32h7_clock_init() */

/* Spin until (reg & mask) == value, for at most STM32H7_READY_SPINS reads; true if it got there.
 * A flag that never comes (an emulator that does not model it) costs a bounded delay, not a hang. */
#define STM32H7_READY_SPINS 1000000u
static inline int stm32h7_wait(volatile uint32_t *reg, uint32_t mask, uint32_t value) {
    for (uint32_t spin = 0; spin < STM32H7_READY_SPINS; ++spin) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

#endif /* STM32H7_REGS_H */
