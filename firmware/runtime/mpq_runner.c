/*
 * Runs models and records their per-layer ticks. A run is timed around the model's run() call
 * only; the model's check() before it and the checks that make repeated runs meaningful (the
 * input survives a run, layer indices stay in range) happen outside the timed region.
 */
#include "mpq_runner.h"

#include <stdbool.h>
#include <string.h>

#include "bsp.h"
#include "mpq_crc32.h"

static uint64_t layer_ticks[MPQ_MAX_LAYERS];

static struct {
    const mpq_model_t *model; /* the model inside run(), NULL outside */
    uint64_t layer_start;
    bool bad_layer_index;
} running;

static const mpq_model_t *ticks_owner; /* the model whose ticks layer_ticks holds */
static const mpq_model_t *consumed;     /* an input_reused model whose last run consumed its input */

/* The input being loaded: LOAD at offset 0 starts it, a LOAD that starts inside the prefix
 * received so far extends it, one beyond it (an earlier frame was lost) is dropped, and a run
 * ends it (so a lost first frame of the next input cannot extend this one's prefix). `upto` is
 * the cumulative acknowledgement every LOAD answer carries (docs/protocol.md, "LOAD window"). */
static struct {
    const mpq_model_t *model;
    uint32_t upto;
} loading;

void mpq_layer_begin(uint32_t layer_index) {
    if (running.model != NULL && layer_index >= running.model->n_layers) {
        running.bad_layer_index = true;
    }
    running.layer_start = bsp_ticks();
}

void mpq_layer_end(uint32_t layer_index) {
    uint64_t now = bsp_ticks();
    if (running.model == NULL) {
        return;
    }
    if (layer_index < running.model->n_layers) {
        layer_ticks[layer_index] = now - running.layer_start;
    } else {
        running.bad_layer_index = true;
    }
}

const mpq_model_t *mpq_runner_model(uint32_t index) {
    return index < mpq_model_count ? mpq_models[index] : NULL;
}

/* offset + len inside size, without overflow. */
static bool in_range(uint32_t offset, uint32_t len, uint32_t size) {
    return offset <= size && len <= size - offset;
}

mpq_runner_result_t mpq_runner_load(uint32_t index, uint32_t offset, const uint8_t *data, uint32_t n,
                                    uint32_t *acked, const char **why) {
    const mpq_model_t *model = mpq_runner_model(index);
    if (model == NULL) {
        *why = "no model with this index";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (!in_range(offset, n, model->in_bytes)) {
        *why = "LOAD beyond the end of the model's input (offset + length > in_bytes)";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (offset == 0) {
        loading.model = model;
        loading.upto = 0;
    }
    if (loading.model == model && offset <= loading.upto) {
        memcpy(model->input + offset, data, n);
        loading.upto = offset + n > loading.upto ? offset + n : loading.upto;
        if (consumed == model) {
            consumed = NULL;
        }
    }
    *acked = loading.model == model ? loading.upto : 0u;
    return MPQ_RUNNER_OK;
}

mpq_runner_result_t mpq_runner_fill(uint32_t index, uint32_t seed, uint32_t *acked, const char **why) {
    const mpq_model_t *model = mpq_runner_model(index);
    if (model == NULL) {
        *why = "no model with this index";
        return MPQ_RUNNER_BAD_ARG;
    }
    uint32_t x = seed != 0u ? seed : 1u; /* xorshift32 never leaves 0 */
    for (uint32_t i = 0; i < model->in_bytes; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        model->input[i] = (uint8_t)x;
    }
    loading.model = model;
    loading.upto = model->in_bytes;
    if (consumed == model) {
        consumed = NULL;
    }
    *acked = model->in_bytes;
    return MPQ_RUNNER_OK;
}

/* One timed run() call; adds the interrupts and received bytes inside it to *timing. */
static uint64_t timed_run(const mpq_model_t *model, mpq_timing_t *timing) {
    uint32_t irqs = bsp_irq_count();
    uint32_t rx_bytes = bsp_uart_rx_count();
    uint64_t start = bsp_ticks_align();
    timing->status = model->run();
    uint64_t ticks = bsp_ticks() - start;
    timing->irqs += bsp_irq_count() - irqs;
    timing->rx_bytes += bsp_uart_rx_count() - rx_bytes;
    return ticks;
}

mpq_runner_result_t mpq_runner_run(uint32_t index, uint32_t repeats, mpq_timing_t *timing, const char **why) {
    const mpq_model_t *model = mpq_runner_model(index);
    if (model == NULL) {
        *why = "no model with this index";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (model->n_layers > MPQ_MAX_LAYERS) {
        *why = "model has more layers than the runtime records; rebuild with a larger -DMPQ_MAX_LAYERS";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (repeats == 0) {
        *why = "run count must be at least 1";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (model->input_reused && repeats > 1) {
        *why = "this model's arena reuses its input (MODEL flags bit 0): one run per LOAD, PERF n must be 1";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (model->input_reused && consumed == model) {
        /* A repeated RUN (same seq and payload) never gets here: mpq_commands answers it from the
         * stored result of the run that consumed the input. Any other run needs a fresh LOAD. */
        *why = "the last run consumed this model's input: LOAD it again";
        return MPQ_RUNNER_BAD_ARG;
    }
    loading.model = NULL; /* a run ends the input's loading: the next input starts at offset 0 */
    uint32_t input_crc = mpq_crc32(0, model->input, model->in_bytes);
    memset(layer_ticks, 0, model->n_layers * sizeof layer_ticks[0]);
    ticks_owner = model;
    running.model = model;
    running.bad_layer_index = false;
    *timing = (mpq_timing_t){.status = model->check != NULL ? model->check() : 0, .min_ticks = UINT64_MAX};
    for (uint32_t i = 0; i < repeats && timing->status == 0; ++i) {
        uint64_t ticks = timed_run(model, timing);
        timing->runs++;
        timing->total_ticks += ticks;
        timing->min_ticks = ticks < timing->min_ticks ? ticks : timing->min_ticks;
        timing->max_ticks = ticks > timing->max_ticks ? ticks : timing->max_ticks;
    }
    running.model = NULL;
    if (timing->runs == 0) {
        timing->min_ticks = 0; /* check() failed: no run to time */
    }
    if (running.bad_layer_index) {
        *why = "model called mpq_layer_begin/end with a layer index >= its n_layers";
        return MPQ_RUNNER_FAILED;
    }
    if (model->input_reused) {
        consumed = model;
    } else if (mpq_crc32(0, model->input, model->in_bytes) != input_crc) {
        *why = "a run overwrote the model's input, which its input_reused = 0 promises to keep (RUN and PERF repeat on one LOAD)";
        return MPQ_RUNNER_FAILED;
    }
    return MPQ_RUNNER_OK;
}

mpq_runner_result_t mpq_runner_read(mpq_read_what_t what, uint32_t index, uint32_t offset, uint32_t len,
                                    const uint8_t **bytes, const char **why) {
    const mpq_model_t *model = mpq_runner_model(index);
    if (model == NULL) {
        *why = "no model with this index";
        return MPQ_RUNNER_BAD_ARG;
    }
    const uint8_t *base;
    uint32_t size;
    switch (what) {
    case MPQ_READ_OUTPUT:
        base = model->output;
        size = model->out_bytes;
        break;
    case MPQ_READ_LAYER_TICKS:
        if (ticks_owner != model) {
            *why = "no per-layer ticks for this model: RUN or PERF it first";
            return MPQ_RUNNER_BAD_ARG;
        }
        base = (const uint8_t *)layer_ticks; /* the core is little-endian, as the protocol */
        size = model->n_layers * (uint32_t)sizeof layer_ticks[0];
        break;
    default:
        *why = "READ what must be 0 (output) or 1 (per-layer ticks)";
        return MPQ_RUNNER_BAD_ARG;
    }
    if (!in_range(offset, len, size)) {
        *why = "READ beyond the end (offset + length > size)";
        return MPQ_RUNNER_BAD_ARG;
    }
    *bytes = base + offset;
    return MPQ_RUNNER_OK;
}
