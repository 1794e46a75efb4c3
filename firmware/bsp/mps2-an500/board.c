/*
 * Board facts and bring-up of QEMU's mps2-an500: everything runs from the 25 MHz system clock,
 * SysTick included, so a tick is a core clock cycle of the model and, under -icount shift=0,
 * 40 executed instructions (docs/protocol.md, counter kind 1).
 */
#include "bsp.h"
#include "mps2_an500.h"

#ifndef BSP_BOARD_NAME
#error "BSP_BOARD_NAME must be defined (the Makefile passes the BOARD name)"
#endif
#ifndef BSP_COUNTER_KIND
#define BSP_COUNTER_KIND BSP_COUNTER_VIRTUAL_TIME
#endif

const char bsp_board_name[] = BSP_BOARD_NAME;
const uint8_t bsp_counter_kind = BSP_COUNTER_KIND;
const uint32_t bsp_counter_hz = MPS2_SYSCLK_HZ;
const uint32_t bsp_core_hz = MPS2_SYSCLK_HZ;

const char *bsp_boot_problem(void) {
    return 0; /* QEMU's clock cannot fail */
}

void bsp_init(void) {
    mps2_uart_init();
    mps2_ticks_init();
    __asm__ volatile("cpsie i" ::: "memory");
}
