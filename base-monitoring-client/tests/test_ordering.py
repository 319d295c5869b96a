"""Ordering guard: per series strictly increasing timestamps, independent across series."""

from __future__ import annotations

from monitoring_client.ordering import OrderingGuard

A = (("__name__", "a"),)
B = (("__name__", "b"),)


def test_only_strictly_newer_samples_pass_per_series() -> None:
    guard = OrderingGuard()
    assert guard.accept(A, 100)
    assert not guard.accept(A, 100)  # duplicate timestamp
    assert not guard.accept(A, 99)  # older
    assert guard.accept(B, 50)  # other series unaffected
    assert guard.accept(A, 101)
    assert guard.last(A) == 101 and guard.last(B) == 50
    assert len(guard) == 2


def test_rejected_sample_does_not_move_the_mark() -> None:
    guard = OrderingGuard()
    guard.accept(A, 10)
    guard.accept(A, 5)
    assert guard.last(A) == 10
    assert guard.accept(A, 11)
