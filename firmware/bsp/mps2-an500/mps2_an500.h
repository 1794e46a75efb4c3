/*
 * Registers of the MPS2 AN500 image (Cortex-M7) as QEMU's `mps2-an500` machine models them
 * (hw/arm/mps2.c): CMSDK APB UART0 at 0x40004000 (RX IRQ 0), and the 25 MHz system clock
 * (core peripherals: cm7_core.h). Private to this BSP.
 */
#ifndef MPS2_AN500_H
#define MPS2_AN500_H

#include <stdint.h>

#include "cm7_core.h"

#define MPS2_SYSCLK_HZ 25000000u

/* CMSDK APB UART0 */
#define UART0_BASE 0x40004000u
#define UART0_DATA REG32(UART0_BASE + 0x00u)
#define UART0_STATE REG32(UART0_BASE + 0x04u)
#define UART0_CTRL REG32(UART0_BASE + 0x08u)
#define UART0_INTSTATUS REG32(UART0_BASE + 0x0Cu) /* write 1 to clear */
#define UART0_BAUDDIV REG32(UART0_BASE + 0x10u)
#define UART_STATE_TX_FULL (1u << 0)
#define UART_STATE_RX_FULL (1u << 1)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQ 0u

/* Set up by the other BSP files, called once from bsp_init(). */
void mps2_uart_init(void);
void mps2_ticks_init(void);

#endif /* MPS2_AN500_H */
