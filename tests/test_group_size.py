"""Tests of ``benchmarks.group_size`` (its machinery and its CLI; speed is the benchmark's).

The pure pieces against figures worked out by hand (block sizes, the best K and
its ratios, a fake sysfs cache tree); the measurement on the smoke ring8 GAN
checked for consistency between its figures (rates are K over the step time,
a group's state is K times one member's, XLA's FLOPs grow with K); every user
error of the CLI is one line on stderr and exit 2, with nothing written.
"""

import json

import pytest

import experiments
from benchmarks import group_size
from experiments import sweep as sweep_cli
from experiments.study import sweeps


def test_steps_per_block_gives_about_member_steps_and_at_least_one():
    assert [group_size.steps_per_block(k, 64) for k in (1, 2, 3, 8, 64, 100, 200)] == [
        64,
        32,
        21,  # 64 / 3 = 21.3
        8,
        1,
        1,  # 0.64 rounds to 1
        1,  # 0.32 rounds to 0: at least one
    ]


def test_best_members_is_the_fastest_k_with_its_ratios():
    figures = {
        1: {"member_steps_per_s": 100.0},
        4: {"member_steps_per_s": 150.0},
        16: {"member_steps_per_s": 120.0},
        64: {"member_steps_per_s": 60.0},
    }
    assert group_size.best_members(figures) == {
        "best_members": 4,
        "best_over_k1": 1.5,
        "best_over_largest": 2.5,
        "largest_members": 64,
    }


def test_cpu_caches_reads_data_and_unified_caches_of_a_sysfs_tree(tmp_path):
    for index, (level, kind, size) in enumerate(
        [("1", "Data", "32K"), ("1", "Instruction", "32K"), ("2", "Unified", "1024K"),
         ("3", "Unified", "32768K")]
    ):  # fmt: skip
        d = tmp_path / f"index{index}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert group_size.cpu_caches(str(tmp_path)) == {
        "L1d": 32 * 1024,
        "L2": 1024 * 1024,
        "L3": 32 * 1024 * 1024,
    }
    assert group_size.cpu_caches(str(tmp_path / "absent")) == {}


def test_measure_times_each_k_beside_the_matmul_and_its_figures_agree():
    config = experiments.load_config("ring8_gan:smoke")
    out = group_size.measure(config, [1, 2, 4], member_steps=4, blocks=1, matmul_n=64, before=True)
    assert out["peak_flops_per_s"] > 0
    by = out["by_members"]
    assert sorted(by) == [1, 2, 4]
    one = by[1]
    assert one["time_over_runs"] == 1.0
    for k, f in by.items():
        assert f["steps_per_block"] == group_size.steps_per_block(k, 4)
        assert f["member_steps_per_s"] == pytest.approx(k / f["median_s"])
        assert f["time_over_runs"] == pytest.approx(f["median_s"] / (k * one["median_s"]))
        assert f["fraction_of_peak"] == pytest.approx(
            f["flops_per_step"] / f["median_s"] / out["peak_flops_per_s"]
        )
        # K members' state is K times one member's, to the byte.
        assert f["state_mib"] == pytest.approx(k * one["state_mib"], rel=1e-12)
        # A group step does about K single steps' arithmetic (plus the shared gather).
        assert 0.9 * k < f["flops_per_step"] / one["flops_per_step"] < 1.1 * k
    # --before: the same K with the concatenated finite check, timed in the same rounds.
    before = out["by_members_before"]
    assert sorted(before) == [1, 2, 4] and before[1]["time_over_runs"] == 1.0
    for k, f in before.items():
        assert out["before_over_now"][k] == pytest.approx(f["median_s"] / by[k]["median_s"])
        assert f["state_mib"] == by[k]["state_mib"]
    rates = {k: f["member_steps_per_s"] for k, f in by.items()}
    assert out["best_members"] == max(rates, key=rates.get)
    assert out["best_over_k1"] == pytest.approx(rates[out["best_members"]] / rates[1])
    assert out["best_over_largest"] == pytest.approx(rates[out["best_members"]] / rates[4])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "ring8_gan,no_such"], "unknown config(s) ['no_such']"),
        (["--members", "0,2"], "--members must be distinct ints >= 1, commas; got '0,2'"),
        (["--members", "2,2"], "--members must be distinct ints >= 1, commas; got '2,2'"),
        (["--members", "1,x"], "--members must be distinct ints >= 1, commas; got '1,x'"),
        (["--member-steps", "0"], "--member-steps and --blocks must be >= 1"),
        (["--blocks", "0"], "--member-steps and --blocks must be >= 1"),
        (["--profile", "-1"], "--profile must be >= 0"),
    ],
)
def test_cli_refuses_bad_arguments_in_one_line_with_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert group_size.main([*argv, "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n" and captured.out == ""
    assert not out.exists()


def test_cli_refuses_a_json_path_in_a_missing_directory(tmp_path, capsys):
    out = tmp_path / "missing" / "out.json"
    assert group_size.main(["--config", "ring8_gan", "--json", str(out)]) == 2
    assert capsys.readouterr().err == f"--json: no directory {out.parent}\n"
    assert not out.parent.exists()


def test_cli_writes_each_program_with_its_best_k_and_op_profile(tmp_path, capsys):
    out = tmp_path / "out.json"
    argv = ["--config", "ring8_gan:smoke", "--members", "1,2", "--member-steps", "2"]
    assert group_size.main([*argv, "--blocks", "1", "--profile", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    program = figures["programs"]["ring8_gan:smoke"]
    assert sorted(program["by_members"]) == ["1", "2"]  # JSON keys
    assert program["best_members"] in (1, 2) and program["largest_members"] == 2
    assert figures["matmul_n"] == group_size.MATMUL_N and figures["affinity"]
    assert "best K=" in capsys.readouterr().out
    # --profile: each K's XLA ops by name, seconds per step; the step's dots among them.
    for ops in program["op_seconds"].values():
        assert ops and all(v >= 0 for v in ops.values())
        assert any(name.startswith(("dot", "ynn_fusion")) for name in ops)


def test_default_max_members_is_the_measured_cpu_group_and_the_large_one_elsewhere():
    assert sweeps.default_max_members("cpu") == sweeps.CPU_MAX_MEMBERS == 4
    assert sweeps.default_max_members("gpu") == sweeps.ACCELERATOR_MAX_MEMBERS == 64
    assert sweeps.default_max_members() == 4  # the tests run on the CPU
    args, _ = sweep_cli.parse_run_args(["--config", "ring8_gan:smoke", "--workdir", "w"])
    assert args.max_members is None  # experiments.sweep leaves it to run_members
