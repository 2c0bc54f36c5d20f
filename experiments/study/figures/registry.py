"""The figure registry: which figures a results directory supports, and how each is drawn.

Each figure of docs/FIGURES.md is registered beside its drawing code with
:func:`register`, which states the data it needs:

- ``scope=EXPERIMENT``: one figure per experiment of the listed ``kinds``,
  file ``<stem>_<experiment>``, drawn as ``draw(study, experiment)``;
- ``scope=GROUP``: one figure over every experiment of the listed ``kinds``,
  file ``<stem>``, drawn as ``draw(study, {name: experiment})``;
- ``scope=PRESET``: one figure of the preset alone (no runs), ``draw(study)``;

and ``when`` (optional) a further condition on the same arguments. An
experiment's *kind* (:func:`experiment_kind`) is read from its family and
dataset. :func:`figure_specs` lists every registered figure the rows support.
"""

import functools
import pathlib
from collections.abc import Callable
from typing import NamedTuple

from experiments.study import cells
from regan_jax import data, families

EXPERIMENT, GROUP, PRESET = "experiment", "group", "preset"
KINDS = ("image_gan", "mixture", "stacked", "vae", "cgan", "translation", "other")


class Experiment(NamedTuple):
    """One experiment of a results directory: its rows of ``results.csv`` and ``nulls.json``."""

    name: str
    kind: str
    rows: list
    nulls: dict | None


class Study(NamedTuple):
    """What every figure may read: the results directory, the preset, its experiments."""

    root: pathlib.Path
    preset: str
    experiments: dict  # {name: Experiment}, in first-seen order


class Entry(NamedTuple):
    """A registered figure (module docstring)."""

    stem: str
    scope: str
    kinds: tuple
    draw: Callable
    when: Callable | None


REGISTRY: dict[str, Entry] = {}


def register(stem: str, *, scope: str, kinds: tuple = KINDS, when: Callable | None = None):
    """A decorator that registers ``draw`` as the figure ``stem`` (module docstring).

    Raises:
      ValueError: a stem registered twice, an unknown scope or kind.
    """
    if scope not in (EXPERIMENT, GROUP, PRESET):
        raise ValueError(f"unknown scope {scope!r}; valid: {EXPERIMENT}, {GROUP}, {PRESET}")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown experiment kinds {sorted(unknown)}; valid: {', '.join(KINDS)}")

    def wrap(draw: Callable) -> Callable:
        if stem in REGISTRY:
            raise ValueError(f"figure {stem!r} registered twice")
        REGISTRY[stem] = Entry(stem, scope, tuple(kinds), draw, when)
        return draw

    return wrap


def experiment_kind(rows) -> str:
    """``'image_gan'``, ``'mixture'``, ``'stacked'``, ``'vae'``, ``'cgan'``, ``'translation'``
    or ``'other'``."""
    family = families.get(rows[0]["config.model_type"])
    dataset = rows[0]["config.data.name"]
    if dataset in data.MIXTURES:
        return "mixture"
    if family.make_evaluator is not None:  # scored by its own evaluation: translation
        return "translation"
    if family.score_fn is not None:  # a held-out ELBO: the VAE
        return "vae"
    if family.conditional:
        return "cgan"
    if dataset == "stacked_digits":
        return "stacked"
    return "image_gan" if family.adversarial else "other"


def load_study(rows, root, preset: str) -> Study:
    """The :class:`Study` of ``rows`` (``results.csv``) under ``root``."""
    experiments = {}
    for name in cells.experiments_present(rows):
        mine = cells.experiment_rows(rows, name)
        experiments[name] = Experiment(
            name, experiment_kind(mine), mine, cells.read_nulls(root, mine)
        )
    return Study(pathlib.Path(root), preset, experiments)


def figure_specs(rows, root, preset: str) -> dict:
    """``{file stem: () -> Figure}``: every registered figure that ``rows`` can support, by stem."""
    study = load_study(rows, root, preset)
    specs = {}
    for entry in REGISTRY.values():
        if entry.scope == PRESET:
            args = [(entry.stem, (study,))]
        elif entry.scope == GROUP:
            group = {n: e for n, e in study.experiments.items() if e.kind in entry.kinds}
            args = [(entry.stem, (study, group))] if group else []
        else:
            args = [
                (f"{entry.stem}_{n}", (study, e))
                for n, e in study.experiments.items()
                if e.kind in entry.kinds
            ]
        for stem, arguments in args:
            if entry.when is None or entry.when(*arguments):
                specs[stem] = functools.partial(entry.draw, *arguments)
    return dict(sorted(specs.items()))
