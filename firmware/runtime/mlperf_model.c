/*
 * The MLPerf Tiny hooks on the board: the loaded bytes become model 0's packed input (a lookup
 * table for byte inputs, float32 quantized here for ad01), runs go through the model runner,
 * scores are the output dequantized (or, for ad01, the mean squared reconstruction error).
 * mlperf_config.h/.c are generated beside model.c (harness/build/mlperf_config.py).
 */
#include <string.h>
#include <math.h>

#include "bsp.h"
#include "mlperf_dut.h"
#include "mpq_runner.h"

#define MODEL 0u

static const uint8_t *prepared; /* the loaded bytes behind the current input (ad01's MSE reads them) */

static const mpq_model_t *model(void) {
    return mpq_runner_model(MODEL);
}

const char *mlperf_dut_name(void) {
    return mlperf_config_dut_name;
}

const char *mlperf_model_id(void) {
    return mlperf_config_model_id;
}

uint32_t mlperf_input_bytes(void) {
    return MLPERF_DB_BYTES;
}

/* The input value at flat index i (H, W, C order) of the loaded bytes, quantized. */
static uint32_t input_value(const uint8_t *bytes, uint32_t i) {
#if MLPERF_INPUT_FLOAT32
    float x;
    memcpy(&x, bytes + 4u * i, sizeof x); /* little-endian, as the core */
    float q = nearbyintf(x * mlperf_input_inv_scale) + (float)mlperf_input_zero_point;
    if (!(q > 0.0f)) { /* NaN too */
        return 0u;
    }
    return q > (float)mlperf_input_levels ? (uint32_t)mlperf_input_levels : (uint32_t)q;
#else
    return mlperf_input_lut[bytes[i]];
#endif
}

static uint32_t row_bytes(uint32_t channels, uint32_t bits) {
    return (channels * bits + 7u) / 8u;
}

bool mlperf_prepare(const uint8_t *bytes, uint32_t n, const char **why) {
    const mpq_model_t *m = model();
    if (m == NULL || n != MLPERF_DB_BYTES) {
        *why = "no model, or the loaded bytes are not its input";
        return false;
    }
    const uint32_t bits = m->in_dims.bits, channels = m->in_dims.c, per_byte = 8u / bits;
    const uint32_t row = row_bytes(channels, bits), pixels = (uint32_t)m->in_dims.h * m->in_dims.w;
    if (row > MLPERF_MAX_ROW_BYTES || row * pixels != m->in_bytes) {
        *why = "model input layout does not match mlperf_config.h";
        return false;
    }
    uint8_t packed[MLPERF_MAX_ROW_BYTES];
    uint32_t acked; /* rows go in order from offset 0, so each one extends the loaded prefix */
    for (uint32_t p = 0; p < pixels; ++p) { /* one packed row per pixel (docs/integer-arithmetic.md) */
        memset(packed, 0, row);
        for (uint32_t c = 0; c < channels; ++c) {
            uint32_t value = input_value(bytes, p * channels + c);
            packed[c / per_byte] |= (uint8_t)(value << (c % per_byte * bits));
        }
        if (mpq_runner_load(MODEL, p * row, packed, row, &acked, why) != MPQ_RUNNER_OK) {
            return false;
        }
    }
    prepared = bytes;
    return true;
}

/* `runs` inferences on the loaded input. A model whose arena reuses its input (deployable RAM,
 * mpq_model_t.input_reused) consumes it, so each of its runs first rebuilds the packed input from
 * the loaded bytes: that rebuild is inside the timed region (docs/mlperf-tiny.md). */
bool mlperf_infer(uint32_t runs, const char **why) {
    const mpq_model_t *m = model();
    const bool consumes = m != NULL && m->input_reused;
    const uint32_t per_call = consumes ? 1u : runs;
    for (uint32_t done = 0; done < runs; done += per_call) {
        mpq_timing_t timing;
        if (consumes && !mlperf_prepare(prepared, MLPERF_DB_BYTES, why)) {
            return false;
        }
        if (mpq_runner_run(MODEL, per_call, &timing, why) != MPQ_RUNNER_OK) {
            return false;
        }
        if (timing.status != 0) {
            *why = "the model reported a non-zero status";
            return false;
        }
    }
    return true;
}

static uint32_t output_count(void) {
    const mpq_model_t *m = model();
    return (uint32_t)m->out_dims.h * m->out_dims.w * m->out_dims.c;
}

/* Output value i (H, W, C order), dequantized. */
static double output_value(uint32_t i) {
    const mpq_model_t *m = model();
    int64_t q;
    if (m->out_dims.bits == 32u) {
        int32_t v;
        memcpy(&v, m->output + 4u * i, sizeof v);
        q = v;
    } else {
        const uint32_t bits = m->out_dims.bits, channels = m->out_dims.c, per_byte = 8u / bits;
        const uint32_t pixel = i / channels, c = i % channels;
        uint8_t byte = m->output[pixel * row_bytes(channels, bits) + c / per_byte];
        q = (byte >> (c % per_byte * bits)) & ((1u << bits) - 1u);
    }
    return mlperf_output_scale * (double)(q - mlperf_output_zero_point);
}

uint32_t mlperf_score_count(void) {
    return MLPERF_SCORE_IS_MSE ? 1u : output_count();
}

double mlperf_score(uint32_t index) {
#if MLPERF_SCORE_IS_MSE
    (void)index;
    /* mean squared error between the float32 input window and its reconstruction */
    const uint8_t *window = prepared;
    uint32_t n = output_count();
    double sum = 0.0;
    for (uint32_t i = 0; i < n; ++i) {
        float x;
        memcpy(&x, window + 4u * i, sizeof x);
        double d = (double)x - output_value(i);
        sum += d * d;
    }
    return sum / (double)n;
#else
    return output_value(index);
#endif
}

uint64_t mlperf_micros(void) {
    uint64_t ticks = bsp_ticks();
    return ticks / bsp_counter_hz * 1000000u + ticks % bsp_counter_hz * 1000000u / bsp_counter_hz;
}

void mlperf_write(const char *text, uint32_t len) {
    for (uint32_t i = 0; i < len; ++i) {
        bsp_uart_write((uint8_t)text[i]);
    }
}
