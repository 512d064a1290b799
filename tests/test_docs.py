"""The README's and the documentation's result tables say what the committed reference results say, their code
blocks run as they are, and the documentation's generated parts cover the code (so none of them can drift)."""

import contextlib
import importlib.util
import io
import json
import re
import shlex
import statistics
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: every line of the README and the documentation pages: a figure may sit on any of them (the README keeps the
#: headline tables, the benchmark pages the rest)
README = "\n".join(page.read_text() for page in PAGES)
REFERENCE = ROOT / "results" / "reference"


def cell(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


COMPARISONS = [
    "point_mass_ppo_500k",
    "point_mass_trained",
    "spdl_point_mass",
    "spdl_point_mass_paper",
    "demo",
    "maze",
    "maze_named",
    "maze_paired",
    "maze_clutr",
    "point_mass_paired",
    "lunar_lander_infeasible",
    "lunar_lander_infeasible_600k",
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


def test_the_spdl_paper_protocol_table_matches_its_summary():
    summary = pd.read_csv(REFERENCE / "spdl_point_mass_paper" / "summary.csv")
    for row in summary.itertuples():
        protocol = f"| {row.teacher} | {cell(row.protocol_success_pct_mean, row.protocol_success_pct_std, 1)} | "
        protocol += f"{cell(row.protocol_return_mean, row.protocol_return_std, 2)} | "
        protocol += f"{cell(row.target_mastered_pct_mean, row.target_mastered_pct_std, 1)} |"
        assert any(line.startswith(protocol) for line in README.splitlines()), protocol


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


def test_maze_student_entropy_table_matches_its_summary():
    summary = pd.read_csv(REFERENCE / "maze_student_entropy" / "summary.csv").set_index("student")
    for student, label in [("ppo", "| 0.01 (ours) |"), ("ppo-ent0.001", "| 0.001 (minimax's) |")]:
        row = summary.loc[student]
        expected = (f"{label} {cell(row.mastered_pct_mean, row.mastered_pct_std, 1)} | "
                    f"{cell(row.mean_return_mean, row.mean_return_std, 2)} | {cell(row.auc_mean, row.auc_std, 1)} | "
                    f"{cell(row.named_solved_pct_mean, row.named_solved_pct_std, 1)} |")
        assert expected in README.splitlines(), expected
    # its `ppo` rows are maze_named's random rows, run again
    named = pd.read_csv(REFERENCE / "maze_named" / "summary.csv").set_index("teacher").loc["random"]
    assert summary.loc["ppo"].mastered_pct_mean == pytest.approx(named.mastered_pct_mean)
    assert summary.loc["ppo"].named_solved_pct_mean == pytest.approx(named.named_solved_pct_mean)


@pytest.mark.parametrize("folder", ["lunar_lander_infeasible", "lunar_lander_infeasible_600k"])
def test_infeasible_shares_match_their_summary(folder):
    summary = pd.read_csv(REFERENCE / folder / "summary.csv")
    for row in summary.itertuples():
        p = "-" if row.teacher == "random" else f"{row.infeasible_pct_p_vs_random:.2g}"
        share = f"| {cell(row.infeasible_pct_mean, row.infeasible_pct_std, 1)} | {p} |"
        assert any(line.startswith(f"| {row.teacher} |") and line.endswith(share) for line in README.splitlines()), share


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


def _blocks(page: Path) -> list[tuple[str, str | None]]:
    """A page's Python blocks, each with the output the page says it prints (a block after "prints"), or None."""
    pattern = re.compile(r"```python\n(.*?)```(?:\n\nprints\n\n```\n(.*?)```)?", flags=re.S)
    return [(code, printed or None) for code, printed in pattern.findall(page.read_text())]


def test_the_readme_keeps_the_main_jobs_table():
    summary = pd.read_csv(REFERENCE / "demo" / "summary.csv")
    readme = (ROOT / "README.md").read_text().splitlines()
    for row in summary.itertuples():
        mastered = cell(row.mastered_pct_mean, row.mastered_pct_std, 1)
        assert any(line.startswith(f"| {row.teacher} |") and mastered in line for line in readme), row.teacher


@pytest.mark.parametrize("page", [p for p in PAGES if "```python" in p.read_text()], ids=lambda p: p.name)
def test_every_python_block_runs_and_prints_what_its_page_says(page, tmp_path, monkeypatch):
    """The Python examples are code a user copies: each block runs as it is, in a scratch folder beside the
    example configs, and a block the page shows the output of prints exactly that."""
    from curriculum.registry import TEACHERS

    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    monkeypatch.chdir(tmp_path)
    registered = dict(TEACHERS)  # a page registers its own teacher: the registry is restored after
    blocks = _blocks(page)
    assert blocks
    try:
        for code, printed in blocks:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, str(page.name), "exec"), {"__name__": "docs"})
            if printed is not None:
                assert out.getvalue() == printed, (page.name, out.getvalue())
    finally:
        TEACHERS.clear()
        TEACHERS.update(registered)


def test_the_docs_count_their_python_blocks():
    """The docs' examples: at least the guide's, the extending page's and the README's."""
    counts = {page.name: len(_blocks(page)) for page in PAGES}
    assert counts["python-api.md"] >= 4 and counts["extending.md"] >= 2 and counts["README.md"] >= 1, counts


def _console_cases() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    return re.findall(r"```console\n\$ python cli\.py (.*?)\n(Error: .*?)\n```", text)


@pytest.mark.parametrize(("args", "message"), _console_cases())
def test_every_troubleshooting_message_is_what_the_command_prints(args, message, tmp_path, monkeypatch):
    from cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, shlex.split(args))
    assert result.exit_code == 2, result.output
    assert [line for line in result.output.splitlines() if line.strip()][-1] == message
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_troubleshooting_page_covers_the_common_errors():
    assert len(_console_cases()) >= 10


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_pages_cover_every_teacher_environment_and_reproduction():
    from curriculum.registry import TEACHER_SOURCES, TEACHERS
    from environments.registry import ENVIRONMENTS
    from students.experiments.reproduce import REPRODUCTIONS

    hooks = _hooks()
    assert set(TEACHER_SOURCES) == set(TEACHERS)  # a new teacher names its paper and reference code
    teachers = hooks.teachers_markdown()
    for name, cls in TEACHERS.items():
        assert f"### {name}\n" in teachers and f"`{cls.__module__}.{cls.__name__}`" in teachers, name
    assert ":param" not in teachers and ":class:" not in teachers
    assert "| `fit_rate` | `250` |" in teachers  # ALP-GMM's default, as the class declares it
    envs = hooks.environments_markdown()
    assert all(f"| `{name}` |" in envs for name in ENVIRONMENTS)
    assert hooks.frame_problems() == []  # `make docs-frames` renders a missing one
    reproductions = hooks.reproductions_markdown()
    assert all(f"## {name}\n" in reproductions for name in REPRODUCTIONS)
    assert "not measured" not in reproductions  # every committed reference holds the rows its claims need
    pages = {p.name for p in PAGES}
    for marker in re.findall(r"<!-- generated: ([a-z-]+) -->", README):
        assert marker in hooks.GENERATED, marker
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(name in nav for name in pages if name != "README.md"), "every page is in mkdocs.yml's nav"


def test_the_readmes_headline_figures_are_on_the_pages_they_link():
    """Each row of the README's "What our comparisons show" table: every mean ± std in it stands on its page, whose
    tables the tests above check against the committed references."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What our comparisons show", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "](docs/" in line]
    assert len(rows) >= 6
    for row in rows:
        page = (ROOT / re.search(r"\]\((docs/[a-z-]+\.md)\)", row).group(1)).read_text()
        figures = re.findall(r"-?\d+\.\d+ ± \d+\.\d+", row)
        assert figures, row
        for figure in figures:
            assert figure in page, (figure, row)


def test_infeasible_interference_table_is_the_benchmarks():
    table = (REFERENCE / "infeasible_budget" / "interference.md").read_text()
    rows = [row for row in table.splitlines() if row.startswith("|")]
    assert len(rows) == 12
    page = (ROOT / "docs" / "benchmarks.md").read_text().splitlines()
    for row in rows:
        assert row in page, row
