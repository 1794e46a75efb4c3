/*
 * Host-native driver for generated model code (tests/test_codegen.py): links model.c and the
 * portable kernels into a normal executable, so every model can be checked bit-exactly against
 * harness.reference without a board.
 *
 *   host_model_driver info                       -> "<count> <model_hash> <arena_bytes> [policy_hash]"
 *   host_model_driver run MODEL INPUT OUTPUT     -> loads INPUT (exactly in_bytes) into the model's
 *                                                   input, runs it, writes out_bytes to OUTPUT
 *
 * It calls the model's check(), then runs the model twice on the loaded input, as the protocol's
 * PERF does, and checks that both
 * runs give the same output (no layer may overwrite the input) and that each run calls
 * mpq_layer_begin(i)/mpq_layer_end(i) once per layer, in order.
 * Exit status: 0 ok, 1 usage or I/O error, 2 check() or a run failed, 3 layer hooks out of order,
 * 4 the second run differs from the first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpq_model.h"

static uint32_t next_begin;  /* the layer index the next mpq_layer_begin must get */
static int hooks_ok = 1;
static int in_layer;

void mpq_layer_begin(uint32_t layer_index) {
    if (in_layer || layer_index != next_begin) hooks_ok = 0;
    in_layer = 1;
}

void mpq_layer_end(uint32_t layer_index) {
    if (!in_layer || layer_index != next_begin) hooks_ok = 0;
    in_layer = 0;
    next_begin++;
}

static int read_exact(const char *path, uint8_t *dst, uint32_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t got = fread(dst, 1, n, f);
    int extra = fgetc(f);
    fclose(f);
    return (got == n && extra == EOF) ? 0 : -1;
}

static int write_all(const char *path, const uint8_t *src, uint32_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = fwrite(src, 1, n, f);
    return (fclose(f) == 0 && put == n) ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "info") == 0) {
        printf("%u %s %u %s\n", (unsigned)mpq_model_count, mpq_model_hash, (unsigned)mpq_arena_bytes,
               mpq_policy_hash);
        return 0;
    }
    if (argc != 5 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "usage: %s info | run MODEL INPUT OUTPUT\n", argv[0]);
        return 1;
    }
    char *end;
    unsigned long index = strtoul(argv[2], &end, 10);
    if (*end != '\0' || index >= mpq_model_count) {
        fprintf(stderr, "model index %s out of range (0..%u)\n", argv[2], (unsigned)mpq_model_count - 1u);
        return 1;
    }
    const mpq_model_t *model = mpq_models[index];
    int checked = model->check();
    if (checked != MPQ_OK) {
        fprintf(stderr, "model %lu (%s): check() failed with status %d\n", index, model->name, checked);
        return 2;
    }
    uint8_t *first = malloc(model->out_bytes);
    if (!first) return 1;
    for (int round = 0; round < 2; round++) {
        /* loaded before every run: a model whose arena reuses its input consumes it (input_reused) */
        if (read_exact(argv[3], model->input, model->in_bytes) != 0) {
            fprintf(stderr, "%s: cannot read exactly %u bytes\n", argv[3], (unsigned)model->in_bytes);
            return 1;
        }
        next_begin = 0;
        int status = model->run();
        if (status != MPQ_OK) {
            fprintf(stderr, "model %lu (%s) failed with status %d\n", index, model->name, status);
            return 2;
        }
        if (!hooks_ok || in_layer || next_begin != model->n_layers) {
            fprintf(stderr, "layer hooks out of order: %u of %u layers\n", (unsigned)next_begin,
                    (unsigned)model->n_layers);
            return 3;
        }
        if (round == 0) {
            memcpy(first, model->output, model->out_bytes);
        } else if (memcmp(first, model->output, model->out_bytes) != 0) {
            fprintf(stderr, "model %lu (%s): a second run on the same input differs\n", index, model->name);
            return 4;
        }
    }
    free(first);
    if (write_all(argv[4], model->output, model->out_bytes) != 0) {
        fprintf(stderr, "%s: cannot write output\n", argv[4]);
        return 1;
    }
    return 0;
}
