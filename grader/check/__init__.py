"""The students' self-check: `grader check NB --task A2` (fewer probes) and, in their own running
kernel, `from grader import selfcheck; selfcheck("A2")` or `%selfcheck A2`."""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """`%load_ext grader.check` registers the `%selfcheck` magic."""
    from grader.check.in_kernel import register_magic

    register_magic(ipython)
