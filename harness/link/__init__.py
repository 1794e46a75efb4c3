"""Talking to a running firmware: the UART protocol and the device session."""
