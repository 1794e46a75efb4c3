/*
 * CMSIS-NN's s8 elementwise add timed on the board the way the runner times a PERF run
 * (firmware/runtime/mpq_runner.c: bsp_ticks_align, the call, bsp_ticks), so its figures compare
 * with the add layers of `harness bench network ... --layers` on the same element counts:
 * arm_elementwise_add_s8 with the arguments TFLite Micro's add passes for two inputs and an
 * output of one scale (left shift 20, input rescales 1/2, the output's 2^-19). tools/cmsis_nn_bench.py
 * builds this against a CMSIS-NN checkout and the board's BSP, passing the element counts as
 * ADD_SIZES and the largest as ADD_MAX_ELEMENTS.
 *
 * Prints on the UART "counter <kind> <hz>", one line per size, "add <elements> <ticks>
 * <status>", then "end". The inputs are a fixed pseudo-random fill.
 */
#include <stdint.h>

#include "arm_nnfunctions.h"
#include "bench_io.h"
#include "bsp.h"

static const uint32_t sizes[] = ADD_SIZES;
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static int8_t input_1[ADD_MAX_ELEMENTS], input_2[ADD_MAX_ELEMENTS], output[ADD_MAX_ELEMENTS];

/* Ticks of one call of CMSIS-NN's s8 add on `elements` values; *status its return. */
static uint64_t time_kernel(uint32_t elements, int32_t *status) {
    uint64_t start = bsp_ticks_align();
    *status = arm_elementwise_add_s8(input_1, input_2, 128, 1073741824, 0, 128, 1073741824, 0, 20, output, -128,
                                     1073741824, -18, -128, 127, (int32_t)elements);
    return bsp_ticks() - start;
}

int main(void) {
    bsp_init();
    uint32_t state = 1u;
    bench_fill(input_1, sizeof input_1, &state);
    bench_fill(input_2, sizeof input_2, &state);
    bench_counter_line();
    for (uint32_t s = 0; s < N_SIZES; ++s) {
        int32_t status;
        uint64_t ticks = time_kernel(sizes[s], &status);
        bench_text("add ");
        bench_number(sizes[s]);
        bench_timing(ticks, status);
        bench_text("\n");
    }
    bench_end();
}
