"""Experiment plans: the runs behind a results table, committed as one YAML file.

    csp-tf experiment --plan experiments/places_countries.yaml           # every run, resumable
    csp-tf experiment --plan experiments/places_countries.yaml --list    # the equivalent commands
    csp-tf report --plan experiments/places_countries.yaml --out countries.md
    csp-tf compare --plan experiments/places_countries.yaml --out countries_vs_knn.md

A plan names a data root, an output root, a base config (``preset`` or ``config``) and defaults
for ``methods``, ``ratios``, ``seeds`` and ``set`` (overrides); each entry of ``runs`` is one
``csp-tf experiment`` (its own directory ``OUT/<name>``) and may change any of the defaults. Its
``set`` is applied over the plan's. ``study: finetune|pretrain`` makes a run the arms of a
``csp-tf ablation`` study instead of ``methods``. ``base_model`` (plan or run) makes the pre-training methods
fine-tune from a given pre-trained encoder instead of pre-training. ``baselines: false`` leaves
the scikit-learn baselines out of a run (when another run of the plan has them at the same ratio). Paths are used
as written: relative ones are relative to the working directory, as on the command line.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from csp_tf.configs import ConfigError, ExperimentConfig, get_preset
from csp_tf.experiments.methods import (DEFAULT_RATIOS, DEFAULT_SEEDS, Method, parse_methods,
                                        parse_ratios, parse_seeds, with_baselines)
from csp_tf.experiments.studies import STUDIES

PLAN_KEYS = ("description", "data_root", "out", "preset", "config", "split", "methods", "ratios",
             "seeds", "set", "runs", "base_model")
RUN_KEYS = ("name", "description", "methods", "study", "ratios", "seeds", "set", "baselines",
            "base_model")


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One ``csp-tf experiment`` of a plan: everything a ``Protocol`` needs but the config."""

    name: str
    out_dir: str
    methods: List[Method]
    ratios: List[float]
    seeds: List[int]
    overrides: Dict[str, Any]
    study: Optional[str] = None
    baselines: bool = True
    base_model: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ExperimentPlan:
    path: str
    data_root: str
    out: str
    split: str
    preset: Optional[str]
    config: Optional[str]
    runs: List[PlannedRun]

    def select(self, names: Optional[Sequence[str]]) -> List[PlannedRun]:
        """The runs called ``names`` (all when None), in plan order; ConfigError for unknown ones."""
        if not names:
            return list(self.runs)
        known = [r.name for r in self.runs]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"plan {self.path}: no run named {', '.join(unknown)}; "
                              f"runs: {', '.join(known)}")
        return [r for r in self.runs if r.name in names]

    def base_config(self) -> ExperimentConfig:
        if self.config:
            return ExperimentConfig.load(self.config)
        return get_preset(self.preset or "demo")

    def run_config(self, run: PlannedRun) -> ExperimentConfig:
        cfg = self.base_config()
        return cfg.override(run.overrides) if run.overrides else cfg

    def config_name(self, run: PlannedRun) -> str:
        """How results.md names the run's config, as ``csp-tf experiment`` names its flags."""
        name = f"`{self.config or self.preset or 'demo'}`"
        if run.study:
            name = f"ablation `{run.study}`, " + name
        if run.overrides:
            name += " with " + ", ".join(f"`{k}={_yaml_value(v)}`"
                                         for k, v in run.overrides.items())
        if run.base_model:
            name += f", fine-tuned from `{run.base_model}`"
        return name

    def command(self, run: PlannedRun) -> str:
        """The ``csp-tf experiment`` (or ``ablation``) command line that runs ``run`` alone."""
        base = ["--preset", self.preset] if not self.config else ["--config", self.config]
        if self.preset is None and self.config is None:
            base = []
        if run.study:
            words = ["csp-tf", "ablation", "--study", run.study]
        else:
            words = ["csp-tf", "experiment", "--methods",
                     ",".join(m.name for m in run.methods if not m.baseline)]
            if not run.baselines:
                words.append("--no-baselines")
            if run.base_model:
                words += ["--base-model", run.base_model]
        words += ["--data-root", self.data_root, *base,
                  "--ratios", ",".join(f"{r:g}" for r in run.ratios),
                  "--seeds", ",".join(map(str, run.seeds)), "--split", self.split,
                  "--out", run.out_dir]
        for key, value in run.overrides.items():
            words += ["--set", f"{key}={_yaml_value(value)}"]
        return " ".join(shlex.quote(w) for w in words)


def _yaml_value(value: Any) -> str:
    """A value as ``--set`` would read it back (YAML), e.g. 2.0 -> '2.0', 'on' -> 'on'."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def _csv(value: Any, where: str, key: str) -> Optional[str]:
    """A YAML list (or a comma-separated string) as the comma-separated text the flags take."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"{where}: {key} must be a list, not {type(value).__name__}")


def _overrides(value: Any, where: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: set must map config keys to values, e.g. "
                          "{finetune.min_steps: 750}")
    return {str(k): v for k, v in value.items()}


def _check_keys(d: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(allowed)}")


def load_plan(path: str) -> ExperimentPlan:
    """Reads and checks a plan file: every run's methods, ratios, seeds and overrides are
    validated (the overrides against the base config) before anything trains."""
    if not os.path.exists(path):
        raise ConfigError(f"plan file {path!r} does not exist")
    with open(path) as f:
        d = yaml.safe_load(f)
    if not isinstance(d, Mapping):
        raise ConfigError(f"plan file {path!r} does not hold a mapping")
    _check_keys(d, PLAN_KEYS, f"plan {path}")
    for key in ("data_root", "out"):
        if not d.get(key):
            raise ConfigError(f"plan {path}: {key} is required")
    if d.get("preset") and d.get("config"):
        raise ConfigError(f"plan {path}: give preset or config, not both")
    split = d.get("split", "test")
    if split not in ("val", "test"):
        raise ConfigError(f"plan {path}: split must be val or test, not {split!r}")
    entries = d.get("runs") or [{"name": "main"}]
    if not isinstance(entries, list):
        raise ConfigError(f"plan {path}: runs must be a list of mappings")
    plan_set = _overrides(d.get("set"), f"plan {path}")
    runs: List[PlannedRun] = []
    for i, entry in enumerate(entries):
        where = f"plan {path}, runs[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise ConfigError(f"{where}: each run is a mapping with a name")
        _check_keys(entry, RUN_KEYS, where)
        name = str(entry["name"])
        if name in [r.name for r in runs] or os.sep in name or name.startswith("."):
            raise ConfigError(f"{where}: run name {name!r} must be unique and a plain "
                              "directory name")
        study = entry.get("study")
        if study is not None and study not in STUDIES:
            raise ConfigError(f"{where}: study {study!r} unknown; "
                              f"known: {', '.join(sorted(STUDIES))}")
        base_model = entry.get("base_model", d.get("base_model"))
        if base_model is not None and study is not None:
            raise ConfigError(f"{where}: base_model goes with methods, not a study")
        if study is not None and "methods" in entry:
            raise ConfigError(f"{where}: a study run takes its methods from the study")
        try:
            if study:
                methods = list(STUDIES[study])
            else:
                methods = parse_methods(_csv(entry.get("methods", d.get("methods")), where,
                                             "methods"))
                if entry.get("baselines", True):
                    methods = with_baselines(methods)
            ratios = parse_ratios(_csv(entry.get("ratios", d.get("ratios")), where, "ratios")
                                  or ",".join(map(str, DEFAULT_RATIOS)))
            seeds = parse_seeds(_csv(entry.get("seeds", d.get("seeds")), where, "seeds")
                                or ",".join(map(str, DEFAULT_SEEDS)))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        runs.append(PlannedRun(name=name, out_dir=os.path.join(str(d["out"]), name),
                               methods=methods, ratios=ratios, seeds=seeds,
                               overrides={**plan_set, **_overrides(entry.get("set"), where)},
                               study=study, baselines=bool(entry.get("baselines", True))
                               and study is None,
                               base_model=str(base_model) if base_model is not None else None))
    plan = ExperimentPlan(path=path, data_root=str(d["data_root"]), out=str(d["out"]),
                          split=split, preset=d.get("preset"), config=d.get("config"), runs=runs)
    for run in runs:  # a typo in a key fails now, not after hours of the runs before it
        try:
            plan.run_config(run).validate()
        except ConfigError as exc:
            raise ConfigError(f"plan {path}, run {run.name}: {exc}") from None
    return plan
