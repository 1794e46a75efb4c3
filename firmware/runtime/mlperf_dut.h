/*
 * The MLPerf Tiny DUT protocol (docs/mlperf-tiny.md): ASCII commands ending in '%', at most
 * MLPERF_CMD_CHARS characters, every answer a run of "\r\n"-terminated lines ending "m-ready".
 * This file knows no board and no model: it parses, bounds and answers; the model glue
 * (mlperf_model.c on the board, a stub in the host tests) implements the hooks below.
 */
#ifndef MLPERF_DUT_H
#define MLPERF_DUT_H

#include <stdbool.h>
#include <stdint.h>

#define MLPERF_CMD_CHARS 80u      /* longest command, the '%' not counted */
#define MLPERF_DB_MAX_BYTES 31u   /* bytes one `db HEX` command may carry */

/* Bytes `db load N` may announce: the model's input in its MLPerf Tiny format. */
#ifndef MLPERF_DB_BYTES
#include "mlperf_config.h" /* generated beside model.c (harness/build/mlperf_config.py) */
#endif

/* ---- hooks the model glue implements */
const char *mlperf_dut_name(void);   /* m-name-dut-[NAME]; no ']' in it */
const char *mlperf_model_id(void);   /* m-model-[ID]: ic01, kws01, vww01, ad01 or a build-time id */
uint32_t mlperf_input_bytes(void);   /* bytes `infer` needs loaded (<= MLPERF_DB_BYTES) */
/* Turn the loaded bytes into the model's input; false and *why on failure. */
bool mlperf_prepare(const uint8_t *bytes, uint32_t n, const char **why);
/* Run the model `runs` (>= 1) times on the prepared input; false and *why on failure. */
bool mlperf_infer(uint32_t runs, const char **why);
/* The scores of the last inference: how many, and each one as a real number. */
uint32_t mlperf_score_count(void);
double mlperf_score(uint32_t index);
uint64_t mlperf_micros(void);        /* microseconds from the board's counter */
void mlperf_write(const char *text, uint32_t len);

/* ---- the protocol */
void mlperf_dut_reset(void);          /* forget any command in progress and the loaded bytes */
void mlperf_dut_banner(void);         /* the lines a DUT prints at boot, ending "m-ready" */
void mlperf_dut_push(char c);         /* one received character; answers on '%' */

#endif /* MLPERF_DUT_H */
