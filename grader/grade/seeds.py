"""Seeds: which inputs a submission is probed with, reproducibly and recorded in its report."""

from __future__ import annotations

import hashlib
import secrets
import zlib

import numpy as np

from grader.rubric.model import SeedPolicy

SEED_BITS = 31


def choose_seed(policy: SeedPolicy, notebook_bytes: bytes, override: int | None = None) -> int:
    if override is not None:
        return override
    if policy.policy == "fixed":
        return policy.value
    if policy.policy == "fresh":
        return secrets.randbits(SEED_BITS)
    digest = hashlib.sha256(f"{policy.value}:".encode() + notebook_bytes).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def check_rng(seed: int, check_id: str) -> np.random.Generator:
    """A generator per check, so adding or removing a check leaves the others' inputs alone."""
    return np.random.default_rng([seed, zlib.crc32(check_id.encode())])
