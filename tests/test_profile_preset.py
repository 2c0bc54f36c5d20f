"""benchmarks/profile_preset.py: a study's wall shares from its summaries, checked by hand."""

import json

import pytest

from benchmarks import profile_preset
from regan_jax import walltime

# A group of two members (one profile: 10 s) and a single run (5 s).
GROUP = dict(setup=1.0, compile=2.0, train=4.0, eval=1.0, final=1.0, io=0.5, other=0.5)
SINGLE = dict(setup=0.5, compile=1.0, train=3.0, eval=0.0, final=0.25, io=0.25, other=0.0)


def write_summary(directory, steps, phases=None, members=None):
    summary = {"steps": steps, "wall_s": 1.0, "fd": 3.0}
    if phases is not None:
        summary[walltime.TOTAL_FIELD] = sum(phases.values())
        summary.update({f"wall_{p}_s": s for p, s in phases.items()})
    if members is not None:
        summary["sweep_members"] = members
    directory.mkdir(parents=True)
    (directory / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def study(tmp_path):
    for seed in (0, 1):
        write_summary(tmp_path / "a" / f"none-seed{seed}", 100, GROUP, members=2)
    write_summary(tmp_path / "b" / "l2-seed0", 50, SINGLE)
    write_summary(tmp_path / "b" / "old-seed0", 50)  # trained before the profile existed
    (tmp_path / "b" / "unfinished").mkdir()
    (tmp_path / "b" / "unfinished" / "config.json").write_text("{}")
    return tmp_path


def test_a_group_counts_once_and_shares_are_of_the_summed_walls(study):
    rows = profile_preset.profile(study)
    assert set(rows) == {"a", "b"}
    a, b = rows["a"], rows["b"]
    assert (a["runs"], a["unprofiled"], a["member_steps"]) == (2, 0, 200)
    assert a["seconds"] == pytest.approx(10.0) and a["train"] == pytest.approx(4.0)
    assert (b["runs"], b["unprofiled"], b["member_steps"]) == (1, 1, 50)
    assert b["seconds"] == pytest.approx(5.0) and b["compile"] == pytest.approx(1.0)
    everything = profile_preset.total(rows)
    assert everything["seconds"] == pytest.approx(15.0)
    assert everything["compile"] == pytest.approx(3.0) and everything["member_steps"] == 250


def test_the_table_prints_shares_and_member_steps_per_second(study):
    text = profile_preset.table(profile_preset.profile(study), calibration=40.0, process=100.0)
    lines = text.splitlines()
    assert lines[0].split("|")[1:-1] == [
        " experiment ",
        " runs ",
        " s ",
        *(f" {p} " for p in walltime.PHASES),
        " member-steps/s ",
    ]
    cells = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in lines[2:]}
    # a: 10 s of 200 member-steps; train 4/10, compile 2/10.
    assert [c.strip() for c in cells["a"]] == [
        "2", "10", "0.100", "0.200", "0.400", "0.100", "0.100", "0.050", "0.050", "20"
    ]  # fmt: skip
    assert [c.strip() for c in cells["b"]][:2] == ["1 (+1 unprofiled)", "5"]
    assert cells["b"][-1].strip() == "10"
    # all: 15 s, 250 member-steps (16.7/s); compile 3/15.
    assert cells["all"][3].strip() == "0.200" and cells["all"][-1].strip() == "17"
    assert cells["calibration (measured apart)"][1].strip() == "40"
    assert cells["outside the training calls"][1].strip() == "85"  # 100 - 15
    assert all(len(line.split("|")) == len(lines[0].split("|")) for line in lines)


def test_a_missing_or_unprofiled_study_is_one_line_and_exit_2(tmp_path, capsys):
    assert profile_preset.main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a directory" in err
    write_summary(tmp_path / "old" / "run", 10)
    assert profile_preset.main([str(tmp_path)]) == 2
    assert "no finished run with a wall profile" in capsys.readouterr().err
