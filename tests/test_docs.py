"""The README's result tables say what the committed reference results say (so they cannot drift apart)."""

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
REFERENCE = ROOT / "results" / "reference"


def cell(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


COMPARISONS = [
    "point_mass_ppo_500k",
    "point_mass_trained",
    "spdl_point_mass",
    "demo",
    "maze",
    "maze_named",
    "maze_paired",
    "maze_clutr",
    "point_mass_paired",
    "classics_cartpole",
    "classics_acrobot",
    "classics_lunar-lander",
    "classics_pendulum",
]


@pytest.mark.parametrize("folder", COMPARISONS)
def test_comparison_tables_match_their_summaries(folder):
    summary = pd.read_csv(REFERENCE / folder / "summary.csv")
    prefix = f"| {folder.removeprefix('classics_')} " if folder.startswith("classics_") else ""
    for row in summary.itertuples():
        mastered = cell(row.mastered_pct_mean, row.mastered_pct_std, 1)
        returns = cell(row.mean_return_mean, row.mean_return_std, 2)
        auc = cell(row.auc_mean, row.auc_std, 1)
        assert any(
            line.strip().startswith(f"{prefix}| {row.teacher} |") and mastered in line and returns in line and auc in line
            for line in README.splitlines()
        ), (folder, row.teacher, mastered, returns, auc)


@pytest.mark.parametrize("folder", ["maze_named", "maze_paired", "maze_clutr"])
def test_named_maze_solved_rates_match_the_reference(folder):
    summary = pd.read_csv(REFERENCE / folder / "summary.csv")
    report = (REFERENCE / folder / "report.md").read_text().splitlines()
    for row in summary.itertuples():
        solved = cell(row.named_solved_pct_mean, row.named_solved_pct_std, 1)
        mastered = cell(row.mastered_pct_mean, row.mastered_pct_std, 1)
        assert any(line.startswith(f"| {row.teacher} |") and mastered in line and line.endswith(f" {solved} |")
                   for line in README.splitlines()), (row.teacher, solved)
        per_maze = next(line for line in report if line.startswith(f"| {row.teacher} | ") and "±" not in line)
        assert per_maze in README.splitlines(), per_maze


def test_point_mass_layouts_side_by_side_match_their_summaries():
    layouts = ["point_mass_ppo_500k_4envs", "point_mass_ppo_500k", "point_mass_ppo_500k_batch1024"]
    summaries = [pd.read_csv(REFERENCE / folder / "summary.csv").set_index("teacher") for folder in layouts]
    for teacher in summaries[0].index:
        rows = [s.loc[teacher] for s in summaries]
        cells = [cell(r.mastered_pct_mean, r.mastered_pct_std, 1) for r in rows]
        aucs = " / ".join(f"{r.auc_mean:.1f}" for r in rows)
        expected = f"| {teacher} | " + " | ".join(cells) + f" | {aucs} |"
        assert expected in README.splitlines(), expected


def test_simulated_student_table_matches_its_reference():
    data = json.loads((REFERENCE / "simulated_student_2d.json").read_text())
    for teacher, result in data["teachers"].items():
        cells = [cell(statistics.mean(v), statistics.stdev(v), 1) for v in result["mastered"].values()]
        line = next(line for line in README.splitlines() if line.startswith(f"│ {teacher} "))
        assert [c.strip() for c in line.split("│")[2:5]] == cells, (teacher, line)


def test_kickstarting_table_matches_its_summary():
    summary = pd.read_csv(REFERENCE / "kickstart_point_mass" / "summary.csv").set_index(["teacher", "student"])
    for teacher in ("random", "plr"):
        for net, prefix in (("64-64", "ppo"), ("16-16", "ppo-small")):
            scratch, kick = (summary.loc[(teacher, name)] for name in (prefix, f"{prefix}-kick"))
            line = next(line for line in README.splitlines() if line.startswith(f"| {teacher} | {net} |"))
            expected = f"{cell(scratch.mastered_pct_mean, scratch.mastered_pct_std, 1)} / "
            expected += f"**{cell(kick.mastered_pct_mean, kick.mastered_pct_std, 1)}**"
            assert line.rstrip(" |").endswith(expected), (line, expected)


def test_distillation_table_is_the_benchmarks():
    rows = (REFERENCE / "distill_point_mass" / "table.md").read_text().strip().splitlines()
    assert len(rows) == 8
    for row in rows:
        assert row in README.splitlines(), row


@pytest.mark.parametrize("name", ["simulated_student_3d5", "simulated_student_unlearnable", "simulated_student_discrete"])
def test_simulated_student_variant_tables_match_their_references(name):
    data = json.loads((REFERENCE / f"{name}.json").read_text())
    for teacher, result in data["teachers"].items():
        cells = [cell(statistics.mean(v), statistics.stdev(v), 1) for v in result["mastered"].values()]
        row = f"| {teacher} | " + " | ".join(cells) + f" | {result['teacher_us_per_episode']:.0f} |"
        assert any(line.startswith(row) for line in README.splitlines()), row


def test_cycle_at_equal_trained_steps_table_matches_its_summaries():
    """The README's table of dcd's cycle against per-episode decisions at equal trained steps."""
    folders = ["point_mass_trained_episode", "point_mass_trained", "maze_trained_episode", "maze_trained"]
    summaries = [pd.read_csv(REFERENCE / folder / "summary.csv").set_index("teacher") for folder in folders]
    for teacher in ("robust-plr", "accel"):
        cells = [cell(s.loc[teacher].mastered_pct_mean, s.loc[teacher].mastered_pct_std, 1) for s in summaries]
        line = next(line for line in README.splitlines() if line.startswith(f"  | {teacher} | {cells[0]} |"))
        assert all(c in line for c in cells), (teacher, cells, line)


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    """The README's Python examples are code a user copies: each block runs as it is (in a scratch folder)."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
