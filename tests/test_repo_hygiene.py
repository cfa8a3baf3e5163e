"""What ships is about the product: no paths of one machine, no words about how the code was
written, and no links or citations that point outside the repository.

Every tracked file is scanned (text as text; binary files by their printable runs, so a path
inside a SavedModel's protobuf is found too; zip archives such as ``.keras`` member by member).
A hit names ``file:line`` and the rule it breaks.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass
from typing import Iterable, List, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (rule, pattern). Paths: the home, work and temp directories of a build machine.
RULES: Tuple[Tuple[str, "re.Pattern[str]"], ...] = (
    ("machine path", re.compile(
        r"(?<![\w.~-])/(?:work|root|scratch|workspace)(?:/|\b)"
        r"|(?<![\w.~-])/(?:home|Users)/[\w.-]+"
        r"|(?<![\w.~-])/(?:tmp|var/tmp|private/var/folders|var/folders)/[\w.-]+/")),
    ("build trace", re.compile(r"\bsessions?[ _-]?\d+", re.IGNORECASE)),
    ("build trace", re.compile(r"\blanes?\b|\blane\w*\.sh\b", re.IGNORECASE)),
    ("build trace", re.compile(r"\bissues?[ _-]?#?\d+\b|\bthe issue's\b|\bthe user asked\b",
                               re.IGNORECASE)),
    # "helper" as a worker on the code (code's own helpers, helper threads, pass)
    ("build trace", re.compile(r"\b(?:another|other|each|parallel|sub)[ -]helpers?\b"
                               r"|\bhelpers?[ -](?:session|agent)s?\b", re.IGNORECASE)),
    ("outside reference", re.compile(r"\.\./shared\b|\bSPEC(?:\.md| ?§)|\bENCODERS_EXTRA\b")),
)
# Markdown links ``[text](target)`` whose target climbs out of the repository are checked
# against the file system (see ``_escaping_links``).
_MD_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)")
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{6,}")

# The only files allowed to hold these patterns: this test names them to find them.
ALLOWED = {"tests/test_repo_hygiene.py"}


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.text.strip()[:160]}"


def scan_text(path: str, text: str) -> List[Hit]:
    """The rule violations in one file's text; ``path`` is repository-relative."""
    hits = []
    for number, line in enumerate(text.splitlines(), start=1):
        for rule, pattern in RULES:
            if pattern.search(line):
                hits.append(Hit(path, number, rule, line))
        if path.endswith(".md"):
            for target in _escaping_links(path, line):
                hits.append(Hit(path, number, "link outside the repository", target))
    return hits


def _escaping_links(path: str, line: str) -> Iterable[str]:
    base = os.path.dirname(os.path.join(ROOT, path))
    for target in _MD_LINK.findall(line):
        if target.startswith("/"):
            yield target
        elif os.path.relpath(os.path.normpath(os.path.join(base, target)), ROOT).startswith(".."):
            yield target


def scan_bytes(path: str, data: bytes) -> List[Hit]:
    """Text files as text; zip archives member by member; other binaries by printable runs."""
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [hit for name in archive.namelist()
                    for hit in scan_bytes(f"{path}!{name}", archive.read(name))]
    if b"\0" not in data:
        try:
            return scan_text(path, data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    runs = "\n".join(m.group().decode("ascii") for m in _PRINTABLE_RUN.finditer(data))
    return [Hit(h.path, 0, h.rule, h.text) for h in scan_text(path + " (binary)", runs)]


def tracked_files() -> List[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:  # e.g. an sdist without .git
        pytest.skip(f"not a git checkout ({e}): the tracked files are unknown")
    return [p for p in out.decode().split("\0") if p]


def scan_repository() -> List[Hit]:
    hits = []
    for path in tracked_files():
        full = os.path.join(ROOT, path)
        if path in ALLOWED or not os.path.isfile(full):  # deleted in the working tree
            continue
        with open(full, "rb") as f:
            hits.extend(scan_bytes(path, f.read()))
    return hits


# ----- the scanner itself ----------------------------------------------------------------
@pytest.mark.parametrize("line, rule", [
    ("cd /work/main && make test", "machine path"),
    ("see /root/.cache/pip for the wheels", "machine path"),
    ("written under /home/alice/runs", "machine path"),
    ("outputs in /tmp/h/run1/metrics.json", "machine path"),
    ("Re-run with session 11's code", "build trace"),
    ("see session14/README", "build trace"),
    ("seeds run in parallel lanes", "build trace"),
    ("bash lane3.sh", "build trace"),
    ("figures quoted from issue 12", "build trace"),
    ("Done-when checklist (Issue #10)", "build trace"),
    ("CSP-NCE-BL (the issue's NCE)", "build trace"),
    ("The user asked for tensorflow-addons", "build trace"),
    ("written by another helper", "build trace"),
    ("as the helper session found", "build trace"),
    ("formulas in ../shared/csp/SPEC.md", "outside reference"),
    ("(SPEC §2.8)", "outside reference"),
    ("(ENCODERS_EXTRA §5)", "outside reference"),
])
def test_scanner_flags(line, rule):
    hits = scan_text("docs/x.md", f"fine first line\n{line}\n")
    assert [(h.line, h.rule) for h in hits] == [(2, rule)], hits


@pytest.mark.parametrize("line", [
    "from tensorflow/tfx/issues/7733 upstream",
    "a session-scoped fixture; tf.compat.v1.Session",
    "pipeline_test_helpers.py and trainer_helper.py; the helpers every command shares",
    "a helper thread sends SIGTERM",
    "write to tmp_path / 'runs' or $TMPDIR",
    "docs/reference.md §2.8, EXECUTOR_SPEC = spec",
    "csp-tf ingest --manifest /data/obs.csv --out gs://b/root",
    "[architecture](architecture.md) and [code](../csp_tf/losses.py)",
])
def test_scanner_passes(line):
    assert scan_text("docs/x.md", line) == []


def test_scanner_flags_a_link_that_leaves_the_repository():
    hits = scan_text("docs/x.md", "see [the spec](../../shared/csp/SPEC.md)")
    assert {h.rule for h in hits} == {"outside reference", "link outside the repository"}


def test_scanner_reads_files_binaries_and_archives(tmp_path):
    """A line added to a real file is reported with its file and line; a path inside a binary
    or inside a zip member (a .keras file) is found too."""
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nclean text\nsee /work/main/runs/final for the figures\n")
    assert [str(h) for h in scan_bytes("notes.md", doc.read_bytes())] == [
        "notes.md:4: machine path: see /work/main/runs/final for the figures"]
    blob = b"\x08\x01\x12\x00" + b"/root/checkout/assets/vocab.txt" + b"\x00\x1a"
    assert [h.rule for h in scan_bytes("saved_model.pb", blob)] == ["machine path"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", '{"name": "m"}')
        z.writestr("metadata.json", '{"source": "/home/bob/x"}')
    hits = scan_bytes("m.keras", archive.getvalue())
    assert [(h.path, h.line, h.rule) for h in hits] == [("m.keras!metadata.json", 1, "machine path")]


# ----- the repository ---------------------------------------------------------------------
def test_no_machine_paths_build_traces_or_outside_references():
    hits = scan_repository()
    assert not hits, f"{len(hits)} lines to fix:\n" + "\n".join(map(str, hits))


_CITATION = re.compile(r"reference\.md\)?[^)\n]*")
_SECTION = re.compile(r"§(\d+(?:\.\d+)*)")


def test_every_cited_section_of_the_method_reference_exists():
    """``docs/reference.md §N.M`` anywhere in the repository names a numbered heading there."""
    with open(os.path.join(ROOT, "docs", "reference.md")) as f:
        headings = set(re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", f.read(), re.MULTILINE))
    assert {"1", "2.8", "5.1", "13.1.3", "14"} <= headings
    missing = []
    for path in tracked_files():
        full = os.path.join(ROOT, path)
        if path in ALLOWED or not os.path.isfile(full) or not path.endswith((".py", ".md", ".sh")):
            continue
        with open(full, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                for chunk in _CITATION.findall(line):
                    missing += [f"{path}:{number}: §{n}" for n in _SECTION.findall(chunk)
                                if n not in headings]
    assert not missing, "cited sections that docs/reference.md lacks:\n" + "\n".join(missing)
