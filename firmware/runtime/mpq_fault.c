/*
 * Fault reports: the BSP's fault handler calls bsp_on_fault, which formats the registers into one
 * line for the front end to send (the binary protocol: a FAULT error frame, seq 0), so the host
 * fails at once with the cause instead of timing out.
 */
#include <stdint.h>

#include "bsp.h"
#include "mpq_fault.h"

#define MESSAGE_BYTES 160u

typedef struct {
    char text[MESSAGE_BYTES];
    uint32_t len;
} message_t;

static void append(message_t *m, const char *s) {
    while (*s != '\0' && m->len < MESSAGE_BYTES - 1u) {
        m->text[m->len++] = *s++;
    }
    m->text[m->len] = '\0';
}

static void append_hex(message_t *m, const char *label, uint32_t value) {
    static const char digits[] = "0123456789abcdef";
    char hex[12] = {' ', '\0'};
    append(m, " ");
    append(m, label);
    append(m, "=0x");
    for (int i = 0; i < 8; ++i) {
        hex[i] = digits[(value >> (28 - 4 * i)) & 0xFu];
    }
    hex[8] = '\0';
    append(m, hex);
}

static const char *exception_name(uint32_t exception) {
    static const char *const names[] = {"thread mode", "reset", "NMI", "HardFault", "MemManage", "BusFault",
                                        "UsageFault"};
    if (exception < sizeof names / sizeof names[0]) {
        return names[exception];
    }
    return exception >= 16u ? "unexpected interrupt" : "unexpected exception";
}

void bsp_on_fault(const bsp_fault_t *fault) {
    message_t m = {.len = 0};
    append(&m, exception_name(fault->exception));
    append_hex(&m, "exception", fault->exception);
    append_hex(&m, "pc", fault->pc);
    append_hex(&m, "lr", fault->lr);
    append_hex(&m, "psr", fault->psr);
    append_hex(&m, "cfsr", fault->cfsr);
    append_hex(&m, "hfsr", fault->hfsr);
    append_hex(&m, "bfar", fault->bfar);
    append_hex(&m, "mmfar", fault->mmfar);
    mpq_report_fault(m.text);
}
