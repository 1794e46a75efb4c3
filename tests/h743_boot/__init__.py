"""A boot check of the STM32H743 firmware image in the unicorn CPU emulator (see machine.py)."""
