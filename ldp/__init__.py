"""Federated heavy hitters under local differential privacy (oracles, PEM, TAP/TAPS)."""
