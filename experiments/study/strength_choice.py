"""Is strength search worth it? Four ways to set weight decay's strength, on the same test seeds.

    python -m experiments.study.strength_choice --workdir runs/strength_choice [--jobs 2]

Issue #23 item 3. For each setting of :data:`SETTINGS` (the digits GAN,
stable and unstable, and the digits VAE), one penalty (:data:`PENALTY`,
decoupled weight decay on :data:`TARGET`) and the four arms of :data:`ARMS`,
each scored on the same test seeds (:attr:`Plan.test_seeds`) by the final
held-out score of :func:`final_metric` (GAN: ``fd_inf`` with protocol v2, else
``fd``; VAE: ``elbo``):

- **none**: no penalty;
- **grid**: the effective strength of :data:`GRID` with the best median score
  over the *selection* seeds (:attr:`Plan.selection_seeds`, never the test
  seeds), then trained on the test seeds;
- **adaptive**: a constant effective strength :data:`ADAPTIVE_E`
  (``penalty.<net>.adaptive``, :mod:`regan_jax.penalties.adaptive`);
- **pbt**: one population-based search per test seed (what
  ``python -m experiments.tune`` builds, :mod:`experiments.study.population`:
  ``population`` members,
  ``steps // exploits`` steps between exploit steps, ranked by the in-training
  ``fd`` / the VAE's held-out ``elbo``, range :data:`PBT_RANGE` in effective
  units through ``--calibration``); member 0 trains on the test seed, member
  k on ``seed + 1000 k``. The reported member is the one the search ranks best
  at its last exploit step (by its own in-training score, not by the test
  score); its final score is the arm's.

The grid and the pbt arms need a calibration record per setting
(``DIR/<setting>/calibration.json``, :func:`regan_jax.calibration.measure`,
as ``python -m experiments.calibrate`` makes it). Everything is resumable:
finished runs, searches and records in DIR are reused. Per setting the arms
are compared paired by test seed (each arm vs none, pbt vs grid, pbt vs
adaptive: median Δ [95 % bootstrap CI], d_z, one-sided paired t-tests both
ways, the study's Holm families and verdict words, :func:`comparisons`).
Written: ``DIR/strength_choice.md``, ``DIR/strength_choice.csv`` and
``DIR/fig16_strength_choice.png``. ``--smoke`` runs the same pipeline on the
smoke configs (12 steps, 2 test seeds, 1 selection seed, population 2);
``--settings`` picks some settings; ``--jobs N`` trains the settings in N
worker processes (round robin), then writes the report.

Compute: the two searches are matched. Per setting of T steps the arms cost
(member-steps) grid 20 T (15 T of selection runs, shared by the 5 test seeds,
+ 5 T) and pbt 20 T (5 searches of 4); none and adaptive cost 5 T each (one
run per seed: what the penalty costs without any search); the calibration
adds 400 unregularised steps for grid and pbt.

Cost of the real run: 50 T per setting, 50 x 5,000 x 2 + 50 x 4,000 = 700,000
member-steps (+ 1,200 calibration steps) in 3 x 10 = 30 compiled programs,
every group vmapped (5-15 members).
"""

import argparse
import csv
import math
import os
import pathlib
import subprocess
import sys
from typing import NamedTuple

import numpy as np
import tqdm
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import experiments
from experiments.study import cells, claims, population, sweeps, vocabulary
from experiments.study import members as members_lib
from regan_jax import calibration, stats, tune
from regan_jax import config as config_lib
from regan_jax import effective_strength as calibration_lib
from regan_jax import workdir as workdir_lib

PENALTY = "weight_decay"
TARGET = "both"
GRID = (0.1, 0.3, 1.0, 3.0, 10.0)  # effective strengths of the grid arm
ADAPTIVE_E = 1.0
PBT_RANGE = (0.03, 30.0)  # effective
ARMS = ("none", "grid", "adaptive", "pbt")
# (arm, reference): each arm against none, the search against the other two choices.
COMPARISONS = (
    ("grid", "none"),
    ("adaptive", "none"),
    ("pbt", "none"),
    ("pbt", "grid"),
    ("pbt", "adaptive"),
)
SEED_STRIDE = 1000  # member k of the search of test seed s trains on seed s + 1000 k
STEM = "fig16_strength_choice"


class Setting(NamedTuple):
    """One experiment of the comparison: its config name and in-training search metric."""

    name: str
    search_metric: str


SETTINGS = (
    Setting("digits_gan", "fd"),
    Setting("digits_gan_unstable", "fd"),
    Setting("digits_vae", tune.ELBO),
)


class Plan(NamedTuple):
    """The sizes of a run: the real one or the smoke one (:data:`PLANS`)."""

    config_suffix: str
    test_seeds: tuple
    selection_seeds: tuple
    population: int
    exploits: int  # the search's interval is steps // exploits
    calibration_steps: int
    calibration_seeds: tuple


PLANS = {
    # Population 4: a search per test seed costs 4 T, the grid's share 3 T + T (module doc).
    "full": Plan("", (0, 1, 2, 3, 4), (100, 101, 102), 4, 10, 200, (0, 1)),
    "smoke": Plan(":smoke", (0, 1), (100,), 2, 3, 4, (0,)),
}


def final_metric(config) -> str:
    """The final held-out score every arm of ``config``'s setting is read by."""
    if config.model_type == "vae":
        return "elbo"
    return "fd_inf" if config.eval.protocol_v2 else "fd"


def base_config(setting: Setting, plan: Plan):
    return experiments.load_config(setting.name + plan.config_suffix)


def setting_dir(workdir, setting: Setting) -> pathlib.Path:
    return pathlib.Path(workdir) / setting.name


def calibration_path(workdir, setting: Setting) -> pathlib.Path:
    return setting_dir(workdir, setting) / "calibration.json"


def member_steps(plan: Plan, steps: int) -> dict:
    """Member-steps per arm (training runs only; the calibration is :func:`calibration_steps`)."""
    tests = len(plan.test_seeds)
    return {
        "none": tests * steps,
        "grid": (len(GRID) * len(plan.selection_seeds) + tests) * steps,
        "adaptive": tests * steps,
        "pbt": tests * plan.population * steps,
    }


def calibration_steps(plan: Plan) -> int:
    return plan.calibration_steps * len(plan.calibration_seeds)


# ----------------------------------------------------------------------------
# The arms' runs
# ----------------------------------------------------------------------------


def ensure_calibration(base, plan: Plan, path: pathlib.Path) -> str:
    """The calibration record of ``base`` at ``path``, measured unless one is there.

    Raises:
      ValueError: a record there of another experiment or of other steps.
    """
    if path.is_file():
        record = population.load_record(path, base)
        if record.get("steps") != plan.calibration_steps:
            raise ValueError(
                f"{str(path)!r} calibrates {record.get('steps')} steps, not "
                f"{plan.calibration_steps}: a directory of another plan (--smoke?)"
            )
        return str(path)
    record = calibration.measure(
        base, steps=plan.calibration_steps, seeds=list(plan.calibration_seeds), progress=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    calibration.save(path, record)
    return str(path)


def score_of(run_dir, metric: str) -> float:
    """A finished run's final ``metric`` (a diverged or unscored run: the metric's worst)."""
    summary = workdir_lib.read_json(pathlib.Path(run_dir) / "summary.json")
    return float(cells.metric_value(summary, metric))


def choose(scores: dict, metric: str) -> float:
    """The grid's choice: the strength whose median score (``{e: [scores]}``) is best
    (ties: the smaller strength)."""
    lower = vocabulary.metric(metric).lower
    medians = {e: float(np.median(v)) for e, v in sorted(scores.items())}
    return min(medians, key=lambda e: medians[e] if lower else -medians[e])


def selection_members(base, plan: Plan, record: str) -> list:
    return members_lib.grid(
        base, [PENALTY], [TARGET], {"strength": list(GRID)}, list(plan.selection_seeds), record
    )


def run_selection(base, plan: Plan, record: str, root: pathlib.Path, log) -> tuple:
    """Trains the grid on the selection seeds; ``(chosen e, {e: [scores]})``."""
    members = selection_members(base, plan, record)
    sweeps.run_members(members, root / "selection", progress=False, log=log)
    metric = final_metric(base)
    scores = {}
    for m in members:
        scores.setdefault(m.value, []).append(score_of(root / "selection" / m.name, metric))
    return choose(scores, metric), scores


def test_members(base, plan: Plan, arm: str, record: str | None, strength=None) -> list:
    """The runs of ``arm`` (none, grid at ``strength``, adaptive) on the test seeds."""
    seeds = list(plan.test_seeds)
    if arm == "none":
        return members_lib.grid(base, ["none"], [], {}, seeds)
    if arm == "grid":
        return members_lib.grid(base, [PENALTY], [TARGET], {"strength": [strength]}, seeds, record)
    members = members_lib.grid(base, [PENALTY], [TARGET], {"strength": [ADAPTIVE_E]}, seeds)
    out = []
    for m in members:
        config = config_lib.copy_config(m.config)
        for net in vocabulary.target_networks(config.model_type, TARGET):
            config.penalty[net].adaptive = True  # strength read as e
        config_lib.validate(config)
        out.append(m._replace(config=config))
    return out


def run_arm(base, plan: Plan, arm: str, root: pathlib.Path, log, record=None, strength=None):
    """Trains ``arm`` on the test seeds; ``{seed: score}``."""
    members = test_members(base, plan, arm, record, strength)
    sweeps.run_members(members, root / arm, progress=False, log=log)
    metric = final_metric(base)
    return {m.seed: score_of(root / arm / m.name, metric) for m in members}


def search_setup(setting: Setting, plan: Plan, seed: int, record: str, search_dir):
    """``(member configs, member workdirs, tune config)`` of the search of test seed ``seed``:
    ``experiments.tune --penalty weight_decay --target both --range 0.03,30 --calibration
    RECORD --search-seed SEED`` (:mod:`experiments.study.population`), member k on seed
    ``seed + 1000 k``."""
    base = base_config(setting, plan)
    raw = population.raw_bounds(
        base, PENALTY, TARGET, PBT_RANGE, population.load_record(record, base)
    )
    tune_config = population.tune_config(
        base,
        PENALTY,
        TARGET,
        raw,
        metric=setting.search_metric,
        lower_is_better=bool(vocabulary.metric(setting.search_metric).lower),
        interval=max(1, base.steps // plan.exploits),
        seed=seed,
    )
    seeds = [seed + SEED_STRIDE * k for k in range(plan.population)]
    configs = population.member_configs(
        base, PENALTY, TARGET, PBT_RANGE, plan.population, record, seeds
    )
    workdirs = [pathlib.Path(search_dir) / f"m{k:02d}" for k in range(plan.population)]
    return configs, workdirs, tune_config


def reported_member(search: dict) -> int:
    """The member the search ranks best at its last exploit step (NaN: worst; ties: first)."""
    last = [h for h in search["history"] if h["exploit"]][-1]
    lower = search["tune"]["lower_is_better"]
    badness = [
        math.inf if s is None or not math.isfinite(s) else (s if lower else -s)
        for s in last["scores"]
    ]
    return int(np.argmin(badness))


def run_pbt(setting: Setting, plan: Plan, root: pathlib.Path, record: str, metric: str):
    """Runs every test seed's search; ``({seed: score}, {seed: final effective strength})``."""
    scores, strengths = {}, {}
    for seed in plan.test_seeds:
        search_dir = root / "pbt" / f"seed{seed}"
        configs, workdirs, tune_config = search_setup(setting, plan, seed, record, search_dir)
        if not all(workdir_lib.is_finished(w) for w in workdirs):
            tune.search(configs, workdirs, tune_config, search_dir, progress=False)
        search = tune.read_search(search_dir)
        k = reported_member(search)
        scores[seed] = score_of(workdirs[k], metric)
        strengths[seed] = effective_of(configs[k], search["history"][-1]["values"], k, record)
    return scores, strengths


def effective_of(config, values: dict, k: int, record: str) -> float:
    """Member ``k``'s final searched strength in effective units (e is linear in λ)."""
    net = vocabulary.target_networks(config.model_type, TARGET)[0]
    raw = values[f"strength_{net}"][k]
    unit = members_lib.raw_value(config, PENALTY, net, 1.0, calibration_lib.load(record))
    return raw / unit


# ----------------------------------------------------------------------------
# One setting
# ----------------------------------------------------------------------------


class Result(NamedTuple):
    """One setting's arms: ``scores[arm] = {seed: score}``, ``strengths[arm]`` (a text)."""

    setting: str
    metric: str
    scores: dict
    strengths: dict
    member_steps: dict
    calibration_steps: int
    selection: dict  # {e: [selection-seed scores]}


def run_setting(setting: Setting, plan: Plan, workdir, log=print, bar=None) -> Result:
    """Trains (or reuses) every arm of ``setting``; the scores and choices."""
    base = base_config(setting, plan)
    root = setting_dir(workdir, setting)
    metric = final_metric(base)
    scores, strengths = {}, {}

    def done(arm, text):
        strengths[arm] = text
        values = list(scores[arm].values())
        log(
            f"{setting.name} {arm}: {text}; median {metric} {np.median(values):.4g} ({len(values)} seeds)"
        )
        if bar is not None:
            bar.update(1)

    record = ensure_calibration(base, plan, calibration_path(workdir, setting))
    scores["none"] = run_arm(base, plan, "none", root, log)
    done("none", "-")
    chosen, selection = run_selection(base, plan, record, root, log)
    scores["grid"] = run_arm(base, plan, "grid", root, log, record, chosen)
    done("grid", f"e = {chosen:g} (selection seeds {', '.join(map(str, plan.selection_seeds))})")
    scores["adaptive"] = run_arm(base, plan, "adaptive", root, log)
    done("adaptive", f"e = {ADAPTIVE_E:g} (adaptive)")
    scores["pbt"], final = run_pbt(setting, plan, root, record, metric)
    done("pbt", "final e " + ", ".join(f"{final[s]:.3g}" for s in plan.test_seeds))
    return Result(
        setting.name,
        metric,
        scores,
        strengths,
        member_steps(plan, base.steps),
        calibration_steps(plan),
        selection,
    )


# ----------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------


def comparisons(scores: dict, metric: str, pairs=COMPARISONS) -> list:
    """The setting's paired comparisons, read with the study's rules.

    Each pair ``(arm, reference)`` is a :class:`experiments.study.claims.Test`
    whose *claimed way* is "``arm`` better than ``reference``" by ``metric``:
    its one-sided paired tests both ways (:func:`claims.directional_pvalues`),
    TOST within the metric's SESOI (:func:`claims.equivalence`), Holm over the
    setting's directional tests as one family and its TOSTs as another
    (:func:`claims.adjust`), and :func:`claims.reading` ('claimed way' is
    reported as ``better``, 'against' as ``worse``).
    """
    lower = vocabulary.metric(metric).lower
    sesoi = vocabulary.metric(metric).sesoi
    tests = []
    for arm, ref in pairs:
        comparison = cells.compare(arm, ref, scores)
        d = cells.paired(scores[arm], scores[ref])
        p_lower, p_higher = claims.directional_pvalues(comparison, d)
        sign = cells.judged_sign(comparison, d)
        p_equivalent, margin = claims.equivalence(d, sesoi)
        tests.append(
            claims.Test(
                experiment=f"{arm} vs {ref}",
                metric=metric,
                comparison=comparison,
                cell=None,
                reference=None,
                favours=(sign < 0) if lower else (sign > 0),
                unstable=None,
                p_claimed=p_lower if lower else p_higher,
                p_against=p_higher if lower else p_lower,
                p_equivalent=p_equivalent,
                margin=margin,
            )
        )
    return claims.adjust(tests)


WORDS = {"claimed way": "better", "against": "worse"}


def verdict(test) -> str:
    """:func:`claims.reading` in this comparison's words."""
    word = claims.reading(test)
    return WORDS.get(word, word)


# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------


def _fmt_p(p) -> str:
    return "—" if p is None else f"{p:.3g}"


def setting_markdown(result: Result) -> str:
    spec = vocabulary.metric(result.metric)
    lines = [
        f"## {result.setting}",
        "",
        f"Score: {spec.label}, final, on test seeds "
        f"{', '.join(map(str, sorted(result.scores['none'])))}. Calibration: "
        f"{result.calibration_steps} unregularised steps (grid and pbt).",
        "",
        "| arm | strength | median [95 % CI] | member-steps |",
        "|---|---|---|---|",
    ]
    for arm in ARMS:
        cell = stats.cell(list(result.scores[arm].values()))
        lines.append(
            f"| {arm} | {result.strengths[arm]} | {cells.fmt(cell['median'])} "
            f"[{cells.fmt(cell['low'])}, {cells.fmt(cell['high'])}] | "
            f"{result.member_steps[arm]:,} |"
        )
    lines += [
        "",
        "Grid selection (median over the selection seeds): "
        + ", ".join(
            f"e = {e:g}: {cells.fmt(float(np.median(v)))}" for e, v in result.selection.items()
        ),
        "",
        "| comparison | median Δ [95 % CI] | d_z | p (better) | p (worse) | Holm better / worse "
        "| TOST Holm | reading |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in comparisons(result.scores, result.metric):
        diff = t.comparison.difference
        lines.append(
            f"| {t.experiment} | {cells.fmt(diff['median'])} [{cells.fmt(diff['low'])}, "
            f"{cells.fmt(diff['high'])}] | {cells.fmt(t.comparison.d_z)} | {_fmt_p(t.p_claimed)} "
            f"| {_fmt_p(t.p_against)} | {_fmt_p(t.holm_claimed)} / {_fmt_p(t.holm_against)} "
            f"| {_fmt_p(t.holm_equivalent)} | {verdict(t)} |"
        )
    return "\n".join(lines)


def markdown(results: list) -> str:
    head = [
        "# Is strength search worth it? (issue #23 item 3)",
        "",
        f"Penalty: {PENALTY} on {TARGET}. Arms: none; grid of effective strengths "
        f"{', '.join(f'{e:g}' for e in GRID)} chosen on the selection seeds; adaptive at "
        f"e = {ADAPTIVE_E:g}; pbt over effective [{PBT_RANGE[0]:g}, {PBT_RANGE[1]:g}], the member "
        "ranked best at the last exploit step. Δ = arm − reference, paired by test seed; p: "
        "one-sided paired t-tests (sign test where a run diverged); Holm over each setting's "
        "directional tests, TOSTs within the metric's SESOI as a second family; readings as "
        "the study's claims (better / worse / trivial / equivalent / —). The two searches "
        "cost the same member-steps (grid's selection runs are shared by its test seeds); "
        "none and adaptive are one run per seed.",
    ]
    return "\n\n".join(["\n".join(head), *(setting_markdown(r) for r in results)]) + "\n"


def csv_rows(results: list) -> list[dict]:
    rows = []
    for r in results:
        for arm in ARMS:
            for seed, score in sorted(r.scores[arm].items()):
                rows.append(
                    {
                        "setting": r.setting,
                        "arm": arm,
                        "seed": seed,
                        "metric": r.metric,
                        "score": score,
                        "strength": r.strengths[arm],
                        "member_steps": r.member_steps[arm],
                    }
                )
    return rows


def write_csv(path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def figure(results: list) -> Figure:
    """Per setting the four arms' scores, one line per test seed (paired)."""
    fig = Figure(figsize=(4.2 * len(results), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(results), squeeze=False)[0])
    x = np.arange(len(ARMS))
    for ax, r in zip(axes, results):
        for seed in sorted(r.scores["none"]):
            values = [r.scores[arm].get(seed, np.nan) for arm in ARMS]
            ax.plot(x, values, marker="o", alpha=0.7, label=f"seed {seed}")
        ax.set_xticks(x, ARMS)
        ax.set_title(r.setting)
        ax.set_ylabel(vocabulary.metric(r.metric).label)
    axes[0].legend(fontsize="small")
    return fig


def write_report(results: list, workdir) -> list[pathlib.Path]:
    workdir = pathlib.Path(workdir)
    md, table, png = (
        workdir / "strength_choice.md",
        workdir / "strength_choice.csv",
        workdir / f"{STEM}.png",
    )
    md.write_text(markdown(results))
    write_csv(table, csv_rows(results))
    figure(results).savefig(png, dpi=110)
    return [md, table, png]


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.study.strength_choice",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--workdir", required=True, help="the comparison's directory")
    parser.add_argument("--smoke", action="store_true", help="the smoke configs and sizes")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (settings split)")
    parser.add_argument(
        "--settings",
        default=",".join(s.name for s in SETTINGS),
        help=f"comma-separated, from: {', '.join(s.name for s in SETTINGS)}",
    )
    parser.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def settings_from(text: str) -> list[Setting]:
    by_name = {s.name: s for s in SETTINGS}
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise experiments.UsageError(f"--settings {text!r}: one or more of {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]


def _workers(args, settings: list[Setting]) -> None:
    """Trains the settings in ``args.jobs`` worker processes (round robin), waits for all."""
    workdir = pathlib.Path(args.workdir)
    procs = []
    for i in range(min(args.jobs, len(settings))):
        mine = settings[i :: args.jobs]
        log_path = workdir / f"worker{i}.log"
        argv = [sys.executable, "-m", "experiments.study.strength_choice", "--workdir",
                str(workdir), "--settings", ",".join(s.name for s in mine), "--train-only",
                "--no-progress"] + (["--smoke"] if args.smoke else [])  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log follows the worker
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        procs.append((proc, log_path))
        print(f"strength_choice: worker {i} ({', '.join(s.name for s in mine)}) -> {log_path}")
    failed = [str(path) for proc, path in procs if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"strength_choice: worker(s) failed, see {', '.join(failed)}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return experiments.run_main(lambda: _main(argv))


def _main(argv) -> int:
    args = parse_args(argv)
    settings = settings_from(args.settings)
    if args.jobs < 1:
        raise experiments.UsageError(f"--jobs must be >= 1, got {args.jobs}")
    plan = PLANS["smoke" if args.smoke else "full"]
    workdir = pathlib.Path(args.workdir)
    if workdir.exists() and not workdir.is_dir():
        raise experiments.UsageError(f"--workdir {args.workdir}: not a directory")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.jobs > 1 and not args.train_only:
        _workers(args, settings)
    bar = tqdm.tqdm(total=len(settings) * len(ARMS), disable=args.no_progress, desc="arms")
    results = [run_setting(s, plan, workdir, log=tqdm.tqdm.write, bar=bar) for s in settings]
    bar.close()
    if args.train_only:
        return 0
    for path in write_report(results, workdir):
        print(f"strength_choice: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
