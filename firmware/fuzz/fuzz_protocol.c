/*
 * libFuzzer target for the firmware's frame receiver and command dispatcher, on the host:
 * mpq_protocol.c, mpq_commands.c, mpq_runner.c and mpq_crc32.c as they are, behind a stub BSP
 * (the UART output is discarded) and one stub model. Built and run by firmware/fuzz/Makefile.
 *
 * The first input byte picks the mode: even, the rest is a raw byte stream (noise, cut frames,
 * resynchronization); odd, the rest is a list of requests (type, seq, u8 length, payload) that
 * get a valid CRC, so the fuzzer reaches every handler and its argument checks (PERF's run
 * count is cut to 15: a count of 2^32 is legal, only slow).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bsp.h"
#include "mpq_commands.h"
#include "mpq_crc32.h"
#include "mpq_model.h"
#include "mpq_protocol.h"

/* ---- stub board */
const char bsp_board_name[] = "fuzz";
const uint8_t bsp_counter_kind = BSP_COUNTER_INSTRUCTIONS;
const uint32_t bsp_counter_hz = 1000000u;
const uint32_t bsp_core_hz = 1000000u;
const uint32_t bsp_uart_rx_buffer_bytes = 4096u;
static uint64_t now;
static uint32_t tx_bytes;

void bsp_init(void) {}
void bsp_uart_write(uint8_t byte) { tx_bytes += byte | 1u; }
bool bsp_uart_read(uint8_t *byte) { (void)byte; return false; }
void bsp_uart_wait(void) {}
uint64_t bsp_ticks(void) { return now += 7u; }
uint64_t bsp_ticks_align(void) { return bsp_ticks(); }
uint32_t bsp_irq_count(void) { return 0u; }
uint32_t bsp_uart_rx_count(void) { return 0u; }
const char *bsp_boot_problem(void) { return NULL; }

/* ---- stub model: output = input bytes summed in 16 lanes, two layers */
#define IN_BYTES 300u
#define OUT_BYTES 16u
static uint8_t arena[IN_BYTES + OUT_BYTES];

static int stub_run(void) {
    mpq_layer_begin(0);
    memset(arena + IN_BYTES, 0, OUT_BYTES);
    for (uint32_t i = 0; i < IN_BYTES; ++i) {
        arena[IN_BYTES + i % OUT_BYTES] = (uint8_t)(arena[IN_BYTES + i % OUT_BYTES] + arena[i]);
    }
    mpq_layer_end(0);
    mpq_layer_begin(1);
    mpq_layer_end(1);
    return arena[0] == 0xEEu ? 5 : 0; /* a failing status is reachable too */
}

static const mpq_model_t stub = {
    .name = "stub", .in_dims = {1, 1, IN_BYTES, 8}, .out_dims = {1, 1, OUT_BYTES, 8}, .in_bytes = IN_BYTES,
    .out_bytes = OUT_BYTES, .input = arena, .output = arena + IN_BYTES, .n_layers = 2, .run = stub_run,
};
const mpq_model_t *const mpq_models[] = {&stub};
const uint32_t mpq_model_count = 1;
const char mpq_model_hash[] = "0123456789abcdef";
const char mpq_policy_hash[] = "";
const uint32_t mpq_arena_bytes = sizeof arena;

static mpq_rx_t rx;

static void push(const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        mpq_rx_push(&rx, bytes[i]);
        mpq_serve_frames(&rx);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mpq_rx_reset(&rx);
    if (size == 0) {
        return 0;
    }
    if ((data[0] & 1u) == 0u) {
        push(data + 1, size - 1);
        return 0;
    }
    size_t at = 1;
    while (at + 3 <= size) {
        uint8_t frame[MPQ_FRAME_OVERHEAD + 255];
        uint8_t len = data[at + 2];
        if (at + 3 + len > size) {
            len = (uint8_t)(size - at - 3);
        }
        frame[0] = MPQ_SYNC;
        frame[1] = data[at];
        frame[2] = data[at + 1];
        frame[3] = len;
        frame[4] = 0;
        memcpy(frame + MPQ_HEADER_BYTES, data + at + 3, len);
        if (frame[1] == MPQ_PERF && len == 5u) {
            frame[MPQ_HEADER_BYTES + 1] &= 0x0Fu; /* at most 15 runs: 2^32 would only be slow */
            memset(frame + MPQ_HEADER_BYTES + 2, 0, 3);
        }
        uint32_t crc = mpq_crc32(0, frame + 1, MPQ_HEADER_BYTES - 1u + len);
        for (uint32_t i = 0; i < 4; ++i) {
            frame[MPQ_HEADER_BYTES + len + i] = (uint8_t)(crc >> (8 * i));
        }
        push(frame, MPQ_FRAME_OVERHEAD + len);
        at += 3u + len;
    }
    return 0;
}
