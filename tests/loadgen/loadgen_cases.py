"""Helpers shared by the load generator's tests."""


def within(measured: float, expected: float, tolerance: float = 0.05) -> bool:
    """measured is within `tolerance` (a fraction) of expected."""
    return abs(measured - expected) <= tolerance * expected
