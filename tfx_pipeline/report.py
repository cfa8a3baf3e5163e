"""A short, honest report of one pipeline run: accuracy table, gate decision, wall times.

Two sources, both named in the output: ``csp_tf.evaluate`` on the eval split, run by the
fine-tuning Trainer (``metrics.json``: fused CSP vs image-only vs location-only), and the
Evaluator's TFMA metrics of the exported ``serving_default`` signature (fused only, overall and
per region) that decided the blessing.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

METHODS = (("image", "Img-only   P(y|img)"), ("location", "Loc-only   P(y|loc)"),
           ("fused", "CSP        P(y|img)·P(y|loc)"))


def trainer_metrics(model_run_dir: Optional[str]) -> Optional[Dict[str, Any]]:
    """The fine-tuning Trainer's ``metrics.json`` (None if absent)."""
    import tensorflow as tf

    if not model_run_dir:
        return None
    path = os.path.join(model_run_dir, "metrics.json")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def tfma_metrics(evaluation_dir: Optional[str]) -> Dict[str, Dict[str, float]]:
    """{slice name: {metric: value}} from the Evaluator output ("overall", "region=asia", ...)."""
    if not evaluation_dir:
        return {}
    import tensorflow_model_analysis as tfma

    out: Dict[str, Dict[str, float]] = {}
    for record in tfma.load_metrics(evaluation_dir):
        keys = record.slice_key.single_slice_keys
        name = ",".join(f"{k.column}={_slice_value(k)}" for k in keys) or "overall"
        values = {}
        for kv in record.metric_keys_and_values:
            if kv.key.model_name == "baseline" or kv.key.is_diff:
                continue  # the candidate's own values only
            if kv.value.HasField("double_value"):
                values[kv.key.name] = kv.value.double_value.value
        out[name] = values
    return out


def format_report(summary: Dict[str, Any]) -> str:
    """The text report of a ``run_local`` summary."""
    lines: List[str] = []
    tm = trainer_metrics(summary.get("model_run_dir"))
    if tm:
        m = tm["metrics"]
        n = int(m["fused"].get("count", 0))
        lines.append(f"Accuracy on the {'/'.join(tm['splits'])} split ({n} rows, label ratio "
                     f"{tm['label_ratio']}), csp_tf.evaluate in the fine-tuning Trainer:")
        lines.append(f"  {'method':32s} {'top-1 %':>8s} {'top-3 %':>8s} {'MRR':>7s}")
        for key, label in METHODS:
            r = m[key]
            lines.append(f"  {label:32s} {r['top1']:8.2f} {r['top3']:8.2f} {r['mrr']:7.3f}")
    tf_metrics = tfma_metrics(summary.get("evaluation_dir"))
    if tf_metrics:
        lines.append("Evaluator (TFMA, serving_default 'probabilities' = fused CSP):")
        lines.append(f"  {'slice':32s} {'top-1 %':>8s} {'top-3 %':>8s} {'rows':>7s}")
        for name in sorted(tf_metrics, key=lambda s: (s != "overall", s)):
            v = tf_metrics[name]
            lines.append(f"  {name:32s} {100 * v.get('top1_accuracy', float('nan')):8.2f} "
                         f"{100 * v.get('top3_accuracy', float('nan')):8.2f} "
                         f"{int(v.get('example_count', 0)):7d}")
    pushed = (summary.get("pushed_dir") or "yes") if summary.get("pushed") else "nothing"
    lines.append(f"Blessed: {'yes' if summary.get('blessed') else 'no'}; pushed: {pushed}")
    if not summary.get("blessed") and summary.get("not_blessed_reason"):
        lines.append(f"Push skipped: {summary['not_blessed_reason']}")
    comps = summary.get("components", {})
    if comps:
        lines.append("Component wall times (MLMD execution timestamps):")
        for node, c in comps.items():
            lines.append(f"  {node:32s} {c['state']:9s} {c['seconds']:8.1f} s")
        if summary.get("wall_seconds") is not None:
            lines.append(f"  {'whole run (incl. orchestration)':32s} {'':9s} "
                         f"{summary['wall_seconds']:8.1f} s")
    return "\n".join(lines)


def _slice_value(key) -> str:
    which = key.WhichOneof("kind")
    value = getattr(key, which) if which else ""
    return value.decode() if isinstance(value, bytes) else str(value)
