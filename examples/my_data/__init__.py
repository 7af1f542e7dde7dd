"""A researcher's own data sets, registered with growlab from outside it (see moons.py)."""
