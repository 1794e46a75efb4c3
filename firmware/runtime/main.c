/*
 * Firmware entry: bring the board up, say hello (the model hash), then serve protocol requests
 * forever (docs/protocol.md).
 */
#include <stdint.h>

#include "bsp.h"
#include "mpq_commands.h"
#include "mpq_fault.h"
#include "mpq_protocol.h"

/* A frame whose bytes stop for this long is dropped (its sender repeats it). */
#define RX_IDLE_TIMEOUT_MS 500u

static mpq_rx_t rx;

void mpq_report_fault(const char *message) {
    mpq_send_error(0, MPQ_ERR_FAULT, message);
}

int main(void) {
    bsp_init();
    mpq_rx_reset(&rx);
    mpq_send_hello();
    const uint64_t idle_limit = (uint64_t)(bsp_counter_hz / 1000u) * RX_IDLE_TIMEOUT_MS;
    uint64_t last_activity = bsp_ticks();
    for (;;) {
        uint8_t byte;
        if (!bsp_uart_read(&byte)) {
            bsp_uart_wait();
            continue;
        }
        if (mpq_rx_partial(&rx) && bsp_ticks() - last_activity > idle_limit) {
            mpq_rx_reset(&rx);
        }
        mpq_rx_push(&rx, byte);
        mpq_serve_frames(&rx);
        last_activity = bsp_ticks();
    }
}
