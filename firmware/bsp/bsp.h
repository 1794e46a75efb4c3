/*
 * The board support interface the runtime uses: one implementation per MCU family under
 * firmware/bsp/<family>/ (startup, linker script, clock, UART, tick counter).
 *
 * The board name and the counter kind are facts of the board, not of the family (the same
 * stm32h7 BSP counts core cycles on silicon and instructions in Renode), so the Makefile passes
 * them as BSP_BOARD_NAME and BSP_COUNTER_KIND; a family may give BSP_COUNTER_KIND a default.
 */
#ifndef BSP_H
#define BSP_H

#include <stdbool.h>
#include <stdint.h>

/* What one tick of bsp_ticks() is (docs/protocol.md, "Ticks, cycles and instructions"). */
#define BSP_COUNTER_CORE_CYCLES 0u    /* core clock cycles (DWT CYCCNT on hardware) */
#define BSP_COUNTER_VIRTUAL_TIME 1u   /* emulator virtual time (QEMU -icount: instructions) */
#define BSP_COUNTER_INSTRUCTIONS 2u   /* emulator instruction count (Renode's DWT) */

/* Board facts, defined by the BSP. */
extern const char bsp_board_name[];  /* the Makefile's BOARD, e.g. "qemu-m7" */
extern const uint8_t bsp_counter_kind;
extern const uint32_t bsp_counter_hz;  /* ticks per second of bsp_ticks() */
extern const uint32_t bsp_core_hz;     /* core clock */

/* Clocks, FPU, UART and the tick counter; interrupts enabled on return. */
void bsp_init(void);

/* After bsp_init: why the board runs degraded (one line, e.g. a PLL that did not lock), or NULL.
 * The runtime appends it to the hello frame so the host refuses to measure (docs/protocol.md). */
const char *bsp_boot_problem(void);

/* Bytes the UART receive ring holds: what the host may have in flight unacknowledged (INFO). */
extern const uint32_t bsp_uart_rx_buffer_bytes;

/* Send one byte; blocks until the UART accepts it. */
void bsp_uart_write(uint8_t byte);

/* Take one received byte if there is one: true and *byte set, false at once otherwise. */
bool bsp_uart_read(uint8_t *byte);

/* Sleep until a byte may have arrived (or a timer fired): returns at once when one is waiting,
 * and may return early, so callers poll bsp_uart_read() again. Saves the host's CPU in
 * emulators, where a busy-polling guest burns a core while it waits. */
void bsp_uart_wait(void);

/* Interrupts taken since boot other than the tick counter's own (which is part of every timed
 * run alike), and bytes the UART received since boot. The runner reads both around every timed
 * run: a non-zero difference means the link disturbed it (docs/protocol.md, "Disturbed runs"). */
uint32_t bsp_irq_count(void);
uint32_t bsp_uart_rx_count(void);

/* Monotonic 64-bit tick counter at bsp_counter_hz, extended in software so it never wraps;
 * safe to call from thread mode at any time. */
uint64_t bsp_ticks(void);

/* Call right before a timed region; returns bsp_ticks(). On a coarse counter (QEMU: a tick is
 * 40 instructions) it restarts the counter's period at this instant, keeping the count
 * monotonic, so the region's ticks do not depend on where in a period it started: a run that
 * executes the same instructions gets exactly the same ticks. Returns at once on a cycle counter. */
uint64_t bsp_ticks_align(void);

/* What the fault handler saw; addresses it could not read safely are 0. */
typedef struct {
    uint32_t exception; /* active exception number (IPSR): 3 HardFault, 16+n IRQ n, ... */
    uint32_t pc;    /* stacked return address: the faulting instruction or the next one */
    uint32_t lr;    /* stacked LR */
    uint32_t psr;   /* stacked xPSR */
    uint32_t cfsr;  /* configurable fault status (MemManage/BusFault/UsageFault) */
    uint32_t hfsr;  /* HardFault status */
    uint32_t bfar;  /* BusFault address (valid when CFSR.BFARVALID) */
    uint32_t mmfar; /* MemManage address (valid when CFSR.MMARVALID) */
} bsp_fault_t;

/* Implemented by the application: report a fault. Called by the BSP's fault handler on a fresh
 * stack with interrupts masked; only bsp_uart_write() may be used. Never returns to the fault. */
void bsp_on_fault(const bsp_fault_t *fault);

#endif /* BSP_H */
