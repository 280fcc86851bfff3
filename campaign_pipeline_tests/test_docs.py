"""The docs describe the code as it is: settings and defaults, links, and no history narration.

docs/anomaly_detection.md's settings table is the reference users read for every
`DetectionSettings` field; these tests keep it from drifting from the code. Its values are
read with the same parser as `--set NAME=VALUE`, so a value that parses but differs from the
default (0.1 for 0.05, false for true) fails, and so does a value that does not parse.
"""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from campaign_pipeline.detection.settings import DetectionSettings, settings_from_overrides

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DETECTION_DOC = REPO / "docs" / "anomaly_detection.md"
MARKDOWN = [README, *sorted((REPO / "docs").glob("*.md"))]

# Phrases that narrate the work's history instead of describing the code. "stop N" is how the
# project's closing notes number its stages, so it never describes code; "step N" is history
# after until/since/before/after (a bare "step 2" can be a time step or a numbered list item).
DOC_HISTORY = [
    r"\bstops?[- ]\d+",
    r"\b(?:until|since|before|after|as of) (?:stop|step)s?\b",
    r"\bpreviously\b",
    r"\bno longer\b",
    r"\bnow (?:fixed|tested|correct)\b",
    r"\bused to (?:be|read|give|flag)\b",
    r"\b(?:the|an) earlier (?:version|code|commit)\b",
    r"\bfirst version\b",
]
CODE_HISTORY = [r"\bstops?[- ]\d+", r"\b(?:until|since) (?:stop|step)s?\b"]
CODE_DIRS = ["campaign_pipeline", "campaign_pipeline_tests", "scripts"]


def settings_rows(text: str) -> list[tuple[str, str]]:
    """(name, value) of each row of the tables in the doc's "## Settings" section, from
    rows of the form | `name` | `value` | why |."""
    section = re.split(r"(?m)^## Settings$", text, maxsplit=1)[1]
    section = re.split(r"(?m)^## ", section, maxsplit=1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"settings row needs 3 cells (no '|' in the text): {line}"
        name, value = cells[0].strip("`"), cells[1]
        assert value.startswith("`") and value.endswith("`"), f"value not in backticks: {line}"
        rows.append((name, value.strip("`")))
    return rows


def test_settings_table_lists_every_detection_setting_with_its_current_default():
    rows = settings_rows(DETECTION_DOC.read_text())
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a setting is listed twice"
    fields_ = {f.name for f in fields(DetectionSettings)}
    assert set(names) == fields_, (
        f"missing from the doc: {sorted(fields_ - set(names))}; "
        f"not settings: {sorted(set(names) - fields_)}"
    )
    defaults = DetectionSettings()
    wrong = []
    for name, value in rows:
        try:
            documented = getattr(settings_from_overrides([f"{name}={value}"]), name)
        except ValueError as error:
            wrong.append(f"{name}: {error}")
            continue
        if documented != getattr(defaults, name):
            wrong.append(f"{name}: doc {value!r}, code {getattr(defaults, name)!r}")
    assert not wrong, "\n".join(wrong)


def test_settings_rows_parser_reads_the_documented_shape():
    # the parser must not silently skip a row it cannot read
    text = "x\n## Settings\n| `fdr` | `0.1` | why |\n| `a` | b |\n## Next\n| `z` | `1` | y |\n"
    with pytest.raises(AssertionError, match="3 cells"):
        settings_rows(text)
    rows = settings_rows("## Settings\n| `fdr` | `0.1` | a reason |\n## Next\n")
    assert rows == [("fdr", "0.1")]
    assert settings_from_overrides([f"{n}={v}" for n, v in rows]).fdr != DetectionSettings().fdr


def _history_hits(paths, patterns) -> list[str]:
    hits = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for pattern in patterns:
                if re.search(pattern, line, flags=re.IGNORECASE):
                    hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    return hits


def test_readme_and_docs_do_not_narrate_the_work_history():
    hits = _history_hits(MARKDOWN, DOC_HISTORY)
    assert not hits, "describe the project as it is (history goes in commits):\n" + "\n".join(hits)


def test_code_comments_and_tests_do_not_number_the_work_history():
    # this module is left out: its examples of history phrases are the patterns' test data
    paths = [
        p
        for d in CODE_DIRS
        for p in sorted((REPO / d).rglob("*.py"))
        if p != Path(__file__).resolve()
    ]
    hits = _history_hits(paths, CODE_HISTORY)
    assert not hits, "describe the code as it is (history goes in commits):\n" + "\n".join(hits)


def test_history_patterns_catch_the_phrases_they_are_for():
    said = [
        "until stop 18 the whole series chose the scale",
        "the stop-16 heuristic",
        "at the stop-12 to stop-15 defaults",
        "Since step 3 the family counts every test",
        "this was previously a traceback",
        "a switch given a typo is no longer off",
    ]
    for line in said:
        assert any(re.search(p, line, flags=re.IGNORECASE) for p in DOC_HISTORY), line
    fine = ["BAD / Stop / Reallocate", "the old level's median", "each step 2 reports"]
    for line in fine:
        assert not any(re.search(p, line, flags=re.IGNORECASE) for p in DOC_HISTORY), line


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_in_readme_and_docs_resolve():
    broken = []
    for path in MARKDOWN:
        text = path.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
                continue
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
                if anchor not in {github_anchor(h) for h in headings}:
                    broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
    assert github_anchor("Series benchmark (synthetic, labelled)") == (
        "series-benchmark-synthetic-labelled"
    )


def test_readme_starts_with_the_two_set_up_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert [b.strip() for b in blocks[:2]] == [
        "scripts/setup.sh && .venv/bin/campaign-pipeline run",
        "scripts/setup.sh && scripts/test.sh",
    ]
