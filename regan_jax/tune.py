"""Population-based strength search during training: the driver of :mod:`regan_jax.pbt`.

:func:`search` trains K member runs as one vmapped program
(:func:`regan_jax.train.train_members`, so every member keeps the full
run-directory contract: lock, validation before writing, checkpoints,
resume, signals) with :func:`interval_hook` as its ``on_scores`` callback.
At every in-training evaluation (``config.eval.fd_every``, which the search
sets to ``tune.interval``) the callback reads each member's score
(``tune.metric`` of the loop's cheap scores, or the family's held-out ``elbo``
on ``eval.fd_samples`` test images), runs :func:`regan_jax.pbt.exploit_and_explore`
with the key ``fold_in(key(tune.seed), step)`` and

- adds to each member's metrics row (hence metrics.jsonl and TensorBoard)
  ``pbt_parent`` (the member whose state it copied; itself if none),
  ``pbt_score`` and the searched values (``strength_<net>``...): the
  member's lineage and strength trajectory;
- rewrites the search's history, ``<search dir>/search.json``: the tune
  config, the member directories, the initial values and per evaluation the
  step, scores, parents and values.

The members are checkpointed at every exploit step (``log.checkpoint_every``
= ``tune.interval``), after it. A resumed search restores the post-exploit
states, and any later evaluation it redoes is the same computation on the
same state with the same key, so the history entries it replaces (those at
or after the step being redone) come back identical and the search resumes
bitwise. At the last step the scores are recorded but nobody is copied.
"""

import json
import math
import pathlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from regan_jax import config as config_lib
from regan_jax import data, families, pbt, program, train
from regan_jax import workdir as workdir_lib
from regan_jax.evaluation import evaluator

SEARCH_FILE = "search.json"
ELBO = "elbo"  # the family's held-out score (score_fn), not one of the cheap scores


def cheap_metrics(config) -> tuple[str, ...]:
    """The scores the search can rank ``config``'s members by, before any data are loaded:
    the loop's cheap scores (:func:`regan_jax.evaluation.run_hooks`) and the family's
    held-out ``elbo``."""
    family = families.get(config.model_type)
    names = ()
    if config.data.name in data.MIXTURES:
        names = evaluator.MIXTURE_METRICS
    elif family.make_evaluator is not None or (
        config.eval.inception_weights or evaluator.default_classifier(config.data.name)
    ):
        names = ("fd",)
        if config.eval.protocol_v2 and family.make_evaluator is None and family.adversarial:
            names += ("r_t", "r_v")
    if family.score_fn is not None:
        names += (ELBO,)
    return names


def prepare_configs(configs: Sequence, tune_config) -> list:
    """Copies of the member configs whose in-training evaluation and checkpoints fall on
    every ``tune.interval`` step.

    Raises:
      ValueError: a bad ``tune`` field, fewer than two members, an interval
        not below the steps, or a metric the members' evaluation does not give.
    """
    pbt.validate(tune_config)
    if len(configs) < 2:
        raise ValueError(f"a search needs a population of 2 or more, got {len(configs)}")
    out = []
    for c in configs:
        c = config_lib.copy_config(c)
        c.eval.fd_every = tune_config.interval
        c.log.checkpoint_every = tune_config.interval
        config_lib.validate(c)
        out.append(c)
    if tune_config.interval >= out[0].steps:
        raise ValueError(
            f"tune.interval {tune_config.interval} must be below the steps ({out[0].steps})"
        )
    available = cheap_metrics(out[0])
    if tune_config.metric not in available:
        raise ValueError(
            f"tune.metric {tune_config.metric!r} is not scored during training of "
            f"{out[0].name}; available: {', '.join(available) or 'none'}"
        )
    return out


def header(tune_config, workdirs, configs) -> dict:
    """What identifies a search: its tune config, member directories and initial values."""
    described = {
        "tune": config_lib.to_json_dict(tune_config),
        "members": [pathlib.Path(w).name for w in workdirs],
        "initial": {
            # As the optimizer state holds them (float32), like the history's values.
            pbt.value_key(name, net): [float(np.float32(c.penalty[net][name])) for c in configs]
            for net in tune_config.networks
            for name in tune_config.hyperparams
        },
    }
    return json.loads(json.dumps(described))  # as search.json gives it back (lists, not tuples)


def check_search_dir(search_dir, expected: dict) -> None:
    """Refuses a search directory whose ``search.json`` is of another search.

    Raises:
      WorkdirError: naming the first differing field.
    """
    path = pathlib.Path(search_dir) / SEARCH_FILE
    if not path.is_file():
        return
    saved = workdir_lib.read_json(path)
    for key, value in expected.items():
        if saved.get(key) != value:
            raise workdir_lib.WorkdirError(
                f"{str(path)!r} is of another search ({key} differs: saved {saved.get(key)!r}, "
                f"now {value!r}); use another --workdir"
            )


def interval_hook(tune_config, configs, search_dir, expected: dict) -> Callable:
    """The ``on_scores`` callback of :func:`regan_jax.train.train_members` (module docstring)."""
    path = pathlib.Path(search_dir) / SEARCH_FILE
    base_key = jax.random.key(tune_config.seed)
    held_out = {}

    def score(prog, step, state, rows) -> np.ndarray:
        if tune_config.metric != ELBO:
            return np.array(
                [np.nan if r is None else r.get(tune_config.metric, np.nan) for r in rows],
                np.float64,
            )
        if not held_out:  # once: the test images and one compiled program for every member
            held_out["images"] = data.from_config(prog.config.data, "test").images[
                : prog.config.eval.fd_samples
            ]
            held_out["elbo"] = member_elbos(prog)
        keys = jnp.stack([jax.random.fold_in(program.sample_key(c), step) for c in configs])
        elbo = np.asarray(held_out["elbo"](state.params, keys, held_out["images"]), np.float64)
        means = elbo.mean(axis=1)  # over the images, in float64 on the host
        # A member diverged (now or before) is the worst, whatever its frozen state scores.
        return np.array(
            [np.nan if r is None or r.get("frozen") else m for r, m in zip(rows, means)]
        )

    def hook(prog, step, state, rows):
        scores = score(prog, step, state, rows)
        if step < prog.config.steps:
            result = pbt.exploit_and_explore(
                state,
                jnp.asarray(scores, jnp.float32),
                jax.random.fold_in(base_key, step),
                tune_config,
            )
            # Back where the step expects the members (a mesh's sharding, if any).
            state = jax.tree.map(
                lambda new, old: jax.device_put(new, old.sharding), result.state, state
            )
            parents = np.asarray(result.parents)
            values = {k: np.asarray(v) for k, v in result.values.items()}
        else:  # The last step: nothing trains after it, nobody is copied.
            parents = np.arange(len(rows))
            values = {k: np.asarray(v) for k, v in pbt.get_values(state, tune_config).items()}
        entry = {
            "step": step,
            "exploit": step < prog.config.steps,
            "scores": [float(s) if math.isfinite(s) else None for s in scores],
            "parents": [int(p) for p in parents],
            "values": {k: [float(x) for x in v] for k, v in values.items()},
        }
        previous = workdir_lib.read_json(path).get("history", []) if path.is_file() else []
        history = [h for h in previous if h["step"] < step] + [entry]
        workdir_lib.write_json(path, {**expected, "history": history})
        extras = [
            {}
            if rows[i] is None and parents[i] == i
            else {
                "pbt_parent": int(parents[i]),
                "pbt_score": float(scores[i]),
                **{k: float(v[i]) for k, v in values.items()},
            }
            for i in range(len(rows))
        ]
        return state, extras

    return hook


def member_elbos(prog) -> Callable:
    """Jitted ``(stacked params, [K] keys, images [N, ...]) -> [K, N]`` per-example held-out
    ELBOs of every member: the family's ``score_fn`` vmapped over the member axis (one compile
    for the whole search, where ``score_fn`` alone compiles per call)."""

    def member(params, key, images):
        return prog.family.score_fn(prog.config, prog.models, params, key)(images)[ELBO]

    return jax.jit(jax.vmap(member, in_axes=(0, 0, None)))


def search(
    configs: Sequence,
    workdirs: Sequence,
    tune_config,
    search_dir,
    **train_kwargs,
) -> list:
    """Trains the members with the population-based search (module docstring).

    Args:
      configs: the K member configs (one program: they differ only in seed and
        injected hyperparameters; the searched values start at theirs).
      workdirs: the K member run directories.
      tune_config: :func:`regan_jax.pbt.default_config` 's fields.
      search_dir: where ``search.json`` goes.
      train_kwargs: passed to :func:`regan_jax.train.train_members`.

    Returns:
      The K final train states.

    Raises:
      ValueError: see :func:`prepare_configs`, :func:`check_search_dir` and
        :func:`regan_jax.train.train_members`; all before anything is written.
    """
    configs = prepare_configs(configs, tune_config)
    expected = header(tune_config, workdirs, configs)
    check_search_dir(search_dir, expected)
    return train.train_members(
        configs,
        workdirs,
        on_scores=interval_hook(tune_config, configs, search_dir, expected),
        **train_kwargs,
    )


def read_search(search_dir) -> dict:
    """``search.json`` of a search directory."""
    return workdir_lib.read_json(pathlib.Path(search_dir) / SEARCH_FILE)
