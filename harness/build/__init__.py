"""Integer graph -> generated C -> built ELF (codegen, then the cached firmware build)."""
