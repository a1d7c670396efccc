"""Reproducible randomness: one generator per (seed, device, purpose, time), never shared state.

A value depends only on its key, so a reading is the same however the simulation is cut into
steps, restarted or run in another process (string seeds are hashed with SHA-512 by ``random``,
independent of ``PYTHONHASHSEED``).
"""

from __future__ import annotations

import random


def seeded_random(seed: int, *key: object) -> random.Random:
    """A generator seeded by ``seed`` and the parts of ``key`` (their ``str`` forms)."""
    return random.Random("|".join([str(seed), *map(str, key)]))
