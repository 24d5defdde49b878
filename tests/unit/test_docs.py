"""The README and docs/ explain the product from the repository alone: every link resolves, the README speaks of
"the AWS sample" rather than "the seed", and its figures live in the generated docs/figures.md."""

from __future__ import annotations

import re

from fraudstream.paths import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_every_relative_link_of_the_readme_and_docs_names_a_file_of_the_repository():
    broken = [(page.name, target) for page in PAGES for target, _ in LINK.findall(page.read_text())
              if not target.startswith(("http://", "https://")) and not (page.parent / target).exists()]
    assert broken == []


def test_the_readme_says_the_aws_sample_not_the_seed():
    words = re.findall(r"[\w-]*seed[\w-]*", (REPO / "README.md").read_text(), flags=re.IGNORECASE)
    # Only names a user types: the scenario file make demo writes, the flag, the scale.
    assert set(words) <= {"seed_scenario", "check-seed-outcome", "seed"}
    assert "SCALE=seed" in (REPO / "README.md").read_text()
    assert len([w for w in words if w == "seed"]) == (REPO / "README.md").read_text().count("SCALE=seed")


def test_the_readme_links_the_generated_figures_and_the_docs_cite_no_file_outside_the_repository():
    readme = (REPO / "README.md").read_text()
    assert "docs/figures.md" in readme and "make figures" in readme
    for page in PAGES:
        assert "../shared" not in page.read_text() and "DESIGN.md" not in page.read_text(), page.name
