/*
 * Fault reports (mpq_fault.c formats them): each front end sends the one-line message its own
 * way, the binary protocol as a FAULT error frame, the MLPerf Tiny one as an e-[...] line.
 */
#ifndef MPQ_FAULT_H
#define MPQ_FAULT_H

/* Implemented by the front end (main.c, mlperf_main.c); called with interrupts masked, on the
 * fault stack: it may only use bsp_uart_write(). */
void mpq_report_fault(const char *message);

#endif /* MPQ_FAULT_H */
