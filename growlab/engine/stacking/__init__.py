"""Runs that differ only in seed trained together as one stack of replicas."""
