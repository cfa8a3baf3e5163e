"""The paper's protocol (docs/reference.md §11): methods × label ratios × seeds, one results table.

For every seed, every method: pre-train once (methods with a pre-training loss), then for every
label ratio fine-tune from that one pre-trained encoder (or from scratch for Sup-only), train
the linear image classifier on the same labels, and evaluate on the ``val`` split
(``csp_tf.evaluate.evaluate_model``). Layout of ``out_dir``::

    protocol.json                          what was asked (methods, ratios, seeds, base config)
    results.csv / results.md               one row per finished cell / mean ± std tables
    pretrain/<method>/seed<s>/             pre-training stage (shared by every ratio)
    finetune/<method>/ratio<r>/seed<s>/    fine-tuning stage of one cell

Resumable at two levels: a cell with a row in ``results.csv`` (same config fingerprint) is
skipped; a stage directory holding ``model.keras`` is reused; an interrupted stage resumes from
its checkpoints. A stage or row made by a *different* config raises instead of being reused.

The data root is read once (``csp_tf.train.data_root.DataRoot``: its labeled splits stay in
memory for the whole run) and every stage's inputs come from ``stage_inputs``, as for the CLI
and the TFX Trainers.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
import time
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from csp_tf.capacity import describe as describe_capacity, resolve_capacity
from csp_tf.configs import ConfigError, ExperimentConfig
from csp_tf.experiments import results as res
from csp_tf.experiments.methods import Method, as_dict, config_fingerprint, method_config
from csp_tf.train.data_root import DataRoot, stage_inputs

Echo = Callable[[str], None]
TIMING_FILE = "timing.json"


@dataclasses.dataclass
class Protocol:
    """What to run.

    Attributes:
      data_root: an ingested data root (``csp-tf ingest`` / ``csp-tf generate --ingest``).
      out_dir: where stages, ``results.csv`` and ``results.md`` go.
      base_config: the preset + overrides every method starts from.
      methods / ratios / seeds: the grid.
      split: the evaluation split (``test``; whatever is chosen on data — the probe's L2, the
        fusion weights, the baselines' k and C — is chosen on ``val``).
      config_name: how the base config is named in ``results.md`` (e.g. ``demo``).
      base_model: a pre-trained encoder (a shipped name such as ``places``, an encoder dir of
        ``csp-tf export-encoder`` or a ``csp-tf pretrain`` dir) that every pre-training method
        fine-tunes from instead of pre-training once per seed: its location encoder (network,
        scales, weights) replaces the method's, and the seeds vary fine-tuning only.
      eval_every: > 0 records a learning curve: every that many fine-tuning epochs, the
        location-only top-1 on the evaluation split, and the fused top-1 when the Img-only
        cell of the same (ratio, seed) exists (its image classifier is the one the cell will
        train: same labels, same seed), go into the cell's ``history.json`` as ``val_*``.
    """

    data_root: str
    out_dir: str
    base_config: ExperimentConfig
    methods: Sequence[Method]
    ratios: Sequence[float]
    seeds: Sequence[int]
    split: str = "test"
    config_name: str = "custom"
    eval_every: int = 0
    base_model: Optional[str] = None

    @property
    def total_cells(self) -> int:
        return len(self.methods) * len(self.ratios) * len(self.seeds)

    @property
    def results_csv(self) -> str:
        return os.path.join(self.out_dir, "results.csv")

    @property
    def results_md(self) -> str:
        return os.path.join(self.out_dir, "results.md")

    def pretrain_dir(self, method: Method, seed: int) -> str:
        return os.path.join(self.out_dir, "pretrain", method.name, f"seed{seed}")

    def finetune_dir(self, method: Method, ratio: float, seed: int) -> str:
        return os.path.join(self.out_dir, "finetune", method.name, f"ratio{ratio:g}", f"seed{seed}")


def fingerprint_hash(cfg: ExperimentConfig, ignore: Sequence[str] = ()) -> str:
    """12 hex digits identifying the result-deciding parts of a config."""
    text = json.dumps(config_fingerprint(cfg, ignore), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class BaseEncoder:
    """A given pre-trained encoder: its directory, saved config and a digest of its weights file
    (so results from two different encoders never pass for one)."""

    path: str
    config: ExperimentConfig
    digest: str

    @classmethod
    def open(cls, name_or_dir: str) -> "BaseEncoder":
        from csp_tf.pretrained import KERAS_FILE
        from csp_tf.train.base_encoder import resolve_base

        path = resolve_base(name_or_dir)
        weights = [os.path.join(path, f) for f in (KERAS_FILE, "model.keras")]
        weights = [w for w in weights if os.path.isfile(w)]
        cfg_path = os.path.join(path, "config.yaml")
        if not weights or not os.path.isfile(cfg_path):
            raise ConfigError(f"base model {name_or_dir!r}: not a shipped encoder name, an encoder "
                              f"dir or a pretrain dir (needs config.yaml and {KERAS_FILE} or "
                              "model.keras)")
        with open(weights[0], "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return cls(path, ExperimentConfig.load(cfg_path), digest)

    def apply(self, cfg: ExperimentConfig) -> ExperimentConfig:
        """``cfg`` with this encoder's location-encoder section (what fine-tuning loads into)."""
        out = cfg.copy()
        out.location_encoder = self.config.copy().location_encoder
        return out.validate()

    def tag(self, digest: str) -> str:
        """A cell's config hash extended by the encoder's weights."""
        return hashlib.sha1(f"{digest}:{self.digest}".encode()).hexdigest()[:12]


def stage_done(stage_dir: str, cfg: ExperimentConfig, ignore: Sequence[str] = ()) -> bool:
    """True if ``stage_dir`` holds a finished stage made by ``cfg`` (up to the ``ignore``d
    sections); ConfigError if it was made by another config (delete it or use another --out)."""
    if not os.path.exists(os.path.join(stage_dir, "model.keras")):
        return False
    saved = ExperimentConfig.load(os.path.join(stage_dir, "config.yaml"))
    if fingerprint_hash(saved, ignore) != fingerprint_hash(cfg, ignore):
        raise ConfigError(f"{stage_dir} was trained with a different config than this run asks "
                          "for; use another --out (or delete that directory)")
    return True


def _read_seconds(stage_dir: str) -> float:
    path = os.path.join(stage_dir, TIMING_FILE)
    if not os.path.exists(path):
        return float("nan")
    with open(path) as f:
        return float(json.load(f).get("seconds", float("nan")))


def _write_seconds(stage_dir: str, seconds: float) -> None:
    with open(os.path.join(stage_dir, TIMING_FILE), "w") as f:
        json.dump({"seconds": seconds}, f)


def _run_pretrain(p: Protocol, cfg: ExperimentConfig, method: Method, seed: int,
                  data: DataRoot) -> float:
    """Pre-trains (or reuses) the encoder of (method, seed); returns its training seconds."""
    from csp_tf.train import pretrain

    out = p.pretrain_dir(method, seed)
    if stage_done(out, cfg, ignore=("finetune",)):  # fine-tuning settings do not change it
        return _read_seconds(out)
    t0 = time.time()
    result = pretrain(cfg, output_dir=out, **stage_inputs(cfg, data, "pretrain"))
    seconds = time.time() - t0
    if not result.completed:
        raise RuntimeError(f"pre-training in {out} did not complete")
    _write_seconds(out, seconds)
    return seconds


def _image_probs(p: Protocol, ratio: float, seed: int, data: DataRoot) -> Optional[np.ndarray]:
    """P(y|img) on the evaluation split from the Img-only cell of (ratio, seed), if it exists."""
    from csp_tf.evaluate import predict_arrays
    from csp_tf.experiments.methods import get_method
    from csp_tf.models.loading import load_csp_model

    cell = p.finetune_dir(get_method("img_only"), ratio, seed)
    if not os.path.exists(os.path.join(cell, "model.keras")):
        return None
    ev = data.labeled(p.split)
    out = predict_arrays(load_csp_model(cell), ev["lon_lat"], ev["image_features"])
    return out["image_probabilities"]


def _curve_callback(p: Protocol, data: DataRoot, image_probs: Optional[np.ndarray]):
    """on_epoch_end for ``finetune``: val location (and fused) top-1 every ``p.eval_every`` epochs."""
    from csp_tf.evaluate import predict_arrays, ranking_metrics

    ev = data.labeled(p.split)
    labels, lon_lat, feats = ev["label"], ev["lon_lat"], ev["image_features"]

    def callback(model, epoch: int) -> Dict[str, float]:
        if (epoch + 1) % p.eval_every:
            return {}
        loc = predict_arrays(model, lon_lat, feats)["location_probabilities"]
        missing = np.isnan(lon_lat).any(axis=1)[:, None]
        out = {"val_location_top1": ranking_metrics(loc[~missing[:, 0]], labels[~missing[:, 0]])["top1"]}
        if image_probs is not None:
            fused = image_probs * np.where(missing, 1.0, loc)
            out["val_fused_top1"] = ranking_metrics(fused, labels)["top1"]
        return out

    return callback


def _run_finetune(p: Protocol, cfg: ExperimentConfig, method: Method, ratio: float, seed: int,
                  data: DataRoot, base_dir: Optional[str]):
    """Fine-tunes (or reloads) one cell; returns (model, seconds, labeled rows)."""
    from csp_tf.train import finetune

    out = p.finetune_dir(method, ratio, seed)
    n_labeled = len(data.labeled("train", ratio)["label"])
    # A finished stage is restored by ``finetune`` from its checkpoint (no epoch is run again).
    done = stage_done(out, cfg)
    callback = None
    if p.eval_every > 0 and not method.image_only and not done:
        callback = _curve_callback(p, data, _image_probs(p, ratio, seed, data))
    history_path = os.path.join(out, "history.json")
    history = open(history_path).read() if done and os.path.exists(history_path) else None
    t0 = time.time()
    result = finetune(cfg, output_dir=out, base_model_dir=base_dir, on_epoch_end=callback,
                      **stage_inputs(cfg, data, "finetune"))
    seconds = time.time() - t0
    if not result.completed:
        raise RuntimeError(f"fine-tuning in {out} did not complete")
    if done:
        if history is not None:  # a no-op re-run saves an empty history over the real one
            with open(history_path, "w") as f:
                f.write(history)
        return result.model, _read_seconds(out), n_labeled
    _write_seconds(out, seconds)
    return result.model, seconds, n_labeled


def _write_protocol_json(p: Protocol, cfg: ExperimentConfig) -> None:
    info = {"data_root": p.data_root, "split": p.split, "config_name": p.config_name,
            "base_model": p.base_model,
            "methods": [as_dict(m) for m in p.methods], "ratios": list(p.ratios),
            "seeds": list(p.seeds), "base_config": cfg.to_dict()}
    with open(os.path.join(p.out_dir, "protocol.json"), "w") as f:
        json.dump(info, f, indent=2, default=str)


def _write_tables(p: Protocol, rows: List[Dict[str, object]]) -> None:
    order = {m.name: i for i, m in enumerate(p.methods)}
    rows.sort(key=lambda r: (order.get(str(r["method"]), len(order)), float(r["ratio"]),  # type: ignore[arg-type]
                             int(r["seed"])))  # type: ignore[arg-type]
    res.write_results(p.results_csv, rows)
    with open(p.results_md, "w") as f:
        f.write(res.render_markdown(rows, p.methods, p.ratios, p.seeds, data_root=p.data_root,
                                    split=p.split, preset=p.config_name, total_cells=p.total_cells))


def run_protocol(p: Protocol, echo: Echo = print) -> List[Dict[str, object]]:
    """Runs every unfinished cell of the grid; returns all result rows (old and new).

    Order: seeds, then methods, then ratios, so each pre-trained encoder is used for all its
    ratios right away and an interrupted run leaves complete seeds behind.
    """
    os.makedirs(p.out_dir, exist_ok=True)
    data = DataRoot.open(p.data_root)
    base = data.configure(p.base_config).validate()
    _write_protocol_json(p, base)
    rows = res.read_results(p.results_csv)
    by_key = {res.cell_key(str(r["method"]), float(r["ratio"]), int(r["seed"])): r  # type: ignore[arg-type]
              for r in rows if str(r.get("split", p.split)) == p.split}
    baselines: Dict[float, object] = {}
    given = BaseEncoder.open(p.base_model) if p.base_model else None
    if given is not None:
        echo(f"experiment: pre-training methods fine-tune from {p.base_model} (weights "
             f"{given.digest}) instead of pre-training")
    echo(f"experiment: {len(p.methods)} methods × {len(p.ratios)} ratios × {len(p.seeds)} seeds "
         f"= {p.total_cells} cells -> {p.out_dir}")
    index, ran, t_run = 0, 0, 0.0
    for seed in p.seeds:
        for method in p.methods:
            pre_cfg = method_config(base, method, seed)
            pre_seconds = float("nan")
            for ratio in p.ratios:
                index += 1
                cfg = method_config(base, method, seed, ratio)
                from_given = given is not None and method.pretrains
                if from_given:
                    cfg = given.apply(cfg)
                if not (method.baseline or method.image_only):  # capacity=auto: from this subset
                    cfg = resolve_capacity(cfg, data.labeled("train", ratio)["lon_lat"],
                                           keep_encoder=method.pretrains)
                digest = fingerprint_hash(cfg)
                if from_given:
                    digest = given.tag(digest)
                tag = f"[{index}/{p.total_cells}] {method.name:<16} ratio={ratio:<5g} seed={seed}"
                if cfg.location_encoder.capacity == "auto" and not method.baseline:
                    echo(f"{tag}: {describe_capacity(cfg)}")
                old = by_key.get(res.cell_key(method.name, ratio, seed))
                if old is not None:
                    if old.get("config_hash") != digest:
                        raise ConfigError(
                            f"{p.results_csv} has a result for {method.name} ratio={ratio:g} "
                            f"seed={seed} from a different config ({old.get('config_hash')} vs "
                            f"{digest}); use another --out")
                    echo(f"{tag}: done earlier (top1 {float(old['top1']):.2f}), skipped")  # type: ignore[arg-type]
                    continue
                t0 = time.time()
                model = None
                if method.baseline:
                    row = _baseline_row(p, method, ratio, seed, data, baselines, digest)
                else:
                    base_dir = None
                    if from_given:
                        base_dir = given.path
                    elif method.pretrains:
                        if np.isnan(pre_seconds):
                            echo(f"{tag}: pre-training {method.pretrain_loss} ...")
                            pre_seconds = _run_pretrain(p, pre_cfg, method, seed, data)
                        base_dir = p.pretrain_dir(method, seed)
                    model, ft_seconds, n_labeled = _run_finetune(p, cfg, method, ratio, seed,
                                                                 data, base_dir)
                    t_eval = time.time()
                    from csp_tf.evaluate import evaluate_model
                    metrics = evaluate_model(model, data.labeled(p.split))
                    row = res.metrics_row(
                        method, ratio, seed, p.split, metrics, train_rows=n_labeled,
                        pretrain_s=pre_seconds, finetune_s=ft_seconds,
                        eval_s=time.time() - t_eval, config_hash=digest, finished_at=_now())
                by_key[res.cell_key(method.name, ratio, seed)] = row
                _write_tables(p, list(by_key.values()))
                ran += 1
                if model is None:  # a baseline: seconds, not worth an ETA
                    echo(f"{tag}: {row['score']} top1 {row['top1']:.2f} | {time.time() - t0:.0f} s")
                    continue
                t_run += time.time() - t0
                left = p.total_cells - index
                eta = f", ~{t_run / ran * left / 60:.0f} min left" if left else ""
                loc = "" if method.image_only else f" | location top1 {row['location_top1']:.2f}"
                echo(f"{tag}: {row['score']} top1 {row['top1']:.2f} top3 {row['top3']:.2f}{loc}"
                     f" | {time.time() - t0:.0f} s{eta}")
                _release(model)
    rows = list(by_key.values())
    _write_tables(p, rows)
    if p.eval_every > 0:
        from csp_tf.experiments.curves import plot_learning_curves
        path = plot_learning_curves(p, os.path.join(p.out_dir, "learning_curves.png"))
        if path:
            echo(f"experiment: wrote {path}")
    echo(f"experiment: {ran} cell(s) run, {p.total_cells - ran} reused; wrote {p.results_csv} "
         f"and {p.results_md}")
    return rows


def _baseline_row(p: Protocol, method: Method, ratio: float, seed: int, data: DataRoot,
                  cache: Dict[float, object], digest: str) -> Dict[str, object]:
    """Fits (once per ratio: they are deterministic) and scores the scikit-learn baselines."""
    from csp_tf.evaluate import ranking_metrics
    from csp_tf.experiments.baselines import BaselineSuite, located_labeled

    if ratio not in cache:
        t0 = time.time()
        stats = data.feature_stats
        suite = BaselineSuite(data.num_classes, *(stats if stats is not None else (None, None)))
        suite.fit(located_labeled(data.labeled("train", ratio)), located_labeled(data.labeled("val")))
        ev = located_labeled(data.labeled(p.split))
        cache[ratio] = (suite, ev, suite.scores(ev), time.time() - t0)
        os.makedirs(os.path.join(p.out_dir, "baselines"), exist_ok=True)
        with open(os.path.join(p.out_dir, "baselines", f"ratio{ratio:g}.json"), "w") as f:
            json.dump({"chosen_on_val": suite.chosen, "fit_seconds": suite.seconds}, f, indent=2)
    suite, ev, scores, seconds = cache[ratio]  # type: ignore[misc]
    metrics = {method.baseline: ranking_metrics(scores[method.name], ev["label"])}
    return res.metrics_row(
        method, ratio, seed, p.split, metrics, train_rows=len(data.labeled("train", ratio)["label"]),
        pretrain_s=float("nan"), finetune_s=seconds, eval_s=0.0, config_hash=digest,
        finished_at=_now())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _release(model) -> None:
    """Frees the finished cell's model and Keras graph state before the next cell."""
    import keras
    del model
    keras.backend.clear_session()
    gc.collect()
