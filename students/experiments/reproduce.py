"""Reproductions: every published table of the project, rerun with one command (``cli.py reproduce NAME``).

Each :class:`Reproduction` names what it reruns (a comparison config, a simulated-student config, or a bench
script), the committed reference it was published from (``results/reference/...``), the claim it tests and where
the claim comes from, and its wall time on a 2-core machine. :func:`check` reads a finished rerun and sets it
beside the reference, row by row (is our mean inside the reference's 95% t-interval?), and beside the claim
(:class:`Claim`: agrees or disagrees, on our rerun and on the reference alike). A rerun is resumable: the
comparison machinery skips finished runs. It runs from a checkout of the repository, where the references and
bench scripts are (the wheel ships neither).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from students.analysis.report import mean_ci, welch_p

ROOT = Path(__file__).resolve().parents[2]


class ReproduceError(ValueError):
    """An unknown reproduction, options it does not take, or a rerun that failed or left no results."""


@dataclass(frozen=True)
class Stat:
    """One row's result on one metric: mean, std and 95% t-interval half-width over seeds, and Welch's p-value
    against the ``random`` row (NaN where there is none)."""

    mean: float
    std: float
    ci95: float
    seeds: int
    p_vs_random: float = math.nan


Rows = dict[str, dict[str, Stat]]  # row label -> metric -> result


@dataclass(frozen=True)
class Claim:
    """What a source claims, as a test on the rows: ``better`` has a higher mean ``metric`` than ``worse`` (a
    lower one with ``lower``: a share of wasted episodes) and, with ``p``, Welch's p-value against ``random``
    below it (``worse`` must then be ``random``); or, with ``at_least``, ``better``'s mean is at least that
    figure (a paper's number)."""

    text: str
    better: str
    worse: str | None = None
    metric: str = "mastered_pct"
    p: float | None = None
    at_least: float | None = None
    lower: bool = False

    def holds(self, rows: Rows) -> bool | None:
        """Whether the rows agree with the claim (``None``: a row or metric it needs is missing)."""
        own = rows.get(self.better, {}).get(self.metric)
        if own is None or math.isnan(own.mean):
            return None
        if self.at_least is not None:
            return own.mean >= self.at_least
        other = rows.get(self.worse or "", {}).get(self.metric)
        if other is None or math.isnan(other.mean):
            return None
        ahead = own.mean < other.mean if self.lower else own.mean > other.mean
        if self.p is not None:
            return ahead and own.p_vs_random < self.p
        return ahead


@dataclass(frozen=True)
class Reproduction:
    """One published table and how to rerun it.

    :param kind: ``compare`` (``config``: a comparison), ``simulate`` (a simulated-student config) or ``script``
        (``config``: a bench script taking ``--out`` and ``--workers``)
    :param results: where the rerun's table lies, relative to its ``--out`` folder
    :param reader: ``summary`` (a comparison's ``summary.csv``), ``simulate`` (``cli.py simulate --json``) or
        ``table`` (a bench table of ``mean ± std (± ci95)`` cells, rows named by its first column)
    :param seeds: whether ``--seeds`` can be given
    :param options: more options of its command (a comparison's ``--teachers``/``--students``: part of a config)
    """

    name: str
    claim: str
    source: str
    minutes: str
    kind: str
    config: str
    reference: str
    results: str
    reader: str
    claims: tuple[Claim, ...]
    metric: str = "mastered_pct"
    seeds: bool = True
    options: tuple[str, ...] = ()

    def command(self, out: Path, workers: int, seeds: str | None) -> list[str]:
        """The command line that reruns it into ``out``."""
        if seeds is not None and not self.seeds:
            raise ReproduceError(f"reproduction '{self.name}' runs its own seeds: leave out --seeds")
        cli = [sys.executable, str(ROOT / "cli.py")]
        if self.kind == "compare":
            cmd = [*cli, "compare", "--config", str(ROOT / self.config), *self.options, "--out", str(out)]
        elif self.kind == "simulate":
            cmd = [*cli, "simulate", "--config", str(ROOT / self.config), "--json", str(out / self.results)]
        else:
            cmd = [sys.executable, str(ROOT / self.config), "--out", str(out)]
        return [*cmd, "--workers", str(workers), *(["--seeds", seeds] if seeds is not None else [])]


REPRODUCTIONS: dict[str, Reproduction] = {
    r.name: r
    for r in (
        Reproduction(
            name="simulated-student",
            claim="on teachDeepRL's toy student, every learning-progress teacher masters at least the cells of "
            "its reference implementation at 20k episodes, and far more than random",
            source="Portelas et al. 2019 (teachDeepRL), toy environment; figures of ../shared/reference/figures.md",
            minutes="4",
            kind="simulate",
            config="experiments/simulated_student.yaml",
            reference="results/reference/simulated_student_2d.json",
            results="simulate.json",
            reader="simulate",
            claims=(
                Claim("ALP-GMM >= teachDeepRL's 35.3% at 20k episodes", "alp-gmm", at_least=35.3),
                Claim("RIAC >= teachDeepRL's 50.0%", "riac", at_least=50.0),
                Claim("Covar-GMM >= teachDeepRL's 66.7%", "covar-gmm", at_least=66.7),
                Claim("ALP-GMM beats random (p < 0.05)", "alp-gmm", "random", p=0.05),
            ),
        ),
        Reproduction(
            name="demo",
            claim="the main job (make demo): ALP-GMM's students end ahead of random's on the test tasks' mean "
            "return after 120k steps of LunarLander-v3 with wind",
            source="Portelas et al. 2019 (teachDeepRL: ALP-GMM vs random on parametric BipedalWalker); measured "
            "here on LunarLander-v3 with wind",
            minutes="5",
            kind="compare",
            config="experiments/demo.yaml",
            reference="results/reference/demo",
            results="summary.csv",
            reader="summary",
            claims=(
                Claim("ALP-GMM's mean test return beats random's (p < 0.05)", "alp-gmm", "random", "mean_return", 0.05),
            ),
            metric="mean_return",
        ),
        Reproduction(
            name="lunar-lander",
            claim="ALP-GMM lands more test tasks (gravity, wind, turbulence) than random: learning progress beats "
            "domain randomisation when much of the space is hard",
            source="Portelas et al. 2019 (teachDeepRL: ALP-GMM vs random on parametric BipedalWalker); measured "
            "here on LunarLander-v3 with wind",
            minutes="11",
            kind="compare",
            config="experiments/lunar_lander.yaml",
            reference="results/reference/classics_lunar-lander",
            results="summary.csv",
            reader="summary",
            claims=(Claim("ALP-GMM masters more test tasks than random (p < 0.05)", "alp-gmm", "random", p=0.05),),
        ),
        Reproduction(
            name="infeasible",
            claim="on a mostly infeasible task space (LunarLander-v3 with wind, engines failed on 75% of it), "
            "learning-progress teachers spend fewer episodes on the failed engines than random and land more of "
            "the working-engine test tasks",
            source="Romac et al. 2021 (TeachMyAgent: the mostly unfeasible Stump Tracks); Portelas et al. 2019 "
            "(teachDeepRL); measured here on environments/lunar_lander.py",
            minutes="22",
            kind="compare",
            config="experiments/lunar_lander_infeasible.yaml",
            reference="results/reference/lunar_lander_infeasible",
            results="summary.csv",
            reader="summary",
            claims=(
                Claim(
                    "ALP-GMM plays fewer failed-engine tasks than random (p < 0.05)",
                    "alp-gmm",
                    "random",
                    "infeasible_pct",
                    0.05,
                    lower=True,
                ),
                Claim("ALP-GMM masters more working-engine test tasks than random (p < 0.05)", "alp-gmm", "random", p=0.05),
                Claim("ALP-GMM's mean test return beats random's (p < 0.05)", "alp-gmm", "random", "mean_return", 0.05),
            ),
            metric="infeasible_pct",
        ),
        Reproduction(
            name="spdl-point-mass",
            claim="SPDL's students learn to pass the narrow target gate; training on the target only (Default) does not",
            source="Klink et al. 2020 (SPDL), point-mass gate, Fig. 3",
            minutes="100",
            kind="compare",
            config="experiments/spdl_point_mass.yaml",
            reference="results/reference/spdl_point_mass",
            results="summary.csv",
            reader="summary",
            claims=(
                Claim("SPDL passes the target gate more often than Default", "spdl", "stages", metric="target_mastered_pct"),
                Claim("SPDL passes the target gate more often than random", "spdl", "random", metric="target_mastered_pct"),
            ),
            metric="target_mastered_pct",
        ),
        Reproduction(
            name="spdl-paper",
            claim="at the SPDL paper's own point-mass protocol (TRPO, an SPDL step every 2,048-step iteration), "
            "SPDL is the method whose students pass the narrow target gate: training on the target only (Default), "
            "ALP-GMM and random do not",
            source="Klink et al. 2020 (SPDL), point-mass gate, Fig. 3; psclklnk/spdl point_mass_experiment.py",
            minutes="210",
            kind="compare",
            config="experiments/spdl_point_mass_paper.yaml",
            reference="results/reference/spdl_point_mass_paper",
            results="summary.csv",
            reader="summary",
            claims=(
                Claim(
                    "SPDL passes the target gate more often than Default (the paper's 50 target episodes)",
                    "spdl",
                    "stages",
                    metric="protocol_success_pct",
                ),
                Claim(
                    "SPDL's discounted target return beats Default's (the paper's metric)",
                    "spdl",
                    "stages",
                    metric="protocol_return",
                ),
                Claim("SPDL passes the target gate more often than ALP-GMM", "spdl", "alp-gmm", metric="protocol_success_pct"),
                Claim("SPDL passes the target gate more often than random", "spdl", "random", metric="protocol_success_pct"),
            ),
            metric="protocol_success_pct",
            options=("--teachers", "spdl,alp-gmm,random,stages", "--students", "trpo"),
        ),
        Reproduction(
            name="kickstart",
            claim="a kickstarted student (the expert's policy as an extra loss) masters more test gates than one "
            "trained from scratch at the same budget",
            source="Schmitt et al. 2018 (kickstarting); bench/kickstart.py trains the expert first",
            minutes="60",
            kind="script",
            config="bench/kickstart.py",
            reference="results/reference/kickstart_point_mass",
            results="compare/summary.csv",
            reader="summary",
            claims=(
                Claim("kickstarted PPO beats PPO from scratch (random teacher)", "ppo-kick / random", "ppo / random"),
                Claim("kickstarted small PPO beats small PPO from scratch", "ppo-small-kick / random", "ppo-small / random"),
            ),
        ),
        Reproduction(
            name="distill",
            claim="DAgger from a privileged expert gives a sensor-only student most of the expert's return in a "
            "tenth of the steps PPO from scratch takes",
            source="Ross et al. 2011 (DAgger); privileged-teacher distillation as rsl_rl's",
            minutes="90",
            kind="script",
            config="bench/distill.py",
            reference="results/reference/distill_point_mass",
            results="summary.csv",
            reader="table",
            claims=(
                Claim(
                    "DAgger (ALP-GMM teacher) reaches 80% of the expert's return",
                    "DAgger (alp-gmm teacher)",
                    metric="return_ratio",
                    at_least=0.8,
                ),
            ),
            seeds=False,
        ),
    )
}


def reproduction(name: str) -> Reproduction:
    """:raises ReproduceError: an unknown name (the message lists the valid ones)"""
    if name not in REPRODUCTIONS:
        raise ReproduceError(f"unknown reproduction '{name}'; valid: {', '.join(REPRODUCTIONS)}")
    return REPRODUCTIONS[name]


def rerun(item: Reproduction, out: Path, workers: int, seeds: str | None) -> None:
    """Run it into ``out`` (resumable: finished runs are kept), its output streaming to the terminal.

    :raises ReproduceError: the command failed
    """
    cmd = item.command(out, workers, seeds)
    out.mkdir(parents=True, exist_ok=True)
    code = subprocess.run(cmd, cwd=ROOT, check=False).returncode
    if code != 0:
        raise ReproduceError(f"reproduction '{item.name}' failed (exit code {code}): {' '.join(cmd[1:])}")


def read_rows(item: Reproduction, path: Path) -> Rows:
    """The rows of a table (ours or the reference's) in the reproduction's format.

    :raises ReproduceError: the table is missing
    """
    if not path.exists():
        raise ReproduceError(f"no results at {path}: run the reproduction first")
    if item.reader == "simulate":
        return _simulate_rows(json.loads(path.read_text()))
    if item.reader == "table":
        return _table_rows(pd.read_csv(path))
    return _summary_rows(pd.read_csv(path))


def _summary_rows(summary: pd.DataFrame) -> Rows:
    """A comparison's ``summary.csv``: rows named by teacher (``student / teacher`` when there are several)."""
    several = summary["student"].nunique() > 1
    rows: Rows = {}
    for _, row in summary.iterrows():
        label = f"{row['student']} / {row['teacher']}" if several else str(row["teacher"])
        stats = {}
        for metric in (
            "mastered_pct",
            "mean_return",
            "target_mastered_pct",
            "protocol_return",
            "protocol_success_pct",
            "infeasible_pct",
        ):
            if f"{metric}_mean" in row and not pd.isna(row[f"{metric}_mean"]):
                ci = row.get(f"{metric}_ci95", math.nan)
                p = row.get(f"{metric}_p_vs_random", math.nan)
                mean, std = float(row[f"{metric}_mean"]), float(row[f"{metric}_std"])
                stats[metric] = Stat(mean, std, float(ci), int(row["seeds"]), float(p))
        rows[label] = stats
    return rows


def _simulate_rows(results: dict) -> Rows:
    """``cli.py simulate --json``: each teacher's % of cells mastered at the last checkpoint."""
    finals = {
        name: np.array(t["mastered"][max(t["mastered"], key=int)], dtype=float) for name, t in results["teachers"].items()
    }
    rows: Rows = {}
    for name, values in finals.items():
        mean, std, ci = mean_ci(values)
        p = welch_p(values, finals["random"]) if "random" in finals and name != "random" else math.nan
        rows[name] = {"mastered_pct": Stat(mean, std, ci, len(values), p)}
    return rows


_CELL = re.compile(r"^\s*(-?[\d.]+)\s*±\s*([\d.]+)\s*\(±\s*([\d.]+)\)")


def _table_rows(table: pd.DataFrame) -> Rows:
    """A bench table: cells ``mean ± std (± ci95)`` (mastered %, return), and the return as a share of the
    expert's."""
    columns = {"mastered %": "mastered_pct", "test return": "mean_return"}
    rows: Rows = {}
    for _, row in table.iterrows():
        stats = {}
        for column, metric in columns.items():
            match = _CELL.match(str(row.get(column, "")))
            if match:
                mean, std, ci95 = (float(v) for v in match.groups())
                stats[metric] = Stat(mean, std, ci95, seeds=0)
        ratio = pd.to_numeric(row.get("return / expert's"), errors="coerce")
        if not pd.isna(ratio):
            stats["return_ratio"] = Stat(float(ratio), math.nan, math.nan, 0)
        rows[str(row.iloc[0])] = stats
    return rows


@dataclass(frozen=True)
class RowCheck:
    """One row of the rerun beside the reference's."""

    label: str
    ours: Stat | None
    reference: Stat | None

    @property
    def inside(self) -> bool | None:
        """Whether our mean lies in the reference's 95% interval (``None``: no interval to test)."""
        if self.ours is None or self.reference is None or math.isnan(self.reference.ci95):
            return None
        return abs(self.ours.mean - self.reference.mean) <= self.reference.ci95


def check(item: Reproduction, out: Path) -> tuple[list[RowCheck], list[tuple[Claim, bool | None, bool | None]]]:
    """Our rerun in ``out`` against the committed reference, row by row on the reproduction's metric, and each
    claim on both (agrees: ``True``).

    :raises ReproduceError: our results or the reference are missing
    """
    ours = read_rows(item, out / item.results)
    reference_path = ROOT / item.reference / ("" if item.reader == "simulate" else "summary.csv")
    if not reference_path.exists():
        raise ReproduceError(f"no committed reference at {reference_path}: reproduce runs from a checkout of teachrl")
    reference = read_rows(item, reference_path)
    labels = list(dict.fromkeys([*reference, *ours]))
    rows = [
        RowCheck(label, ours.get(label, {}).get(item.metric), reference.get(label, {}).get(item.metric)) for label in labels
    ]
    claims = [(claim, claim.holds(ours), claim.holds(reference)) for claim in item.claims]
    return rows, claims
