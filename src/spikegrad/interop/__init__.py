"""Interchange with other simulators and neuromorphic tool chains (NIR)."""
