"""The growth science: growable networks, growth operators, strategies and objectives.

Importing the package registers growlab's model families (growlab.growth.model_families)."""

from growlab.growth import model_families as model_families
