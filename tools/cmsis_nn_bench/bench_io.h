/*
 * What the CMSIS-NN bench front ends (fc_bench.c, add_bench.c) share: text on the UART, the fixed
 * pseudo-random fill of their operands, the counter line that starts a report and the "end"
 * that closes it, and the fault handler that reports a fault instead of hanging.
 */
#ifndef BENCH_IO_H
#define BENCH_IO_H

#include <stdint.h>

void bench_text(const char *text);
void bench_number(int64_t value);
/* n bytes of a linear congruential sequence continued from *state. */
void bench_fill(int8_t *bytes, uint32_t n, uint32_t *state);
/* "counter <kind> <hz>": what a tick of the timings that follow is. */
void bench_counter_line(void);
/* " <ticks> <status>": one kernel's timing on a result line. */
void bench_timing(uint64_t ticks, int32_t status);
/* "end", then idle for good. */
void bench_end(void) __attribute__((noreturn));

#endif /* BENCH_IO_H */
