/*
 * The model runner: LOAD, RUN/PERF and READ against mpq_models[] (mpq_model.h), and the
 * per-layer tick recording behind mpq_layer_begin/mpq_layer_end. Knows nothing of frames.
 */
#ifndef MPQ_RUNNER_H
#define MPQ_RUNNER_H

#include <stdint.h>

#include "mpq_model.h"

/* Per-layer ticks are kept for at most this many layers (8 bytes of RAM each). */
#ifndef MPQ_MAX_LAYERS
#define MPQ_MAX_LAYERS 128u
#endif

typedef enum {
    MPQ_RUNNER_OK,
    MPQ_RUNNER_BAD_ARG, /* index, offset or length out of range: nothing was done */
    MPQ_RUNNER_FAILED,  /* the model ran but broke a rule of the runtime (message says which) */
} mpq_runner_result_t;

/* What READ can read. */
typedef enum {
    MPQ_READ_OUTPUT = 0,      /* the output tensor */
    MPQ_READ_LAYER_TICKS = 1, /* u64 per layer, little-endian, of the model's last RUN/PERF */
} mpq_read_what_t;

typedef struct {
    int32_t status;       /* 0, or the non-zero return of the first failing run (it stops there) */
    uint32_t runs;        /* runs done */
    uint64_t total_ticks; /* sum over the runs */
    uint64_t min_ticks;
    uint64_t max_ticks;
    uint32_t irqs;     /* interrupts other than the tick counter's taken inside the timed regions */
    uint32_t rx_bytes; /* UART bytes received inside the timed regions */
} mpq_timing_t;

/* The model at `index`, or NULL when there is none. */
const mpq_model_t *mpq_runner_model(uint32_t index);

/* Copy n bytes into the model's input at offset if offset is 0 (a new input) or inside the
 * prefix received since; *acked = the length of that prefix (the cumulative acknowledgement). */
mpq_runner_result_t mpq_runner_load(uint32_t index, uint32_t offset, const uint8_t *data, uint32_t n,
                                    uint32_t *acked, const char **why);

/* Fill the model's whole input with the protocol's seeded bytes (docs/protocol.md, FILL: xorshift32
 * from `seed`, the low byte of each step) as if it had been LOADed; *acked = in_bytes. */
mpq_runner_result_t mpq_runner_fill(uint32_t index, uint32_t seed, uint32_t *acked, const char **why);

/* Run the model `repeats` times on its loaded input, timing each run() call (no I/O inside). */
mpq_runner_result_t mpq_runner_run(uint32_t index, uint32_t repeats, mpq_timing_t *timing, const char **why);

/* Point *bytes at len bytes from offset of what the model can READ. */
mpq_runner_result_t mpq_runner_read(mpq_read_what_t what, uint32_t index, uint32_t offset, uint32_t len,
                                    const uint8_t **bytes, const char **why);

#endif /* MPQ_RUNNER_H */
