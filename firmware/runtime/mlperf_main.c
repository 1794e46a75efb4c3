/*
 * Firmware entry of the MLPerf Tiny front end (make PROTOCOL=mlperf-tiny): bring the board up,
 * print the DUT banner, then feed every received character to the command parser.
 */
#include <stdint.h>

#include "bsp.h"
#include "mlperf_dut.h"

int main(void) {
    bsp_init();
    mlperf_dut_reset();
    const char *problem = bsp_boot_problem();
    if (problem != 0) { /* a degraded board says so before anything is measured on it */
        static const char prefix[] = "e-[board runs degraded: ";
        mlperf_write(prefix, sizeof prefix - 1u);
        for (const char *p = problem; *p != '\0' && *p != ']'; ++p) {
            mlperf_write(p, 1u);
        }
        mlperf_write("]\r\n", 3u);
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
