"""Issue #23 item 3's comparison: the smoke pipeline end to end, its statistics by hand, bad input."""

import csv
import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.study import strength_choice as sc

SETTING = "digits_vae"  # one setting: the pipeline is the same for each (a GAN costs as much)
PLAN = sc.PLANS["smoke"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("strength_choice")
    argv = ["--workdir", str(root), "--smoke", "--settings", SETTING, "--no-progress"]
    assert sc.main(argv) == 0
    return root, argv


def read_rows(root):
    with open(root / "strength_choice.csv") as f:
        return list(csv.DictReader(f))


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_every_file_and_every_arm_on_every_test_seed(smoke):
    root, _ = smoke
    for name in ("strength_choice.md", "strength_choice.csv", f"{sc.STEM}.png"):
        assert (root / name).stat().st_size > 0
    rows = read_rows(root)
    assert sorted((r["arm"], int(r["seed"])) for r in rows) == sorted(
        (arm, s) for arm in sc.ARMS for s in PLAN.test_seeds
    )
    assert {r["setting"] for r in rows} == {SETTING} and {r["metric"] for r in rows} == {"elbo"}
    steps = 12  # the smoke config's
    expected = {"none": 2 * steps, "grid": (5 * 1 + 2) * steps, "adaptive": 2 * steps}
    expected["pbt"] = 2 * 2 * steps  # 2 searches of 2 members
    assert {r["arm"]: int(r["member_steps"]) for r in rows} == expected
    text = (root / "strength_choice.md").read_text()
    for arm, ref in sc.COMPARISONS:
        assert f"| {arm} vs {ref} |" in text


def test_the_grid_is_chosen_on_the_selection_seeds_only(smoke):
    root, _ = smoke
    selection = root / SETTING / "selection"
    recorded = {}
    for run in selection.iterdir():
        assert run.name.endswith(f"-seed{PLAN.selection_seeds[0]}"), run.name
        e = float(run.name.split("-e")[1].split("-seed")[0])
        recorded[e] = summary(run)["elbo"]
    assert sorted(recorded) == list(sc.GRID)
    chosen = max(recorded, key=recorded.get)  # one selection seed: its ELBO, higher is better
    rows = [r for r in read_rows(root) if r["arm"] == "grid"]
    assert {r["strength"] for r in rows} == {f"e = {chosen:g} (selection seeds 100)"}
    tests = sorted(p.name for p in (root / SETTING / "grid").iterdir())
    assert tests == [f"weight_decay-both-e{chosen:.3g}-seed{s}" for s in PLAN.test_seeds]
    for r in rows:  # the scores are the test runs' own
        run = root / SETTING / "grid" / f"weight_decay-both-e{chosen:.3g}-seed{r['seed']}"
        assert float(r["score"]) == summary(run)["elbo"]


def test_pbt_reports_the_member_ranked_best_at_the_last_exploit_step(smoke):
    root, _ = smoke
    scores = {int(r["seed"]): float(r["score"]) for r in read_rows(root) if r["arm"] == "pbt"}
    for seed in PLAN.test_seeds:
        search_dir = root / SETTING / "pbt" / f"seed{seed}"
        search = json.loads((search_dir / "search.json").read_text())
        last = [h for h in search["history"] if h["exploit"]][-1]
        assert last["step"] == 8  # interval 12 // 3 = 4: exploits at 4 and 8
        best = int(np.nanargmax(np.array(last["scores"], np.float64)))
        assert scores[seed] == summary(search_dir / f"m{best:02d}")["elbo"]
        seeds = [
            json.loads((search_dir / f"m{k:02d}" / "config.json").read_text())["seed"]
            for k in range(PLAN.population)
        ]
        assert seeds == [seed, seed + 1000]  # member 0 trains on the test seed


def test_a_second_run_reuses_everything_and_writes_the_same_table_with_workers_too(smoke):
    root, argv = smoke
    before = (root / "strength_choice.csv").read_text()
    mtimes = {p: p.stat().st_mtime for p in root.glob(f"{SETTING}/*/*/summary.json")}
    assert (
        sc.main(argv + ["--jobs", "2"]) == 0
    )  # a worker process trains (nothing), then the report
    assert "finished already" in (root / "worker0.log").read_text()
    assert (root / "strength_choice.csv").read_text() == before
    assert {p: p.stat().st_mtime for p in root.glob(f"{SETTING}/*/*/summary.json")} == mtimes


def holm(p):
    """Holm's step-down adjustment by hand (float64)."""
    p = np.asarray(p, np.float64)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


TABLE = {  # FD (lower is better) on 5 test seeds
    "none": {0: 40.0, 1: 42.0, 2: 39.0, 3: 45.0, 4: 41.0},
    "grid": {0: 30.0, 1: 33.5, 2: 28.0, 3: 36.0, 4: 31.0},  # ~10 lower: better
    "adaptive": {0: 40.5, 1: 42.4, 2: 39.6, 3: 45.5, 4: 41.45},  # ~0.5 higher: within SESOI 5
    "pbt": {0: 38.0, 1: 45.0, 2: 36.0, 3: 47.0, 4: 40.0},
}


def test_the_statistics_against_scipy_by_hand():
    tests = sc.comparisons(TABLE, "fd")
    assert [t.experiment for t in tests] == [f"{a} vs {r}" for a, r in sc.COMPARISONS]
    d = {
        (a, r): np.array([TABLE[a][s] - TABLE[r][s] for s in range(5)], np.float64)
        for a, r in sc.COMPARISONS
    }
    lower = [scipy_stats.ttest_1samp(x, 0.0, alternative="less").pvalue for x in d.values()]
    higher = [scipy_stats.ttest_1samp(x, 0.0, alternative="greater").pvalue for x in d.values()]
    tost = [
        max(
            scipy_stats.ttest_1samp(x, -5.0, alternative="greater").pvalue,
            scipy_stats.ttest_1samp(x, 5.0, alternative="less").pvalue,
        )
        for x in d.values()
    ]
    directional = holm(lower + higher)
    equivalent = holm(tost)
    for i, (t, x) in enumerate(zip(tests, d.values())):
        assert t.comparison.difference["median"] == np.median(x)
        assert t.comparison.difference["low"] <= np.median(x) <= t.comparison.difference["high"]
        np.testing.assert_allclose(t.comparison.d_z, x.mean() / x.std(ddof=1), rtol=1e-12)
        np.testing.assert_allclose(t.p_claimed, lower[i], rtol=1e-10)  # FD: better is lower
        np.testing.assert_allclose(t.p_against, higher[i], rtol=1e-10)
        np.testing.assert_allclose(t.holm_claimed, directional[i], rtol=1e-10)
        np.testing.assert_allclose(t.holm_against, directional[5 + i], rtol=1e-10)
        np.testing.assert_allclose(t.holm_equivalent, equivalent[i], rtol=1e-10)
    words = {t.experiment: sc.verdict(t) for t in tests}
    assert words["grid vs none"] == "better"  # Holm p < 0.05 lower, not within ±5
    assert words["adaptive vs none"] == "trivial"  # significantly higher, yet within ±5
    assert words["pbt vs grid"] == "worse"
    assert directional[0] < 0.05 and directional[5 + 1] < 0.05 and equivalent[1] < 0.05
    assert directional[3 + 5] < 0.05 and equivalent[3] >= 0.05


def test_the_grid_choice_is_the_best_median_and_the_smaller_strength_on_a_tie():
    assert sc.choose({0.1: [3.0, 4.0, 9.0], 1.0: [1.0, 5.0, 9.0]}, "fd") == 0.1  # 4 < 5
    assert sc.choose({0.1: [3.0, 4.0, 9.0], 1.0: [1.0, 5.0, 9.0]}, "elbo") == 1.0
    assert sc.choose({3.0: [2.0], 0.3: [2.0]}, "fd") == 0.3


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--settings", "digits_gan,ring8_gan"], "--settings"),
        (["--settings", ","], "--settings"),
        (["--jobs", "0"], "--jobs"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, args, flag):
    workdir = tmp_path / "comparison"
    assert sc.main(["--workdir", str(workdir), "--smoke", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and flag in err[0], err
    assert not workdir.exists()


def test_a_workdir_that_is_a_file_exits_2(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert sc.main(["--workdir", str(path), "--smoke"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and path.read_text() == "x"
