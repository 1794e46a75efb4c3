/*
 * The vector table of the mps2-an500 (Cortex-M7, 32 external interrupts). Reset and fault
 * entry are shared by every Cortex-M7 BSP: firmware/bsp/cortex-m7/cm7_startup.c.
 */
#include "mps2_an500.h"

#define N_EXTERNAL_IRQS 32

extern uint32_t __stack_top__;
void SysTick_Handler(void);
void UART0_RX_Handler(void);

__attribute__((section(".isr_vector"), used)) const cm7_vector_t cm7_vectors[16 + N_EXTERNAL_IRQS] = {
    [0] = (cm7_vector_t)&__stack_top__,
    [1] = Reset_Handler,
    [2 ... 14] = Fault_Handler, /* NMI, HardFault, MemManage, BusFault, UsageFault, SVC, ... */
    [15] = SysTick_Handler,
    [16 + UART0_RX_IRQ] = UART0_RX_Handler, /* IRQ 0 */
    [17 ... 16 + N_EXTERNAL_IRQS - 1] = Fault_Handler,
};
