"""experiments.study.plan: a preset's programs per worker and its priced wall, by hand."""

import pytest

from experiments.study import plan, presets
from regan_jax import walltime

# 3 unregularised runs and 2 strengths x 3 seeds of proximal L1 on G: 9 members, two programs.
TINY = {
    "ring8_gan": (
        presets.StudyGrid(
            "ring8_gan:smoke", ("none", "prox_l1"), ("g",), (0.01, 1.0), (), (0, 1, 2), units="raw"
        ),
    )
}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tiny", TINY)
    return "tiny"


def test_one_worker_trains_one_program_per_penalty(tiny):
    got = sorted(plan.programs(tiny, jobs=1))
    assert got == sorted([plan.Program("ring8_gan", 0, 3, 12), plan.Program("ring8_gan", 0, 6, 12)])


def test_two_workers_split_the_members_round_robin_then_group_them(tiny):
    # Members in grid order: none x 3 seeds, then prox_l1 at 0.01 (3 seeds) and 1.0 (3 seeds);
    # worker 0 takes members 0, 2, 4, 6, 8 (2 none, 3 prox_l1), worker 1 members 1, 3, 5, 7.
    got = sorted(plan.programs(tiny, jobs=2))
    assert got == sorted(
        [
            plan.Program("ring8_gan", 0, 2, 12),
            plan.Program("ring8_gan", 0, 3, 12),
            plan.Program("ring8_gan", 1, 1, 12),
            plan.Program("ring8_gan", 1, 3, 12),
        ]
    )


def test_a_grids_max_members_chunks_its_experiments_programs(monkeypatch):
    (grid,) = TINY["ring8_gan"]
    monkeypatch.setitem(presets.PRESETS, "tiny", {"ring8_gan": (grid._replace(max_members=4),)})
    assert presets.max_members("tiny", "ring8_gan") == 4
    sizes = sorted(p.members for p in plan.programs("tiny", jobs=1))
    assert sizes == [2, 3, 4]


def _row(name, k, steps, wall, **profile):
    return {"config.name": name, "sweep_members": k, "steps": steps, "wall_s": wall, **profile}


def test_the_plan_prices_every_phase_of_the_wall_profile_once():
    priced = (plan.TRAIN_WALL, *plan.PER_PROGRAM, *plan.PER_MEMBER)
    assert sorted(priced) == sorted(walltime.PHASE_FIELDS)


def test_measured_rates_are_median_member_steps_per_second_by_group_size():
    rows = [
        _row("a", 2, 1000, 10.0),  # 200 member-steps/s
        _row("a", 2, 1000, 20.0),  # 100
        _row("a", 2, 1000, 5.0),  # 400 -> median 200 at K = 2
        _row("a", None, 500, 5.0),  # a lone run: K = 1, 100 member-steps/s
        _row("a", 4, 1000, None),  # no wall: not a measurement
    ]
    rate = plan.measured_rates(rows)["a"]
    assert rate.by_size == {2: 200.0, 1: 100.0}
    assert rate.program_s == 0.0 and rate.member_s == 0.0  # no profile recorded


def test_a_wall_profile_prices_the_steps_the_program_and_each_member_apart():
    # A group of 2: its steps took 8 s of its 20 s (wall_s, the loop's, also counted its
    # in-training evaluation); set-up + compile 6 s per program; 6 s shared by its 2 members.
    profile = dict(
        wall_train_s=8.0,
        wall_setup_s=1.0,
        wall_compile_s=5.0,
        wall_eval_s=2.0,
        wall_final_s=3.0,
        wall_io_s=0.5,
        wall_other_s=0.5,
    )
    rate = plan.measured_rates([_row("a", 2, 1000, 20.0, **profile)] * 2)["a"]
    assert rate == plan.Rate({2: 250.0}, program_s=6.0, member_s=3.0)


def test_a_program_is_priced_at_the_closest_measured_size_plus_outside_time():
    rate = plan.Rate({2: 200.0, 8: 800.0}, program_s=4.0, member_s=0.5)
    # K = 3 is closest to 2: 3 x 1000 / 200 + 4 + 3 x 0.5.
    assert plan.program_seconds(plan.Program("a", 0, 3, 1000), rate) == pytest.approx(20.5)
    # K = 5 is as close to 2 as to 8: the larger group's rate is taken.
    assert plan.program_seconds(plan.Program("a", 0, 5, 1000), rate) == pytest.approx(12.75)


def test_the_wall_is_the_slowest_worker_and_unmeasured_experiments_are_named():
    rates = {"a": plan.Rate({1: 100.0}, 0.0, 0.0)}
    programs = [
        plan.Program("a", 0, 1, 1000),  # 10 s
        plan.Program("a", 1, 1, 3000),  # 30 s
        plan.Program("b", 0, 1, 1000),  # not priced
    ]
    est = plan.estimate(programs, rates, jobs=2)
    assert est == {"workers": [10.0, 30.0], "wall_s": 30.0, "unpriced": ["b"]}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--preset", "smoke", "--jobs", "0"], "--jobs must be >= 1"),
        (["--preset", "smoke", "--measured", "/nonexistent"], "neither a directory nor a .csv"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        plan.main(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
