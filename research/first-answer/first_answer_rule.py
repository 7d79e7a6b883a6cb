"""What ``size_prior.py`` and ``competitor.py`` share: a rule on an object's first answer, patched
into ``answer.edge_answer`` (the step after the window's answer) for a scratch run of the CLI.
The package is unchanged."""

from __future__ import annotations

import sys
from collections.abc import Callable

from napari_oaims import answer
from napari_oaims.cli import main


def patch_first_answers(rule: Callable) -> None:
    """``rule(session, key, prompts, window, logits, inside, where)`` returns the mask to use for
    an object's first answer (one positive click, not a flat spot, not empty)."""
    original = answer.edge_answer

    def edge_answer(session, key, prompts, window, logits, inside, where, shown=None, flat=False):
        if answer.is_first_answer(session, prompts) and not flat and inside.any():
            inside = rule(session, key, prompts, window, logits, inside, where)
        return original(session, key, prompts, window, logits, inside, where, shown, flat)

    answer.edge_answer = edge_answer


def run(patch: Callable[[float, float], None], counts: dict) -> None:
    """``SCRIPT A B -- CLI ARGS``: the CLI with ``patch(A, B)`` applied (A 0: the package as it is),
    then ``counts``."""
    a, b = float(sys.argv[1]), float(sys.argv[2])
    if a > 0:
        patch(a, b)
    code = main(sys.argv[sys.argv.index("--") + 1 :])
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    sys.exit(code)
