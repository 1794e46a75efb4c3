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
#include "bsp.h"

static const uint16_t shapes[][2] = FC_SHAPES;
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static int8_t weights[FC_MAX_WEIGHTS];
static int8_t input[FC_MAX_SIDE], output[FC_MAX_SIDE];
static int32_t bias[FC_MAX_SIDE];

static void put_text(const char *text) {
    while (*text) {
        bsp_uart_write((uint8_t)*text++);
    }
}

static void put_number(int64_t value) {
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

static void fill(int8_t *bytes, uint32_t n, uint32_t *state) {
    for (uint32_t i = 0; i < n; ++i) {
        *state = *state * 1103515245u + 12345u;
        bytes[i] = (int8_t)(*state >> 16);
    }
}

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
    fill(weights, sizeof weights, &state);
    fill(input, sizeof input, &state);
    for (uint32_t i = 0; i < FC_MAX_SIDE; ++i) {
        state = state * 1103515245u + 12345u;
        bias[i] = (int32_t)(state >> 20) - 2048;
        multipliers[i] = 1518500250;
        shifts[i] = -9;
    }
    put_text("counter ");
    put_number(bsp_counter_kind);
    put_text(" ");
    put_number(bsp_counter_hz);
    put_text("\n");
    for (uint32_t s = 0; s < N_SHAPES; ++s) {
        put_text("fc ");
        put_number(shapes[s][0]);
        put_text(" ");
        put_number(shapes[s][1]);
        for (int per_channel = 0; per_channel < 2; ++per_channel) {
            int32_t status;
            uint64_t ticks = time_kernel(shapes[s][0], shapes[s][1], per_channel, &status);
            put_text(" ");
            put_number((int64_t)ticks);
            put_text(" ");
            put_number(status);
        }
        put_text("\n");
    }
    put_text("end\n");
    for (;;) {
        bsp_uart_wait();
    }
}

void bsp_on_fault(const bsp_fault_t *fault) {
    put_text("fault ");
    put_number(fault->pc);
    put_text("\n");
    for (;;) {
    }
}
