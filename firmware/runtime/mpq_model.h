/*
 * The interface between generated model code (harness/build/codegen.py writes model.c) and the
 * runtime (UART protocol, runner). A firmware image holds one or more networks (kernel-test
 * images hold many single-layer networks); the protocol addresses them by index.
 */
#ifndef MPQ_MODEL_H
#define MPQ_MODEL_H

#include <stdint.h>

#include "mpq_kernels.h"

/* Called by generated code around every layer; the runtime records per-layer cycles. */
void mpq_layer_begin(uint32_t layer_index);
void mpq_layer_end(uint32_t layer_index);

typedef struct {
    const char *name;
    mpq_dims_t in_dims;     /* network input: packed at in_dims.bits */
    mpq_dims_t out_dims;    /* network output: packed, or int32 when bits == 32 */
    uint32_t in_bytes;      /* packed input size, bytes */
    uint32_t out_bytes;     /* output size, bytes */
    uint8_t *input;         /* where LOAD writes (inside the arena) */
    const uint8_t *output;  /* where RUN's result is read (inside the arena) */
    uint32_t n_layers;
    /* Runs every layer once, calling mpq_layer_begin/end around each; 0 on success. Generated
     * models call their kernels unchecked: only after check() returned 0. */
    int (*run)(void);
    /* 1 when the arena plan lets later tensors reuse the input's bytes (the input dies after its
     * last consumer): a run consumes the loaded input, so PERF runs once and RUN needs a fresh
     * LOAD. 0 (the default of hand-written models): the input survives every run. */
    uint8_t input_reused;
    /* Checks every layer's arguments and scratch: 0, or the status run() must not be called
     * after (MPQ_ERR_ARG, or -2 when a kernel wants more scratch). NULL: nothing to check (a
     * hand-written model whose run() checks its own calls). */
    int (*check)(void);
} mpq_model_t;

extern const mpq_model_t *const mpq_models[];
extern const uint32_t mpq_model_count;
/* Content hash of the integer graph(s) this image was generated from (hex, NUL-terminated). */
extern const char mpq_model_hash[];
/* Hash of the policy the graph was lowered from (hex), "" for test images. */
extern const char mpq_policy_hash[];
/* Size of the static activation arena, bytes (from the planner). */
extern const uint32_t mpq_arena_bytes;

#endif /* MPQ_MODEL_H */
