/*
 * USART3 on PD8 (TX) / PD9 (RX), AF7: the ST-LINK virtual COM port of the Nucleo-H743ZI(2).
 * 8N1 at STM32H7_UART_BAUD (the board file's baud via the Makefile's UART_BAUD; BRR = 120 MHz / baud,
 * at least 16: up to 7.5 Mbaud).
 *
 * Transmit is polled. Received bytes go into a ring buffer, drained from the data register by
 * the RX interrupt (the VCP has no flow control, so bytes that arrive while the core computes
 * must not be lost) and also by bsp_uart_read itself, so reception works even where the
 * interrupt is not delivered (the unicorn boot check, tests/h743_boot).
 */
#include "bsp.h"
#include "stm32h7_regs.h"

#ifndef STM32H7_UART_BAUD
#define STM32H7_UART_BAUD 115200u
#endif
#define RX_RING_BYTES 4096u /* the LOAD window: three maximal frames (1033 bytes) in flight */

#if (RX_RING_BYTES & (RX_RING_BYTES - 1u)) != 0
#error "RX_RING_BYTES must be a power of two"
#endif

static volatile uint8_t rx_ring[RX_RING_BYTES];
const uint32_t bsp_uart_rx_buffer_bytes = RX_RING_BYTES;
static volatile uint32_t rx_head; /* written by drain() only, with interrupts masked */
static volatile uint32_t rx_tail; /* written by bsp_uart_read only */
static volatile uint32_t rx_irqs;  /* USART3 interrupts taken (the only one besides SysTick) */
static volatile uint32_t rx_bytes; /* bytes taken from the data register, kept or dropped */

void USART3_IRQHandler(void);

static void set_field(volatile uint32_t *reg, uint32_t pin_bits, uint32_t shift, uint32_t value) {
    uint32_t mask = (1u << pin_bits) - 1u;
    *reg = (*reg & ~(mask << shift)) | (value << shift);
}

void stm32h7_uart_init(void) {
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR; /* read back: the clocks run before the peripherals are written */
    for (uint32_t pin = 8; pin <= 9; ++pin) {
        set_field(&GPIOD_MODER, 2u, 2u * pin, GPIO_MODE_AF);
        set_field(&GPIOD_OSPEEDR, 2u, 2u * pin, GPIO_SPEED_HIGH);
        set_field(&GPIOD_AFRH, 4u, 4u * (pin - 8u), GPIO_AF7_USART3);
    }
    USART3_CR1 = 0u; /* UE = 0: BRR and the frame format may be written */
    USART3_CR2 = 0u; /* 1 stop bit */
    USART3_CR3 = USART_CR3_OVRDIS;
    USART3_BRR = (stm32h7_usart3_clock_hz() + STM32H7_UART_BAUD / 2u) / STM32H7_UART_BAUD;
    USART3_ICR = USART_ICR_ERRORS;
    USART3_CR1 = USART_CR1_FIFOEN | USART_CR1_RXNEIE | USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
    NVIC_ISER(USART3_IRQ / 32u) = 1u << (USART3_IRQ % 32u);
}

/* Move every waiting byte into the ring; call with interrupts masked. A byte that finds the
 * ring full is dropped (its frame fails the CRC and the host repeats it); so is a byte with a
 * framing or noise error, whose flags are cleared. */
static void drain(void) {
    uint32_t isr;
    while ((isr = USART3_ISR) & USART_ISR_RXNE) {
        uint8_t byte = (uint8_t)USART3_RDR;
        rx_bytes = rx_bytes + 1u;
        uint32_t head = rx_head;
        if (head - rx_tail < RX_RING_BYTES) {
            rx_ring[head % RX_RING_BYTES] = byte;
            rx_head = head + 1u;
        }
    }
    if (isr & USART_ICR_ERRORS) {
        USART3_ICR = USART_ICR_ERRORS;
    }
}

void USART3_IRQHandler(void) {
    rx_irqs = rx_irqs + 1u;
    drain();
}

uint32_t bsp_irq_count(void) {
    return rx_irqs;
}

uint32_t bsp_uart_rx_count(void) {
    return rx_bytes;
}

static uint32_t mask_interrupts(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static void restore_interrupts(uint32_t primask) {
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

void bsp_uart_write(uint8_t byte) {
    while (!(USART3_ISR & USART_ISR_TXE)) {
    }
    USART3_TDR = byte;
}

bool bsp_uart_read(uint8_t *byte) {
    uint32_t tail = rx_tail;
    if (rx_head == tail) {
        uint32_t primask = mask_interrupts();
        drain();
        restore_interrupts(primask);
        if (rx_head == tail) {
            return false;
        }
    }
    *byte = rx_ring[tail % RX_RING_BYTES];
    rx_tail = tail + 1u;
    return true;
}

void bsp_uart_wait(void) {
    /* With interrupts masked, a byte arriving after the check still ends the WFI (the pending
     * interrupt wakes the core); the SysTick interrupt wakes it too, at the latest. */
    __asm__ volatile("cpsid i" ::: "memory");
    drain();
    if (rx_head == rx_tail) {
        __asm__ volatile("dsb\n\twfi" ::: "memory");
    }
    __asm__ volatile("cpsie i\n\tisb" ::: "memory");
}
