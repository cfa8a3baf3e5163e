"""csp-tf tune (budgeted search on val) and the ablation studies' arms."""

import pytest

from csp_tf.configs import get_preset
from csp_tf.experiments.ablation import STUDIES
from csp_tf.experiments.methods import method_config
from csp_tf.experiments.tune import PRETRAIN_SPACE, SEARCH_SPACE, sample_trials


def test_trials_start_with_the_base_config_and_are_distinct_and_seeded():
    t = sample_trials(6, seed=3, pretrains=False)
    assert t[0] == {} and len(t) == 6
    assert len({tuple(sorted(x.items())) for x in t}) == 6
    assert t == sample_trials(6, seed=3, pretrains=False)
    assert all(set(x) == set(SEARCH_SPACE) for x in t[1:])


def test_pretraining_methods_also_search_the_temperature():
    t = sample_trials(3, seed=0, pretrains=True)
    assert set(t[1]) == set(SEARCH_SPACE) | set(PRETRAIN_SPACE)


def test_every_trial_is_a_valid_config():
    base = get_preset("places")
    for overrides in sample_trials(10, seed=1, pretrains=True):
        base.override(overrides).validate()


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_ablation_arm_builds_a_valid_config(study):
    base = get_preset("places")
    names = [m.name for m in STUDIES[study]]
    assert len(set(names)) == len(names)
    for m in STUDIES[study]:
        cfg = method_config(base, m, seed=0, ratio=0.05)
        for key, value in m.overrides.items():
            section, *rest = key.split(".")
            node = getattr(cfg, section)
            for part in rest[:-1]:
                node = getattr(node, part)
            assert getattr(node, rest[-1]) == value


def test_the_reference_arm_is_the_reference_recipe():
    ref = method_config(get_preset("places"), STUDIES["finetune"][0], seed=0, ratio=0.1)
    assert (ref.finetune.location_loss, ref.finetune.sampler) == ("presence", "balanced")
