"""docs/configuration.md is generated from the typed schema and must match it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cofi_sweep.core.config import CofiConfig
from cofi_sweep.sweep.config_reference import main, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_page_is_the_schema() -> None:
    assert main(["--check", str(PAGE)]) == 0, (
        "docs/configuration.md is out of date: python -m cofi_sweep.sweep.config_reference "
        "> docs/configuration.md")


def test_every_setting_has_a_row_with_its_default() -> None:
    text = render()
    for f in dataclasses.fields(CofiConfig):
        assert f"| `job.cofi.{f.name}` |" in text
    assert '| `job.cofi.shape_multiple` | int | `8` |' in text
    assert '| `scheduler.grace_period` |' in text and '| `job.data.source` |' in text


def test_a_changed_page_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(render().replace("`8`", "`16`", 1))
    assert main(["--check", str(page)]) == 1
