"""A researcher's own growth operators, kept outside growlab (see ../README.md)."""
