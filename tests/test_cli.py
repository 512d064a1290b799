import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_list_teachers_shows_names_parameters_and_defaults():
    result = CliRunner().invoke(cli, ["list", "teachers"])
    assert result.exit_code == 0, result.output
    for name in ("random", "alp-gmm", "covar-gmm", "riac"):
        assert name in result.output
    assert "fit_rate = 250" in result.output
    for name in ("adr", "spdl", "goal-gan", "lp-bandit", "stages", "oracle"):
        assert f"{name}  (" in result.output
    assert "learns from: success; task spaces: box" in result.output  # GoalGAN
    assert "learns from: return or success (signal); task spaces: discrete" in result.output  # the LP bandit
    assert "max_region_size = 50" in result.output


def test_simulate_writes_json_and_is_deterministic(tmp_path):
    args = ["simulate", "--teachers", "random,riac", "--episodes", "400", "--seeds", "0-1"]
    first = CliRunner().invoke(cli, [*args, "--json", str(tmp_path / "a.json"), "--teacher-param", "riac.max_region_size=20"])
    second = CliRunner().invoke(
        cli, [*args, "--json", str(tmp_path / "b.json"), "--workers", "2", "--teacher-param", "riac.max_region_size=20"]
    )
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert set(a["teachers"]) == {"random", "riac"}
    assert list(a["teachers"]["riac"]["mastered"]) == ["100", "200", "400"]
    assert len(a["teachers"]["riac"]["mastered"]["400"]) == 2
    assert a["teachers"]["riac"]["params"] == {"max_region_size": 20}
    assert a["teachers"]["riac"]["teacher_us_per_episode"] > 0
    for teacher in a["teachers"]:
        assert a["teachers"][teacher]["mastered"] == b["teachers"][teacher]["mastered"]  # workers change nothing
    table_lines = [line for line in first.output.splitlines() if "│" in line and "µs" not in line]
    assert any("riac" in line for line in table_lines)


def test_bad_teacher_name_is_one_clear_error():
    result = CliRunner().invoke(cli, ["simulate", "--teachers", "random,alpgmm", "--episodes", "10"])
    assert result.exit_code == 2
    assert "unknown teacher 'alpgmm'; valid: random, alp-gmm, covar-gmm, riac" in result.output


def test_bad_teacher_params_are_clear_errors():
    runner = CliRunner()
    cases = {
        "riac.size=3": "teacher 'riac' has no parameter 'size'; valid:",
        "riac=3": "must look like TEACHER.PARAM=VALUE",
        "alp-gmm.fit_rate=3": "names teacher 'alp-gmm', which is not among: riac",
        "riac.p_alp=lots": "bad value for riac.p_alp",
        "riac.p_alp=0.95": "teacher 'riac': need p_alp, p_random >= 0 and p_alp + p_random <= 1",
    }
    for option, message in cases.items():
        result = runner.invoke(cli, ["simulate", "--teachers", "riac", "--episodes", "10", "--teacher-param", option])
        assert result.exit_code == 2, (option, result.output)
        assert message in result.output, (option, result.output)


def test_oversized_student_is_a_clear_error():
    result = CliRunner().invoke(cli, ["simulate", "--teachers", "random", "--dims", "8", "--cells", "10"])
    assert result.exit_code == 2
    assert "10^8 = 100,000,000 cells is too many" in result.output


def test_unwritable_json_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(
        cli, ["simulate", "--teachers", "random", "--episodes", "10", "--seeds", "1", "--json", str(blocker / "x.json")]
    )
    assert result.exit_code == 2
    assert "--json" in result.output and "cannot write there" in result.output


def test_script_entry_point_prints_no_traceback():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "simulate", "--teachers", "nope", "--episodes", "5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "unknown teacher 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_version_is_the_packages():
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip().endswith(version("teachrl")) and version("teachrl") == "0.1.0"
