"""growlab: grow networks layer by layer and compare the ways of growing them."""

__version__ = "0.2.0"
