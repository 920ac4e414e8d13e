"""Pure-Python twins of the compiled modules, with the same names and behaviour."""
