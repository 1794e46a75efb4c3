/*
 * CMSDK APB UART0: polled transmit, interrupt-driven receive into a ring buffer, so bytes that
 * arrive while the device is busy are kept (the real board's VCP has no flow control) and the
 * core can sleep while it waits.
 */
#include "bsp.h"
#include "mps2_an500.h"

#define BAUD 115200u
#define RX_RING_BYTES 4096u /* the LOAD window: three maximal frames (1033 bytes) in flight */

#if (RX_RING_BYTES & (RX_RING_BYTES - 1u)) != 0
#error "RX_RING_BYTES must be a power of two"
#endif

static volatile uint8_t rx_ring[RX_RING_BYTES];
const uint32_t bsp_uart_rx_buffer_bytes = RX_RING_BYTES;
static volatile uint32_t rx_head; /* written by the interrupt only */
static volatile uint32_t rx_tail; /* written by bsp_uart_read only */
static volatile uint32_t rx_irqs;  /* RX interrupts taken (the only interrupt besides SysTick) */
static volatile uint32_t rx_bytes; /* bytes taken from the data register, kept or dropped */

void mps2_uart_init(void) {
    UART0_CTRL = 0;
    UART0_BAUDDIV = MPS2_SYSCLK_HZ / BAUD; /* QEMU ignores the rate but wants a divider >= 16 */
    UART0_INTSTATUS = UART_INT_RX;
    UART0_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INTEN;
    NVIC_ISER(0) = 1u << UART0_RX_IRQ;
}

/* RX interrupt: move every waiting byte into the ring; a byte that finds it full is dropped
 * (the frame it belongs to then fails its CRC and the host repeats it). */
void UART0_RX_Handler(void) {
    UART0_INTSTATUS = UART_INT_RX;
    rx_irqs = rx_irqs + 1u;
    while (UART0_STATE & UART_STATE_RX_FULL) {
        uint8_t byte = (uint8_t)UART0_DATA;
        rx_bytes = rx_bytes + 1u;
        uint32_t head = rx_head;
        if (head - rx_tail < RX_RING_BYTES) {
            rx_ring[head % RX_RING_BYTES] = byte;
            rx_head = head + 1u;
        }
    }
}

uint32_t bsp_irq_count(void) {
    return rx_irqs;
}

uint32_t bsp_uart_rx_count(void) {
    return rx_bytes;
}

void bsp_uart_write(uint8_t byte) {
    while (UART0_STATE & UART_STATE_TX_FULL) {
    }
    UART0_DATA = byte;
}

bool bsp_uart_read(uint8_t *byte) {
    uint32_t tail = rx_tail;
    if (rx_head == tail) {
        return false;
    }
    *byte = rx_ring[tail % RX_RING_BYTES];
    rx_tail = tail + 1u;
    return true;
}

void bsp_uart_wait(void) {
    /* With interrupts masked, a byte arriving after the check still ends the WFI (the pending
     * interrupt wakes the core) and is handled as soon as they are unmasked. */
    __asm__ volatile("cpsid i" ::: "memory");
    if (rx_head == rx_tail) {
        __asm__ volatile("dsb\n\twfi" ::: "memory");
    }
    __asm__ volatile("cpsie i\n\tisb" ::: "memory");
}
