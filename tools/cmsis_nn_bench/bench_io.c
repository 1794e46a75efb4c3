/* The UART report and operand fill of the CMSIS-NN bench front ends (bench_io.h). */
#include "bench_io.h"

#include "bsp.h"

void bench_text(const char *text) {
    while (*text) {
        bsp_uart_write((uint8_t)*text++);
    }
}

void bench_number(int64_t value) {
    char digits[24];
    unsigned n = 0;
    uint64_t magnitude = value < 0 ? (uint64_t)-value : (uint64_t)value;
    do {
        digits[n++] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude);
    if (value < 0) {
        bsp_uart_write('-');
    }
    while (n) {
        bsp_uart_write((uint8_t)digits[--n]);
    }
}

void bench_fill(int8_t *bytes, uint32_t n, uint32_t *state) {
    for (uint32_t i = 0; i < n; ++i) {
        *state = *state * 1103515245u + 12345u;
        bytes[i] = (int8_t)(*state >> 16);
    }
}

void bench_counter_line(void) {
    bench_text("counter ");
    bench_number(bsp_counter_kind);
    bench_text(" ");
    bench_number(bsp_counter_hz);
    bench_text("\n");
}

void bench_timing(uint64_t ticks, int32_t status) {
    bench_text(" ");
    bench_number((int64_t)ticks);
    bench_text(" ");
    bench_number(status);
}

void bench_end(void) {
    bench_text("end\n");
    for (;;) {
        bsp_uart_wait();
    }
}

void bsp_on_fault(const bsp_fault_t *fault) {
    bench_text("fault ");
    bench_number(fault->pc);
    bench_text("\n");
    for (;;) {
    }
}
