"""The study's vocabulary: every penalty, target and metric declared once and complete."""

import math
import pathlib

import pytest

from experiments.study import claims, dirac, vocabulary
from experiments.study.figures import registry
from regan_jax import families, penalties

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(vocabulary.METRICS))
def test_every_metric_declares_a_direction_and_a_worst_value(name):
    spec = vocabulary.METRICS[name]
    assert spec.label and spec.short
    assert spec.lower in (True, False, None), f"{name}: direction must be True, False or None"
    if spec.lower is None:  # descriptive: a diverged run is dropped, not ranked
        assert spec.worst is None
    elif spec.lower:
        assert spec.worst == math.inf
    else:  # the least a higher-is-better score can be
        assert spec.worst is not None and spec.worst <= 0.0


@pytest.mark.parametrize("name", list(vocabulary.METRICS))
def test_every_metric_declares_a_positive_smallest_effect_of_interest(name):
    sesoi = vocabulary.METRICS[name].sesoi
    assert sesoi.scale in ("units", "d_z") and math.isfinite(sesoi.value) and sesoi.value > 0


def test_an_undeclared_metric_is_refused():
    with pytest.raises(ValueError, match="undeclared metric 'sharpness'; declared: fd, kid"):
        vocabulary.metric("sharpness")


def test_every_metric_a_claim_reads_is_declared():
    for claim in claims.CLAIMS:
        for part in claim.parts:
            assert set(part.metrics.values()) <= set(vocabulary.METRICS), part.name


@pytest.mark.parametrize("name", vocabulary.WEIGHT_PENALTIES)
def test_every_weight_penalty_resolves_to_a_builder_kind(name):
    spec = vocabulary.PENALTIES[name]
    assert spec.kind in penalties.PENALTY_KINDS, f"{name}: kind {spec.kind!r} is not a builder kind"
    assert spec.coupling in penalties.COUPLINGS
    # The swept and tied fields are hyperparameters of that kind.
    assert {spec.swept, *spec.tied} <= set(penalties.PENALTY_KINDS[spec.kind].names)


def test_baselines_set_no_weight_penalty_and_every_penalty_has_its_own_look():
    for name in vocabulary.BASELINES:
        assert vocabulary.PENALTIES[name].kind == "none"
        assert vocabulary.PENALTIES[name].swept in (None, "learning_rate")
    specs = list(vocabulary.PENALTIES.values()) + [vocabulary.CUSTOM]
    for field in ("label", "short", "colour"):
        values = [getattr(s, field) for s in specs]
        assert len(set(values)) == len(values), f"two penalties share a {field}"


def test_every_family_network_and_group_is_a_declared_target():
    for model_type in families.FAMILIES:
        assert set(vocabulary.targets(model_type)) <= set(vocabulary.TARGETS), model_type


def test_the_dirac_gan_reads_its_penalties_from_the_vocabulary():
    for name, spec in dirac.PENALTIES.items():
        study = vocabulary.PENALTIES[name]
        assert spec.label == study.label
        assert spec.parameter == ("gamma" if spec.loss_term else study.swept)


def test_every_registered_figure_is_in_the_figure_list():
    listed = (ROOT / "docs" / "FIGURES.md").read_text()
    for stem, entry in registry.REGISTRY.items():
        assert f"`{stem}`" in listed, f"{stem} is not in docs/FIGURES.md"
        assert set(entry.kinds) <= set(registry.KINDS)
