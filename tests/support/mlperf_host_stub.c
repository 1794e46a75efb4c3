/*
 * Host stand-ins for the MLPerf Tiny front end's model hooks (firmware/runtime/mlperf_dut.h), so
 * tests/test_mlperf_parser.py can drive the real parser through ctypes: output collects in a
 * bounded buffer, `prepare` keeps a copy of the bytes it was given, a run counts, the scores
 * are the prepared bytes' sum and its negative over 7.
 */
#include <string.h>

#include "mlperf_dut.h"

#define OUTPUT_BYTES 65536u

static char output[OUTPUT_BYTES];
static uint32_t output_len;
static uint8_t prepared[MLPERF_DB_BYTES];
static uint32_t prepared_len;
static uint32_t total_runs;
static uint64_t micros;

const char *mlperf_dut_name(void) { return "host-stub"; }
const char *mlperf_model_id(void) { return "stub01"; }
uint32_t mlperf_input_bytes(void) { return MLPERF_DB_BYTES; }

bool mlperf_prepare(const uint8_t *bytes, uint32_t n, const char **why) {
    if (n > MLPERF_DB_BYTES) {
        *why = "stub: too many bytes";
        return false;
    }
    memcpy(prepared, bytes, n);
    prepared_len = n;
    return true;
}

bool mlperf_infer(uint32_t runs, const char **why) {
    (void)why;
    total_runs += runs;
    micros += 1000u * runs;
    return true;
}

uint32_t mlperf_score_count(void) { return 2u; }

double mlperf_score(uint32_t index) {
    double sum = 0.0;
    for (uint32_t i = 0; i < prepared_len; ++i) {
        sum += prepared[i];
    }
    return index == 0u ? sum : -sum / 7.0;
}

uint64_t mlperf_micros(void) { return micros; }

void mlperf_write(const char *text, uint32_t len) {
    for (uint32_t i = 0; i < len && output_len < OUTPUT_BYTES; ++i) {
        output[output_len++] = text[i];
    }
}

/* ---- for the test */
uint32_t stub_take_output(char *into, uint32_t max) {
    uint32_t n = output_len < max ? output_len : max;
    memcpy(into, output, n);
    output_len = 0;
    return n;
}

uint32_t stub_prepared(uint8_t *into, uint32_t max) {
    uint32_t n = prepared_len < max ? prepared_len : max;
    memcpy(into, prepared, n);
    return n;
}

uint32_t stub_runs(void) { return total_runs; }
