"""The growth science: growable networks, growth operators, strategies and objectives."""
