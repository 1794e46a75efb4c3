/*
 * The vector table of the STM32H743 (Cortex-M7, 150 external interrupts, RM0433 Table 145).
 * Reset and fault entry are shared by every Cortex-M7 BSP: firmware/bsp/cortex-m7/cm7_startup.c.
 */
#include "stm32h7_regs.h"

#define N_EXTERNAL_IRQS 150

extern uint32_t __stack_top__;
void SysTick_Handler(void);
void USART3_IRQHandler(void);

__attribute__((section(".isr_vector"), used)) const cm7_vector_t cm7_vectors[16 + N_EXTERNAL_IRQS] = {
    [0] = (cm7_vector_t)&__stack_top__,
    [1] = Reset_Handler,
    [2 ... 14] = Fault_Handler, /* NMI, HardFault, MemManage, BusFault, UsageFault, SVC, ... */
    [15] = SysTick_Handler,
    [16 ... 16 + USART3_IRQ - 1] = Fault_Handler,
    [16 + USART3_IRQ] = USART3_IRQHandler,
    [16 + USART3_IRQ + 1 ... 16 + N_EXTERNAL_IRQS - 1] = Fault_Handler,
};
