/*
 * Reset and fault entry shared by every Cortex-M7 BSP: FPU enable, .data/.bss set-up, vector
 * table relocation, main(); and one fault handler that finds the stacked frame, moves to a safe
 * stack and reports over the UART (bsp_on_fault). The BSP supplies cm7_vectors and the linker
 * script symbols below.
 */
#include <stdint.h>

#include "bsp.h"
#include "cm7_core.h"

#define FAULT_REPORT_STACK 512u /* stack the report needs below a stacked frame */

/* Linker script symbols (every BSP's .ld defines them). */
extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_base__, __stack_top__;

int main(void);
void cm7_fault_report(const uint32_t *frame, uint32_t exception);

void Reset_Handler(void) {
    SCB_CPACR |= SCB_CPACR_CP10_CP11_FULL; /* before any floating-point instruction */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *src = &__data_load__, *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
    SCB_VTOR = (uint32_t)(uintptr_t)cm7_vectors;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    (void)main();
    for (;;) {
    }
}

/*
 * Find the stacked frame (MSP or PSP per EXC_RETURN) and move MSP somewhere safe before any C
 * code runs: just below the frame when it lies inside the stack region with room beneath it,
 * else the top of the stack. A frame outside the stack region is not read (frame = NULL).
 */
__attribute__((naked)) void Fault_Handler(void) {
    __asm__ volatile(
        "cpsid i\n\t"
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "movw r1, #:lower16:__stack_base__\n\t"
        "movt r1, #:upper16:__stack_base__\n\t"
        "movw r2, #:lower16:__stack_top__\n\t"
        "movt r2, #:upper16:__stack_top__\n\t"
        "sub r3, r2, #32\n\t"
        "cmp r0, r1\n\t"
        "blo 1f\n\t"
        "cmp r0, r3\n\t"
        "bhi 1f\n\t"
        "tst r0, #3\n\t"
        "bne 1f\n\t"
        "add r1, r1, %[room]\n\t"
        "cmp r0, r1\n\t"
        "blo 2f\n\t"
        "msr msp, r0\n\t" /* room below the frame: report from there */
        "b 3f\n"
        "1:\n\t"
        "movs r0, #0\n"
        "2:\n\t"
        "msr msp, r2\n"
        "3:\n\t"
        "mrs r1, ipsr\n\t"
        "b cm7_fault_report\n\t"
        :
        : [room] "i"(FAULT_REPORT_STACK));
}

void cm7_fault_report(const uint32_t *frame, uint32_t exception) {
    bsp_fault_t fault = {0};
    fault.exception = exception & 0x1FFu;
    if (frame != 0) {
        fault.lr = frame[5];
        fault.pc = frame[6];
        fault.psr = frame[7];
    }
    fault.cfsr = SCB_CFSR;
    fault.hfsr = SCB_HFSR;
    fault.bfar = SCB_BFAR;
    fault.mmfar = SCB_MMFAR;
    bsp_on_fault(&fault);
    for (;;) {
    }
}
