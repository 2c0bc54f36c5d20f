"""The wall profile: phases charged by a (fake) clock, compile events moved to ``compile``."""

import jax
import pytest

import experiments
from regan_jax import train, walltime


class FakeClock:
    """Returns the times given, in order (seconds)."""

    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def compile_event(seconds, event=walltime.COMPILE_EVENTS[1]):
    jax.monitoring.record_event_duration_secs(event, seconds)


def test_phases_are_charged_their_windows_and_the_gaps_go_to_other():
    # enter 10; setup 11..14; gap to 15; train 15..21 (nested io 16..18); fields at 30.
    clock = FakeClock(10.0, 11.0, 14.0, 15.0, 16.0, 18.0, 21.0, 30.0)
    with walltime.WallProfile(clock) as wall:
        with wall.phase("setup"):
            pass
        with wall.phase("train"):
            with wall.phase("io"):
                pass
        fields = wall.fields()
    assert fields == {
        "wall_group_s": 20.0,
        "wall_setup_s": 3.0,
        "wall_compile_s": 0.0,
        "wall_train_s": 4.0,  # 15..16 and 18..21; the nested io is its own
        "wall_eval_s": 0.0,
        "wall_final_s": 0.0,
        "wall_io_s": 2.0,
        "wall_other_s": 11.0,  # 10..11, 14..15, 21..30
    }
    assert sum(fields[f] for f in walltime.PHASE_FIELDS) == fields[walltime.TOTAL_FIELD]


def test_compile_events_move_seconds_from_the_open_phase_to_compile():
    clock = FakeClock(0.0, 1.0, 5.0, 6.0, 7.0, 9.0)
    with walltime.WallProfile(clock) as wall:
        with wall.phase("train"):  # 1..5, of which 2.5 s compiling (two events)
            compile_event(2.0)
            compile_event(0.5, walltime.COMPILE_EVENTS[0])
            jax.monitoring.record_event_duration_secs("/jax/some/other/event", 100.0)
        with wall.phase("final"):  # 6..7: 1 s, but JAX reports 1.25 s (another clock)
            compile_event(1.25)
        fields = wall.fields()  # at 9: the 0.25 s left over is compile time of the gap
    assert fields["wall_train_s"] == 1.5 and fields["wall_final_s"] == 0.0
    assert fields["wall_compile_s"] == 2.5 + 1.0 + 0.25
    assert fields["wall_other_s"] == 1.0 + 1.0 + 1.75
    assert sum(fields[f] for f in walltime.PHASE_FIELDS) == fields["wall_group_s"] == 9.0


def test_events_outside_the_profile_are_not_counted():
    clock = FakeClock(0.0, 4.0)
    with walltime.WallProfile(clock) as wall:
        pass
    compile_event(3.0)  # after exit: the listener is gone
    assert wall.fields()["wall_compile_s"] == 0.0


@pytest.mark.parametrize("name", ["compile", "other", "training", ""])
def test_only_the_timed_phases_can_be_opened(name):
    with walltime.WallProfile() as wall:
        with pytest.raises(ValueError, match="phase must be one of"):
            with wall.phase(name):
                pass


def test_a_groups_summaries_hold_its_profile_with_parts_that_sum_to_the_total(tmp_path):
    """Two digits GAN members (in-training FD, grids, checkpoints): one shared wall."""
    configs = [
        experiments.load_config("digits_gan:smoke", [("log.progress", "false"), ("seed", s)])
        for s in ("0", "1")
    ]
    workdirs = [tmp_path / "a", tmp_path / "b"]
    train.train_members(configs, workdirs, progress=False)
    summaries = [train.read_json(w / train.SUMMARY_FILE) for w in workdirs]
    profile = {k: summaries[0][k] for k in (walltime.TOTAL_FIELD, *walltime.PHASE_FIELDS)}
    assert all({k: s[k] for k in profile} == profile for s in summaries)
    assert all(v >= 0 for v in profile.values()), profile
    # Each part is a sum of differences of the same clock readings and they telescope to the
    # total: only float rounding (~1e-16 per term, hundreds of terms) separates them.
    parts = sum(profile[f] for f in walltime.PHASE_FIELDS)
    assert parts == pytest.approx(profile[walltime.TOTAL_FIELD], rel=1e-12)
    # Every phase happened: set-up, steps, FD at steps 6 and 12, grids and checkpoints, the
    # final scores, programs lowered; the loop's own wall lies inside the group's.
    assert all(profile[f] > 0 for f in walltime.PHASE_FIELDS), profile
    assert summaries[0]["wall_s"] < profile[walltime.TOTAL_FIELD]
    # What comparisons of summaries leave out covers every timing field a summary holds.
    timed = {k for k in summaries[0] if k.startswith("wall") or k.endswith("_per_s")}
    assert timed == set(walltime.TIMING_FIELDS)
