"""benchmarks/preset_slice.sh's pieces: the first study's grids and the run-by-run comparison."""

import json
import re

import pytest

from benchmarks import preset_v1, slice_compare
from experiments.study import presets, results, runner


def test_cpu_v1_holds_exactly_the_first_studys_runs():
    # The independent reference: the run directories of the first study's 660 runs,
    # published in docs/study_v1/results.csv by 2550e99's own preset. Without a calibration
    # record a member's name gives its strength as a number ("l2-d-0.1-seed0"); with one, as
    # an effective one ("l2-d-e0.1-seed0").
    published = {
        re.sub(r"-e(?=[0-9.]+-seed)", "-", row["run"]) for row in results.read_csv(presets.PILOT)
    }
    declared = {
        f"{name}/{member.name}"
        for name, grids in preset_v1.CPU_V1.items()
        for grid in grids
        for member in runner.grid_members(grid)
    }
    assert len(published) == 660
    assert declared == published


def test_cpu_v1_scores_protocol_v1():
    for grids in preset_v1.CPU_V1.values():
        for grid in grids:
            base = runner.grid_base(grid)
            assert not base.eval.protocol_v2
            assert base.log.checkpoint_every == 0 and base.log.samples_every == 0


def test_train_shard_names_every_missing_record_before_training(tmp_path, capsys):
    (tmp_path / "ring8_gan").mkdir()
    (tmp_path / "ring8_gan" / "calibration.json").write_text("{}")
    assert preset_v1.main(["--workdir", str(tmp_path), "--shard", "0/20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no calibration record at ") and err.count("\n") == 1
    assert "digits_gan/calibration-r1.json" in err and "ring8_gan" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ring8_gan"]  # nothing written


@pytest.mark.parametrize("shard", ["1/1", "a/b", "0"])
def test_bad_shard_exits_2(tmp_path, capsys, shard):
    assert preset_v1.main(["--workdir", str(tmp_path), "--shard", shard]) == 2
    assert "--shard" in capsys.readouterr().err


def test_flatten_and_same_value():
    assert slice_compare.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": None,
    }
    assert slice_compare.same_value(1.0, 1.0 + 9e-7, 1e-6)
    assert not slice_compare.same_value(1.0, 1.0 + 2e-6, 1e-6)
    assert slice_compare.same_value(float("nan"), float("nan"), 0.0)
    assert not slice_compare.same_value(float("nan"), 1.0, 1.0)
    assert not slice_compare.same_value(True, 1, 0.0)
    assert slice_compare.same_value([1.0, "x"], [1.0, "x"], 0.0)
    assert not slice_compare.same_value([1.0], [1.0, 2.0], 0.0)
    assert not slice_compare.same_value("0.1", 0.1, 1.0)


def _run(root, run, config, summary):
    directory = root / run
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "summary.json").write_text(json.dumps(summary))


def test_compare_runs_counts_work_results_and_new_keys(tmp_path, capsys):
    before, after = tmp_path / "before", tmp_path / "after"
    config = {"steps": 10, "penalty": {"g": {"strength": 0.5}}}
    newer = {**config, "eval": {"protocol_v2": False}}
    # a calibration record's path names its own side's directory: the same place
    config["calibration"] = str(before / "e" / "calibration.json")
    newer["calibration"] = str(after / "e" / "calibration.json")
    _run(before, "e/same", config, {"fd": 3.0, "wall_s": 9.0})
    _run(after, "e/same", newer, {"fd": 3.0 * (1 + 5e-7), "wall_s": 1.0, "kid": 0.1})
    _run(before, "e/other", config, {"fd": 3.0})
    _run(after, "e/other", {**newer, "steps": 11}, {"fd": 3.1})
    _run(before, "e/gone", config, {"fd": 3.0})
    _run(after, "e/new", newer, {"fd": 3.0})
    result = slice_compare.compare_runs(before, after)
    assert result["runs"] == 3
    assert result["missing"] == ["e/gone"]
    assert result["extra"] == ["e/new"]
    assert result["config_differ"] == {"e/other": ["steps"]}
    assert result["summary_differ"] == {"e/other": ["fd"]}  # wall_s is a timing field
    assert result["config_only_after"] == ["eval.protocol_v2"]
    assert result["summary_only_after"] == ["kid"]
    assert slice_compare.main([str(before), str(after)]) == 1
    out = capsys.readouterr().out
    assert "same work (config.json, every common key): 1;" in out
    assert "missing after: ['e/gone']; only after: ['e/new']" in out


def test_compare_exits_0_on_identical_sides_and_2_on_a_bad_path(tmp_path, capsys):
    for side in ("before", "after"):
        _run(tmp_path / side, "e/r", {"steps": 1}, {"fd": 2.0})
    assert slice_compare.main([str(tmp_path / "before"), str(tmp_path / "after")]) == 0
    assert slice_compare.main([str(tmp_path / "nowhere"), str(tmp_path / "after")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
