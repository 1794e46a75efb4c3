/*
 * Cortex-M7 core peripherals shared by every BSP (ARMv7-M Architecture Reference Manual,
 * Cortex-M7 TRM): SysTick, NVIC, SCB, DWT; and the reset/fault entry points of cm7_startup.c.
 * A BSP's own header includes this one and adds its MCU's peripherals.
 */
#ifndef CM7_CORE_H
#define CM7_CORE_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* SysTick */
#define SYST_CSR REG32(0xE000E010u)       /* control and status */
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SYST_RVR REG32(0xE000E014u)       /* reload value (24 bits) */
#define SYST_CVR REG32(0xE000E018u)       /* current value; any write clears it */
#define SYST_RELOAD_MAX 0x00FFFFFFu       /* 24-bit down counter */

/* NVIC */
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n)) /* interrupt set-enable */

/* System control block */
#define SCB_ICSR REG32(0xE000ED04u)       /* interrupt control and state */
#define SCB_ICSR_PENDSTSET (1u << 26)     /* SysTick pending */
#define SCB_ICSR_PENDSTCLR (1u << 25)     /* clear SysTick pending */
#define SCB_VTOR REG32(0xE000ED08u)       /* vector table offset */
#define SCB_CCR REG32(0xE000ED14u)        /* configuration and control */
#define SCB_CCR_DC (1u << 16)             /* data cache enable */
#define SCB_CCR_IC (1u << 17)             /* instruction cache enable */
#define SCB_CFSR REG32(0xE000ED28u)       /* configurable fault status */
#define SCB_HFSR REG32(0xE000ED2Cu)       /* HardFault status */
#define SCB_MMFAR REG32(0xE000ED34u)      /* MemManage fault address */
#define SCB_BFAR REG32(0xE000ED38u)       /* BusFault address */
#define SCB_CCSIDR REG32(0xE000ED80u)     /* cache size ID of the level CSSELR selects */
#define SCB_CSSELR REG32(0xE000ED84u)     /* cache size selection: 0 = L1 data cache */
#define SCB_CPACR REG32(0xE000ED88u)      /* coprocessor access control */
#define SCB_CPACR_CP10_CP11_FULL (0xFu << 20)
#define SCB_ICIALLU REG32(0xE000EF50u)    /* invalidate the whole instruction cache */
#define SCB_DCISW REG32(0xE000EF60u)      /* invalidate a data cache line by set/way */
#define DEMCR REG32(0xE000EDFCu)          /* debug exception and monitor control */
#define DEMCR_TRCENA (1u << 24)           /* enables DWT and ITM */

/* Data watchpoint and trace unit */
#define DWT_CTRL REG32(0xE0001000u)       /* control */
#define DWT_CTRL_CYCCNTENA (1u << 0)      /* cycle counter enable */
#define DWT_CYCCNT REG32(0xE0001004u)     /* cycle count */
#define DWT_LAR REG32(0xE0001FB0u)        /* lock access register: the M7's DWT powers up locked */
#define DWT_LAR_UNLOCK 0xC5ACCE55u

/* Entry points of cm7_startup.c, for the BSP's vector table (named cm7_vectors, placed in
 * section .isr_vector): reset, and one handler for every fault or unexpected interrupt that
 * reports over the UART (bsp_on_fault) and stops. */
typedef void (*cm7_vector_t)(void);
extern const cm7_vector_t cm7_vectors[];
void Reset_Handler(void);
void Fault_Handler(void);

#endif /* CM7_CORE_H */
