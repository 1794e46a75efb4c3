/* The protocol's commands (docs/protocol.md, "Commands"): decode a request, answer it. */
#ifndef MPQ_COMMANDS_H
#define MPQ_COMMANDS_H

#include "mpq_protocol.h"

/* Answer one received frame: its answer, or an error frame. */
void mpq_handle_request(const mpq_frame_t *request);

/* Answer every frame the receiver can complete now (BAD_CRC for a corrupt request). */
void mpq_serve_frames(mpq_rx_t *rx);

/* The unsolicited frame sent once after reset: the model hash. */
void mpq_send_hello(void);

#endif /* MPQ_COMMANDS_H */
