"""The docs: the site builds strictly, the README's links and jobs table hold, every command's
help has an example, and nothing points at files users' clones do not have."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from vectorflow.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

import cli_reference  # noqa: E402
import jobs_table  # noqa: E402
import settings_reference  # noqa: E402

PAGES = ("index", "getting-started", "datasets", "signals", "playbooks-and-backtests",
         "exchanges", "operations", "configuration", "internals", "cli")  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with `mkdocs build --strict` into a temp folder."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_site_builds_strictly_with_every_generated_block_filled(site):
    for page in PAGES:
        html = (site / ("" if page == "index" else page) / "index.html").read_text()
        assert "<!-- generated:" not in html, page
    configuration = (site / "configuration" / "index.html").read_text()
    assert "VECTORFLOW_WORKERS" in configuration and "breaker_cooldown_seconds" in configuration
    cli = (site / "cli" / "index.html").read_text()
    for prog, _ in cli_reference.commands():
        assert prog in cli, prog
    datasets = (site / "datasets" / "index.html").read_text()
    assert "funding_annualized" in datasets and "oos_sharpe_ratio" in datasets


class _Undescribed(BaseModel):
    workers: int = Field(default=4, description="Units at once.")
    flush_rows: int = 200_000


def test_a_settings_field_without_description_fails_the_reference():
    section = settings_reference.Section("", _Undescribed, "", ())
    with pytest.raises(ValueError, match="flush_rows has no description"):
        settings_reference.section_table(section)


def test_settings_reference_shows_defaults_bounds_and_environment():
    table = settings_reference.section_table(next(settings_reference.sections()))
    row = next(line for line in table.splitlines() if line.startswith("| `workers`"))
    assert row.split(" | ")[1:4] == ["integer (≥ 1, ≤ 64)", "`4`", "`VECTORFLOW_WORKERS`"]


def test_settings_reference_lists_the_names_the_loader_reads(tmp_path):
    from vectorflow.config import load_settings

    tables = {s.name: settings_reference.section_table(s) for s in settings_reference.sections()}
    row = next(r for r in tables["resilience"].splitlines() if r.startswith("| `time_scale`"))
    names = [n.strip("` ") for n in row.split(" | ")[3].split(",")]
    assert names == ["VECTORFLOW_RESILIENCE__TIME_SCALE", "VECTORFLOW_TIME_SCALE"]
    for name in names:
        assert load_settings(tmp_path, env={name: "0.5"}).resilience.time_scale == 0.5, name
    row = next(r for r in tables["exchanges.<name>"].splitlines() if r.startswith("| `url`"))
    assert row.split(" | ")[3] == ("`VECTORFLOW_EXCHANGES__<NAME>__URL`, `VECTORFLOW_BINANCE_URL`, "
                                   "`VECTORFLOW_BYBIT_URL`")


def _every_command() -> list[list[str]]:
    """The argv of every command and subcommand, e.g. ["secrets", "set"]."""
    return [prog.split()[1:] for prog, _ in cli_reference.commands(build_parser())]


@pytest.mark.parametrize("argv", _every_command(), ids=" ".join)
def test_every_command_help_has_an_example(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    example = out.split("example:\n", 1)
    assert len(example) == 2, f"vectorflow {' '.join(argv)} --help shows no example"
    assert f"vectorflow {' '.join(argv)}" in example[1]


def test_readme_links_point_at_files_in_the_repository():
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert len(targets) >= 10
    for target in targets:
        assert "://" not in target, f"README links outside the repository: {target}"
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README links to {target}, which is not in the repository"


def test_readme_starts_with_the_two_setup_commands_ci_runs():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    demo, tests = blocks[:2]
    assert demo == ("python3 -m venv .venv && .venv/bin/pip install -q -c requirements.lock -e . "
                    "&& .venv/bin/vectorflow demo")
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_jobs_table_is_prefect_yaml():
    assert jobs_table.render() in README
    for name in ("ingest-candles", "snapshot-orderbooks", "refresh-derivatives", "nightly"):
        assert f"| `{name}` |" in README


def test_readme_stays_short():
    assert len(README.splitlines()) < 200


#: Notes users' clones do not have: the code and docs must not send readers there.
OUTSIDE = re.compile(r"SIGNALS\.md|EXCHANGES\.md|PLAYBOOKS_AND_BACKTESTS\.md|ARCHITECTURE\.md|"
                     r"PREFECT\.md|STYLE\.md|shared/design")


def test_nothing_points_at_design_notes_outside_the_repository():
    files = [ROOT / "README.md", ROOT / "prefect.yaml", ROOT / "data" / "README.md"]
    for folder in ("docs", "vectorflow", "flows", "tasks", "tests", "benchmarks"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md")]
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files if path != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not offenders, offenders


def test_signal_columns_and_simulator_faults_are_documented():
    from vectorflow.signals.compute import STORED_COLUMNS, TRAP_EVENT_COLUMNS
    from vectorflow.sim.faults import KINDS
    from vectorflow.sim.ws import WS_KINDS

    signals = (ROOT / "docs" / "signals.md").read_text(encoding="utf-8")
    exchanges = (ROOT / "docs" / "exchanges.md").read_text(encoding="utf-8")
    assert [c for c in STORED_COLUMNS + TRAP_EVENT_COLUMNS if f"`{c}`" not in signals] == []
    assert [k for k in KINDS + WS_KINDS if f"`{k}`" not in exchanges] == []
