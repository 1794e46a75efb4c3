/* The protocol's commands (docs/protocol.md, "Commands"): decode a request, answer it. */
#ifndef MPQ_COMMANDS_H
#define MPQ_COMMANDS_H

#include "mpq_protocol.h"

/* Answer one received frame: its answer, or an error frame. */
void mpq_handle_request(const mpq_frame_t *request);

/* The unsolicited frame sent once after reset: the model hash. */
void mpq_send_hello(void);

#endif /* MPQ_COMMANDS_H */
