/*
 * CMSIS-NN's s8 fully connected kernels timed on the board the way the runner times a PERF run
 * (firmware/runtime/mpq_runner.c: bsp_ticks_align, the call, bsp_ticks), so their figures
 * compare with `harness bench kernels --shapes zoo` on the same geometries: the matrix-vector
 * kernel arm_fully_connected_s8 calls once per batch (arm_nn_vec_mat_mult_t_s8, per-tensor
 * requantization) and its per-channel twin (arm_nn_vec_mat_mult_t_per_ch_s8), with the
 * arguments arm_fully_connected_s8 passes. tools/cmsis_nn_bench.py builds this against a
 * CMSIS-NN checkout and the board's BSP, passing the geometries as FC_SHAPES (pairs
 * {inputs, outputs}), the largest weight matrix as FC_MAX_WEIGHTS and the longest input or output
 * as FC_MAX_SIDE.
 *
 * Prints on the UART "counter <kind> <hz>", one line per geometry, "fc <inputs> <outputs>
 * <per-tensor ticks> <status> <per-channel ticks> <status>", then "end". Weights, input and
 * biases are a fixed pseudo-random fill.
 */
#include <stdint.h>

#include "arm_nnsupportfunctions.h"
#include "bench_io.h"
#include "bsp.h"

static const uint16_t shapes[][2] = FC_SHAPES;
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static int8_t weights[FC_MAX_WEIGHTS];
static int8_t input[FC_MAX_SIDE], output[FC_MAX_SIDE];
static int32_t bias[FC_MAX_SIDE];

static int32_t multipliers[FC_MAX_SIDE], shifts[FC_MAX_SIDE];

/* The arguments arm_fully_connected_s8 passes for one batch (input offset 128, output offset
 * -128, symmetric weights), with one multiplier and shift or (per channel) their arrays. */
#define FC_ARGUMENTS(multiplier, shift) \
    input, weights, NULL, bias, output, 128, -128, multiplier, shift, (int32_t)inputs, (int32_t)outputs, -128, 127, 1, 0

/* Ticks of one call of CMSIS-NN's s8 matrix-vector kernel on `inputs` -> `outputs`; *status its return. */
static uint64_t time_kernel(uint32_t inputs, uint32_t outputs, int per_channel, int32_t *status) {
    uint64_t start = bsp_ticks_align();
    if (per_channel) {
        *status = arm_nn_vec_mat_mult_t_per_ch_s8(FC_ARGUMENTS(multipliers, shifts));
    } else {
        *status = arm_nn_vec_mat_mult_t_s8(FC_ARGUMENTS(multipliers[0], shifts[0]));
    }
    return bsp_ticks() - start;
}

int main(void) {
    bsp_init();
    uint32_t state = 1u;
    bench_fill(weights, sizeof weights, &state);
    bench_fill(input, sizeof input, &state);
    for (uint32_t i = 0; i < FC_MAX_SIDE; ++i) {
        state = state * 1103515245u + 12345u;
        bias[i] = (int32_t)(state >> 20) - 2048;
        multipliers[i] = 1518500250;
        shifts[i] = -9;
    }
    bench_counter_line();
    for (uint32_t s = 0; s < N_SHAPES; ++s) {
        bench_text("fc ");
        bench_number(shapes[s][0]);
        bench_text(" ");
        bench_number(shapes[s][1]);
        for (int per_channel = 0; per_channel < 2; ++per_channel) {
            int32_t status;
            uint64_t ticks = time_kernel(shapes[s][0], shapes[s][1], per_channel, &status);
            bench_timing(ticks, status);
        }
        bench_text("\n");
    }
    bench_end();
}
