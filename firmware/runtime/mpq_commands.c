/*
 * Request decoding and answers. Every request's payload length is checked against the table
 * before any field is read; every index, offset and length is checked by the runner.
 */
#include "mpq_commands.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "bsp.h"
#include "mpq_model.h"
#include "mpq_runner.h"

#define HASH_CHARS 16u
#define INFO_FIXED_BYTES (12u + 4u + 2u + 4u + 2u * HASH_CHARS)
#define MODEL_FIXED_BYTES 25u
#define MODEL_FLAG_INPUT_REUSED 0x01u /* a run consumes the loaded input: LOAD before every RUN, PERF n = 1 */
#define MAX_MODELS 255u /* the protocol's model index is one byte */

typedef void (*handler_t)(const mpq_frame_t *request);

typedef struct {
    handler_t handle;
    uint16_t min_len;
    uint16_t max_len;
} command_t;

static uint32_t bounded_strlen(const char *s, uint32_t max) {
    uint32_t n = 0;
    while (n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

/* A fixed-width text field: the string's first `width` characters, NUL-padded. */
static void tx_text_field(mpq_tx_t *tx, const char *s, uint32_t width) {
    uint32_t n = bounded_strlen(s, width);
    mpq_tx_put(tx, s, n);
    for (; n < width; ++n) {
        mpq_tx_u8(tx, 0);
    }
}

static void answer_runner_error(const mpq_frame_t *request, mpq_runner_result_t result, const char *why) {
    mpq_send_error(request->seq, result == MPQ_RUNNER_BAD_ARG ? MPQ_ERR_BAD_ARG : MPQ_ERR_RUN_FAILED, why);
}

static void handle_info(const mpq_frame_t *request) {
    uint32_t board_len = bounded_strlen(bsp_board_name, MPQ_MAX_PAYLOAD - INFO_FIXED_BYTES);
    uint32_t n_models = mpq_model_count < MAX_MODELS ? mpq_model_count : MAX_MODELS;
    mpq_tx_t tx;
    mpq_tx_begin(&tx, MPQ_INFO | MPQ_ANSWER, request->seq, (uint16_t)(INFO_FIXED_BYTES + board_len));
    mpq_tx_u8(&tx, MPQ_PROTOCOL_VERSION);
    mpq_tx_u8(&tx, (uint8_t)n_models);
    mpq_tx_u8(&tx, bsp_counter_kind);
    mpq_tx_u8(&tx, 0);
    mpq_tx_u32(&tx, bsp_counter_hz);
    mpq_tx_u32(&tx, bsp_core_hz);
    mpq_tx_u32(&tx, mpq_arena_bytes);
    mpq_tx_u16(&tx, MPQ_MAX_PAYLOAD);
    mpq_tx_u32(&tx, bsp_uart_rx_buffer_bytes);
    tx_text_field(&tx, mpq_model_hash, HASH_CHARS);
    tx_text_field(&tx, mpq_policy_hash, HASH_CHARS);
    mpq_tx_put(&tx, bsp_board_name, board_len);
    mpq_tx_end(&tx);
}

static void tx_dims(mpq_tx_t *tx, const mpq_dims_t *dims) {
    mpq_tx_u16(tx, dims->h);
    mpq_tx_u16(tx, dims->w);
    mpq_tx_u16(tx, dims->c);
    mpq_tx_u8(tx, dims->bits);
}

static void handle_model(const mpq_frame_t *request) {
    const mpq_model_t *model = mpq_runner_model(request->payload[0]);
    if (model == NULL) {
        mpq_send_error(request->seq, MPQ_ERR_BAD_ARG, "no model with this index");
        return;
    }
    const char *name = model->name != NULL ? model->name : "";
    uint32_t name_len = bounded_strlen(name, MPQ_MAX_PAYLOAD - MODEL_FIXED_BYTES);
    mpq_tx_t tx;
    mpq_tx_begin(&tx, MPQ_MODEL | MPQ_ANSWER, request->seq, (uint16_t)(MODEL_FIXED_BYTES + name_len));
    tx_dims(&tx, &model->in_dims);
    tx_dims(&tx, &model->out_dims);
    mpq_tx_u32(&tx, model->in_bytes);
    mpq_tx_u32(&tx, model->out_bytes);
    mpq_tx_u16(&tx, (uint16_t)(model->n_layers < 0xFFFFu ? model->n_layers : 0xFFFFu));
    mpq_tx_u8(&tx, model->input_reused ? MODEL_FLAG_INPUT_REUSED : 0u);
    mpq_tx_put(&tx, name, name_len);
    mpq_tx_end(&tx);
}

/* The answer of LOAD and FILL: the input prefix the device holds, or the runner's error. */
static void answer_acked(const mpq_frame_t *request, mpq_runner_result_t result, uint32_t acked, const char *why) {
    if (result != MPQ_RUNNER_OK) {
        answer_runner_error(request, result, why);
        return;
    }
    mpq_tx_t tx;
    mpq_tx_begin(&tx, request->type | MPQ_ANSWER, request->seq, 4);
    mpq_tx_u32(&tx, acked);
    mpq_tx_end(&tx);
}

static void handle_load(const mpq_frame_t *request) {
    const uint8_t *p = request->payload;
    uint32_t acked = 0;
    const char *why = "";
    mpq_runner_result_t result = mpq_runner_load(p[0], mpq_get_u32(p + 1), p + 5, request->len - 5u, &acked, &why);
    answer_acked(request, result, acked, why);
}

static void handle_fill(const mpq_frame_t *request) {
    uint32_t acked = 0;
    const char *why = "";
    mpq_runner_result_t result = mpq_runner_fill(request->payload[0], mpq_get_u32(request->payload + 1), &acked, &why);
    answer_acked(request, result, acked, why);
}

static void handle_read(const mpq_frame_t *request) {
    const uint8_t *p = request->payload;
    uint32_t offset = mpq_get_u32(p + 2);
    uint32_t len = mpq_get_u16(p + 6);
    if (len > MPQ_MAX_PAYLOAD) {
        mpq_send_error(request->seq, MPQ_ERR_BAD_LEN, "READ length above max_payload");
        return;
    }
    const uint8_t *bytes = NULL;
    const char *why = "";
    mpq_runner_result_t result = mpq_runner_read((mpq_read_what_t)p[0], p[1], offset, len, &bytes, &why);
    if (result != MPQ_RUNNER_OK) {
        answer_runner_error(request, result, why);
        return;
    }
    mpq_tx_t tx;
    mpq_tx_begin(&tx, MPQ_READ | MPQ_ANSWER, request->seq, (uint16_t)len);
    mpq_tx_put(&tx, bytes, len);
    mpq_tx_end(&tx);
}

/*
 * The last RUN/PERF answered, so a repeat of it (same type, seq and payload: the host lost or
 * could not read the answer) is answered again instead of running again. A second run would put the
 * host's next requests inside its timed region and replace the per-layer ticks of the run the
 * host accepted, and on an input_reused model the first run consumed the input the repeat would
 * read. This is the one replay rule: the runner refuses any other RUN/PERF on a consumed input.
 * Any other request ends the replay window.
 */
static struct {
    bool valid;
    uint8_t type;
    uint8_t seq;
    uint8_t payload[5]; /* RUN: model; PERF: model, u32 n */
    uint16_t n_layers;
    mpq_timing_t timing;
} last_timed;

/* The answer to `request` from last_timed (which holds its run). */
static void answer_timed(const mpq_frame_t *request) {
    const mpq_timing_t *timing = &last_timed.timing;
    mpq_tx_t tx;
    if (request->type == MPQ_RUN) {
        mpq_tx_begin(&tx, MPQ_RUN | MPQ_ANSWER, request->seq, 22);
        mpq_tx_u32(&tx, (uint32_t)timing->status);
        mpq_tx_u64(&tx, timing->total_ticks);
        mpq_tx_u16(&tx, last_timed.n_layers);
    } else {
        mpq_tx_begin(&tx, MPQ_PERF | MPQ_ANSWER, request->seq, 36);
        mpq_tx_u32(&tx, (uint32_t)timing->status);
        mpq_tx_u64(&tx, timing->total_ticks);
        mpq_tx_u64(&tx, timing->min_ticks);
        mpq_tx_u64(&tx, timing->max_ticks);
    }
    mpq_tx_u32(&tx, timing->irqs);
    mpq_tx_u32(&tx, timing->rx_bytes);
    mpq_tx_end(&tx);
}

/* RUN (1 run) and PERF (n runs) of the loaded input. */
static void handle_timed(const mpq_frame_t *request) {
    if (last_timed.valid && memcmp(last_timed.payload, request->payload, request->len) == 0) {
        answer_timed(request); /* mpq_handle_request cleared `valid` unless type and seq repeat */
        return;
    }
    last_timed.valid = false;
    uint32_t repeats = request->type == MPQ_RUN ? 1u : mpq_get_u32(request->payload + 1);
    const char *why = "";
    mpq_runner_result_t result = mpq_runner_run(request->payload[0], repeats, &last_timed.timing, &why);
    if (result != MPQ_RUNNER_OK) {
        answer_runner_error(request, result, why);
        return;
    }
    last_timed.valid = true;
    last_timed.type = request->type;
    last_timed.seq = request->seq;
    memcpy(last_timed.payload, request->payload, request->len);
    last_timed.n_layers = (uint16_t)mpq_runner_model(request->payload[0])->n_layers;
    answer_timed(request);
}

/* Indexed by request type; payload length bounds checked before the handler runs. */
static const command_t commands[MPQ_LAST_REQUEST + 1] = {
    [MPQ_INFO] = {handle_info, 0, 0},
    [MPQ_MODEL] = {handle_model, 1, 1},
    [MPQ_LOAD] = {handle_load, 5, MPQ_MAX_PAYLOAD},
    [MPQ_RUN] = {handle_timed, 1, 1},
    [MPQ_READ] = {handle_read, 8, 8},
    [MPQ_PERF] = {handle_timed, 5, 5},
    [MPQ_FILL] = {handle_fill, 5, 5},
};

void mpq_handle_request(const mpq_frame_t *request) {
    if (request->type != last_timed.type || request->seq != last_timed.seq) {
        last_timed.valid = false; /* not a repeat of the last RUN/PERF */
    }
    const command_t *command = request->type <= MPQ_LAST_REQUEST ? &commands[request->type] : NULL;
    if (command == NULL || command->handle == NULL) {
        mpq_send_error(request->seq, MPQ_ERR_UNKNOWN_TYPE, "unknown request type");
        return;
    }
    if (request->len < command->min_len || request->len > command->max_len) {
        mpq_send_error(request->seq, MPQ_ERR_BAD_LEN, "payload length wrong for this request");
        return;
    }
    command->handle(request);
}

void mpq_serve_frames(mpq_rx_t *rx) {
    mpq_frame_t frame;
    mpq_rx_event_t event;
    while ((event = mpq_rx_next(rx, &frame)) != MPQ_RX_NONE) {
        if (event == MPQ_RX_FRAME) {
            mpq_handle_request(&frame);
        } else {
            mpq_send_error(frame.seq, MPQ_ERR_BAD_CRC, "CRC mismatch");
        }
    }
}

void mpq_send_hello(void) {
    const char *problem = bsp_boot_problem();
    uint32_t problem_len = problem != NULL ? bounded_strlen(problem, MPQ_MAX_PAYLOAD - HASH_CHARS - 1u) : 0u;
    mpq_tx_t tx;
    mpq_tx_begin(&tx, MPQ_HELLO, 0, (uint16_t)(HASH_CHARS + (problem != NULL ? 1u + problem_len : 0u)));
    tx_text_field(&tx, mpq_model_hash, HASH_CHARS);
    if (problem != NULL) { /* "<hash> <problem>": the host refuses to measure such a board */
        mpq_tx_u8(&tx, ' ');
        mpq_tx_put(&tx, problem, problem_len);
    }
    mpq_tx_end(&tx);
}
