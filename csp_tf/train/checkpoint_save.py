"""Checkpoint saves that a SIGKILL at any moment cannot break.

``tf.train.CheckpointManager.save`` writes the new checkpoint's files, then replaces the
``checkpoint`` state file atomically (temp + rename), then deletes the checkpoints beyond
``max_to_keep``. A kill mid-save therefore leaves the state file naming the previous, complete
checkpoint, with one exception: a save under the number of a checkpoint that exists rewrites
that checkpoint's files in place, and a kill then leaves the checkpoint the state file names
half old, half new. ``save_checkpoint`` never reuses a number: a save whose step number is
already taken (an epoch's end right after a periodic save at the same step; the image
classifier's steps, numbered from 0, after the fine-tuning steps) gets the next free number.

It also refuses to save non-finite weights: a step whose loss was finite can still have
produced inf/NaN weights (an overflowing update), and the checkpoint on disk must stay the last
good one.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from csp_tf import diskspace

_NUMBER = re.compile(r"-(\d+)$")


class NonFiniteWeightsError(FloatingPointError):
    """Weights became inf/NaN; the message names the variables and the last good checkpoint."""


def checkpoint_number(prefix: Optional[str]) -> int:
    """The number of ``.../ckpt-N`` (-1 for None or an unnumbered prefix)."""
    match = _NUMBER.search(prefix or "")
    return int(match.group(1)) if match else -1


def save_checkpoint(manager: tf.train.CheckpointManager, number: int, *, what: str = "",
                    variables: Sequence[tf.Variable] = ()) -> str:
    """Saves ``manager``'s checkpoint as ``ckpt-<number>``, or under the next free number when
    ``number`` is not above every kept checkpoint's; returns its prefix.

    Raises:
      NonFiniteWeightsError: a variable of ``variables`` holds inf/NaN (nothing is written).
    """
    bad = [v for v in variables if not np.all(np.isfinite(v.numpy()))]
    if bad:
        names = ", ".join(str(getattr(v, "path", None) or v.name) for v in bad[:5])
        raise NonFiniteWeightsError(
            f"{what or 'training'}: {len(bad)} variable(s) became inf/NaN ({names}"
            f"{', ...' if len(bad) > 5 else ''}); not saved, the last good checkpoint is "
            f"{manager.latest_checkpoint or 'none (no checkpoint was written)'}. Lower the "
            "learning rate or check the inputs for extreme values.")
    taken = max([checkpoint_number(p) for p in manager.checkpoints] + [-1])
    try:
        return manager.save(checkpoint_number=max(int(number), taken + 1))
    except Exception as exc:  # a full disk: name the path and the space, keep the last one
        full = diskspace.checkpoint_disk_full(exc, manager.directory, manager.latest_checkpoint)
        if full is not None:
            raise full from exc
        raise
