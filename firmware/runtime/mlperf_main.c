/*
 * Firmware entry of the MLPerf Tiny front end (make PROTOCOL=mlperf-tiny): bring the board up,
 * print the DUT banner, then feed every received character to the command parser.
 */
#include <stdint.h>

#include "bsp.h"
#include "mlperf_dut.h"
#include "mpq_fault.h"

static void write_text(const char *text) {
    for (; *text != '\0'; ++text) {
        mlperf_write(text, 1u);
    }
}

/* A fault ends any answer in progress with e-[fault: ...] and m-ready; the board then stops. */
void mpq_report_fault(const char *message) {
    write_text("\r\ne-[fault: ");
    write_text(message);
    write_text("]\r\nm-ready\r\n");
}

int main(void) {
    bsp_init();
    mlperf_dut_reset();
    const char *problem = bsp_boot_problem();
    if (problem != 0) { /* a degraded board says so before anything is measured on it */
        write_text("e-[board runs degraded: ");
        for (const char *p = problem; *p != '\0' && *p != ']'; ++p) {
            mlperf_write(p, 1u);
        }
        write_text("]\r\n");
    }
    mlperf_dut_banner();
    for (;;) {
        uint8_t byte;
        if (bsp_uart_read(&byte)) {
            mlperf_dut_push((char)byte);
        } else {
            bsp_uart_wait();
        }
    }
}
