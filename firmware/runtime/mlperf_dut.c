/*
 * MLPerf Tiny DUT commands: name, profile, timestamp, db load N, db HEX, infer N [W], results.
 * Everything is bounded: a command longer than MLPERF_CMD_CHARS is dropped whole and answered
 * with an error, a `db` command is checked whole (hex, length, room left) before one byte is
 * stored, numbers have at most 9 digits. A bad command changes nothing and answers e-[...].
 */
#include "mlperf_dut.h"

#include <stddef.h>

#define MAX_TOKENS 4u
#define MAX_NUMBER_DIGITS 9u /* < 10^9: fits uint32_t */
#define PROFILE "mpq-harness MLPerf Tiny DUT 1"

static struct {
    char line[MLPERF_CMD_CHARS + 1u];
    uint32_t len;
    bool overlong;              /* the command in progress passed MLPERF_CMD_CHARS */
    uint8_t db[MLPERF_DB_BYTES];
    uint32_t db_expected;       /* bytes the last `db load` announced, 0: none */
    uint32_t db_loaded;
    bool have_results;          /* an inference ran since the last load */
} dut;

static uint32_t text_len(const char *s) {
    uint32_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

static void put(const char *s) {
    mlperf_write(s, text_len(s));
}

static void put_u64(uint64_t value) {
    char digits[21];
    uint32_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    mlperf_write(digits + n, (uint32_t)sizeof digits - n);
}

/* A real number with 3 decimals: round(|x| * 1000) half away from zero, in double arithmetic
 * (the host side reproduces it exactly, harness/link/mlperf.py). */
static void put_fixed3(double x) {
    double milli = x * 1000.0;
    bool negative = milli < 0.0;
    double magnitude = (negative ? -milli : milli) + 0.5;
    if (!(magnitude < 1.8e19)) { /* NaN or beyond uint64: no number to print */
        put("nan");
        return;
    }
    uint64_t rounded = (uint64_t)magnitude; /* truncation of |x|*1000 + 0.5 = floor */
    if (negative && rounded != 0u) {
        put("-");
    }
    put_u64(rounded / 1000u);
    char frac[4] = {'.', (char)('0' + rounded / 100u % 10u), (char)('0' + rounded / 10u % 10u),
                    (char)('0' + rounded % 10u)};
    mlperf_write(frac, 4);
}

static void put_ready(void) {
    put("m-ready\r\n");
}

/* e-[message] */
static void error(const char *message) {
    put("e-[");
    put(message);
    put("]\r\n");
}

static bool streq(const char *a, const char *b) {
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* A decimal number of 1..MAX_NUMBER_DIGITS digits, nothing else. */
static bool parse_number(const char *s, uint32_t *value) {
    uint32_t n = 0, v = 0;
    for (; s[n] != '\0'; ++n) {
        if (n == MAX_NUMBER_DIGITS || s[n] < '0' || s[n] > '9') {
            return false;
        }
        v = v * 10u + (uint32_t)(s[n] - '0');
    }
    *value = v;
    return n > 0u;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static void db_load(const char *count) {
    uint32_t n;
    if (count == NULL || !parse_number(count, &n) || n == 0u) {
        error("db load needs a byte count of 1 or more");
        return;
    }
    if (n > MLPERF_DB_BYTES) {
        error("db load: more bytes than the input buffer holds");
        return;
    }
    dut.db_expected = n;
    dut.db_loaded = 0;
    dut.have_results = false;
    put("m-[Expecting ");
    put_u64(n);
    put(" bytes]\r\n");
}

static void db_bytes(const char *hex) {
    uint32_t digits = text_len(hex);
    if (dut.db_expected == 0u || dut.db_loaded == dut.db_expected) {
        error("db data before db load");
        return;
    }
    if (digits % 2u != 0u) {
        error("db: odd number of hex digits");
        return;
    }
    if (digits > 2u * MLPERF_DB_MAX_BYTES) {
        error("db: more than 31 bytes in one command");
        return;
    }
    for (uint32_t i = 0; i < digits; ++i) {
        if (hex_value(hex[i]) < 0) {
            error("db: invalid hex digit");
            return;
        }
    }
    if (digits / 2u > dut.db_expected - dut.db_loaded) {
        error("db: more bytes than db load announced");
        return;
    }
    for (uint32_t i = 0; i < digits; i += 2u) {
        dut.db[dut.db_loaded++] = (uint8_t)(hex_value(hex[i]) << 4 | hex_value(hex[i + 1u]));
    }
    if (dut.db_loaded == dut.db_expected) {
        put("m-load-done\r\n");
    }
}

static void results(void) {
    put("m-results-[");
    uint32_t n = mlperf_score_count();
    for (uint32_t i = 0; i < n; ++i) {
        if (i != 0u) {
            put(",");
        }
        put_fixed3(mlperf_score(i));
    }
    put("]\r\n");
}

static void lap(void) {
    put("m-lap-us-");
    put_u64(mlperf_micros());
    put("\r\n");
}

static void infer(const char *runs_text, const char *warmups_text) {
    uint32_t runs = 1, warmups = 10; /* the reference firmware's defaults */
    const char *why = "";
    if (runs_text != NULL && (!parse_number(runs_text, &runs) || runs == 0u)) {
        error("infer: the inference count must be a number of 1 or more");
        return;
    }
    if (warmups_text != NULL && !parse_number(warmups_text, &warmups)) {
        error("infer: the warmup count must be a number");
        return;
    }
    if (dut.db_expected == 0u || dut.db_loaded != dut.db_expected) {
        error("infer: no complete input loaded (db load, then db until m-load-done)");
        return;
    }
    if (dut.db_loaded != mlperf_input_bytes()) {
        error("infer: the loaded byte count is not the model's input size");
        return;
    }
    if (!mlperf_prepare(dut.db, dut.db_loaded, &why)) {
        error(why);
        return;
    }
    put("m-warmup-start-");
    put_u64(warmups);
    put("\r\n");
    if (warmups != 0u && !mlperf_infer(warmups, &why)) {
        error(why);
        return;
    }
    put("m-warmup-done\r\nm-infer-start-");
    put_u64(runs);
    put("\r\n");
    lap();
    bool ok = mlperf_infer(runs, &why);
    lap();
    if (!ok) {
        error(why);
        return;
    }
    dut.have_results = true;
    put("m-infer-done\r\n");
    results();
}

static void dispatch(char **tokens, uint32_t n) {
    const char *command = tokens[0];
    const char *arg1 = n > 1u ? tokens[1] : NULL;
    const char *arg2 = n > 2u ? tokens[2] : NULL;
    if (streq(command, "name") && n == 1u) {
        put("m-name-dut-[");
        put(mlperf_dut_name());
        put("]\r\n");
    } else if (streq(command, "profile") && n == 1u) {
        put("m-profile-[" PROFILE "]\r\nm-model-[");
        put(mlperf_model_id());
        put("]\r\n");
    } else if (streq(command, "timestamp") && n == 1u) {
        lap();
    } else if (streq(command, "db") && n == 3u && streq(arg1, "load")) {
        db_load(arg2);
    } else if (streq(command, "db") && n == 2u && !streq(arg1, "load")) {
        db_bytes(arg1);
    } else if (streq(command, "db")) {
        error("db takes 'load N' or one run of hex bytes");
    } else if (streq(command, "infer") && n <= 3u) {
        infer(arg1, arg2);
    } else if (streq(command, "results") && n == 1u) {
        if (dut.have_results) {
            results();
        } else {
            error("results: no inference since the last load");
        }
    } else {
        error("unknown command or wrong arguments (name, profile, timestamp, db load N, db HEX, infer N W, results)");
    }
}

/* Split the command at spaces in place; at most MAX_TOKENS tokens (more: returns MAX_TOKENS + 1). */
static uint32_t tokenize(char *line, char **tokens) {
    uint32_t n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            return n;
        }
        if (n == MAX_TOKENS) {
            return MAX_TOKENS + 1u;
        }
        tokens[n++] = p;
        while (*p != ' ' && *p != '\0') {
            p++;
        }
    }
}

static void execute(void) {
    char *tokens[MAX_TOKENS];
    dut.line[dut.len] = '\0';
    uint32_t n = tokenize(dut.line, tokens);
    if (n == 0u) {
        error("empty command");
    } else if (n > MAX_TOKENS) {
        error("too many arguments");
    } else {
        dispatch(tokens, n);
    }
}

void mlperf_dut_reset(void) {
    dut.len = 0;
    dut.overlong = false;
    dut.db_expected = 0;
    dut.db_loaded = 0;
    dut.have_results = false;
}

void mlperf_dut_banner(void) {
    put("m-timestamp-mode-performance\r\nm-init-done\r\n");
    put_ready();
}

void mlperf_dut_push(char c) {
    if (c == '%') {
        if (dut.overlong) {
            error("command longer than 80 characters");
        } else {
            execute();
        }
        put_ready();
        dut.len = 0;
        dut.overlong = false;
        return;
    }
    if (c == '\r' || c == '\n' || c == '\0') {
        return; /* line ends some terminals add */
    }
    if (c == '\t') {
        c = ' ';
    }
    if (dut.len < MLPERF_CMD_CHARS) {
        dut.line[dut.len++] = c;
    } else {
        dut.overlong = true;
    }
}
