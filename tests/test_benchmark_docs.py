"""docs/benchmarks.md quotes recorded benchmark runs, not numbers typed by hand.

Each section of the page (a `## ` heading, with its `### ` subsections) names the files its numbers come
from (`benchmarks/results/NAME.txt`, written by `python benchmarks/bench_*.py ... --record NAME`).  Then:

- every markdown table line of the section is a line of one of those files, verbatim;
- every number in the section's prose that reads as a measurement -- a decimal number, or a number followed by
  x, ns, ms, s, %, /s, GFLOP/s, "per second", hours or days -- is a number of one of those files
  (commands and identifiers in backticks are not prose; target thresholds are listed in TARGETS below);
- the command that a file recorded (less `--record NAME`) is named in the section.

The section "The main job" is not a benchmark run and is not checked.  Paragraphs of the other docs pages that
name a recorded file are held to the same rule for their numbers.
"""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "benchmarks.md")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
UNCHECKED_SECTIONS = {"The main job"}
# Numbers in the prose that are targets or thresholds, not measurements: the phrases are removed before the
# numbers are read, and each must still occur in the page (a stale entry fails).
TARGETS = [
    "within 3x of the streaming floor",          # the Hawkes issue's target
    "within 2x of faiss",                        # the dense-retrieval issue's target
    "at least 100x rank_bm25",                   # the BM25 issue's target
    "floor of 2x",                               # the ranker issue's floor
    "targets of 3x (training) and 5x (scoring)",  # the earlier ranker issue's targets
    "5x PyTorch",                                # the same scoring target, restated
    "5x scoring target",                         # and again
    "k1 = 1.2, b = 0.75",                        # BM25's parameters
]

FILE_REF = re.compile(r"benchmarks/results/[A-Za-z0-9_.-]+\.txt")
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)\d+(?:,\d{3})*(?:\.\d+)*")
UNIT = re.compile(r"(?:x(?![\w])|\s?(?:ns|ms|s|hours?|days?|min|minutes|GFLOP/s)\b|%|\s?/\s?s\b"
                  r"|(?:\s[A-Za-z-]+){0,2}\s(?:per second|/ s)\b)")
NOT_NUMBERS = [re.compile(p) for p in (r"\b\d{4}-\d{2}-\d{2}\b",      # dates
                                       r"\d+(?:\.\d+)?e[-+]?\d+",      # 1e-6: tolerances
                                       r"\b\d+\^\d+")]                 # 10^6: sizes


def sections(text):
    """{heading: section text} for the `## ` sections (each with its `### ` subsections), and the text before
    the first one under ''."""
    out, name, lines = {}, "", []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            out[name] = "\n".join(lines)
            name, lines = line[3:].strip(), []
        else:
            lines.append(line)
    out[name] = "\n".join(lines)
    return out


def _unfenced(text):
    """The lines of the text outside its ``` code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def table_lines(text):
    return [line for line in _unfenced(text) if line.startswith("|")]


def prose(text):
    """The section less its tables, code blocks, inline code and link targets."""
    keep = [line for line in _unfenced(text) if not line.startswith("|")]
    s = "\n".join(keep)
    s = re.sub(r"`[^`]*`", " ", s)
    s = re.sub(r"\]\([^)]*\)", "]", s)
    return s


def measurements(text, targets=TARGETS):
    """The measurement numbers of a piece of prose, as written (e.g. '2.39', '4,927')."""
    s = " ".join(text.split())
    for phrase in targets:
        s = s.replace(phrase, " ")
    for pattern in NOT_NUMBERS:
        s = pattern.sub(" ", s)
    found = []
    matches = list(NUMBER.finditer(s))
    for i, m in enumerate(matches):
        number = m.group(0)
        if number.count(".") > 1:  # a version: 0.8.0.2
            continue
        after = s[m.end():]
        if after[:1] in "-–" and i + 1 < len(matches) and matches[i + 1].start() == m.end() + 1:
            after = s[matches[i + 1].end():]  # a range, 24-47x: the unit of its upper end
        if "." in number or UNIT.match(after):
            found.append(number)
    return found


def file_numbers(path):
    with open(path, encoding="utf-8") as f:
        return set(NUMBER.findall(f.read()))


def file_lines(path):
    with open(path, encoding="utf-8") as f:
        return set(f.read().splitlines())


def recorded_files(text):
    refs = sorted(set(FILE_REF.findall(text)))
    return refs, [os.path.join(ROOT, r) for r in refs]


def problems(name, text):
    """What in one section does not come from its recorded files (an empty list when all does)."""
    refs, paths = recorded_files(text)
    if not refs:
        return [f"{name}: names no recorded file (benchmarks/results/NAME.txt)"]
    missing = [r for r, p in zip(refs, paths) if not os.path.isfile(p)]
    if missing:
        return [f"{name}: recorded file {r} does not exist" for r in missing]
    lines, numbers = set(), set()
    for p in paths:
        lines |= file_lines(p)
        numbers |= file_numbers(p)
    out = [f"{name}: table line not in {', '.join(refs)}: {line}" for line in table_lines(text) if line not in lines]
    out += [f"{name}: number {n} of the prose is not in {', '.join(refs)}" for n in measurements(prose(text))
            if n not in numbers]
    flat = " ".join(text.split())
    for r, p in zip(refs, paths):
        with open(p, encoding="utf-8") as f:
            command = f.readline().removeprefix("command: ").strip()
        command = re.sub(r"\s--record(?:=|\s)\S+", "", command)
        if command not in flat:
            out.append(f"{name}: the command of {r} ({command}) is not named in the section")
    return out


def page_sections():
    with open(PAGE, encoding="utf-8") as f:
        return sections(f.read())


def test_page_has_its_sections():
    found = page_sections()
    assert "The main job" in found
    assert len([n for n in found if n and n not in UNCHECKED_SECTIONS]) >= 7, list(found)


@pytest.mark.parametrize("name", [n for n in page_sections() if n and n not in UNCHECKED_SECTIONS])
def test_section_quotes_its_recorded_runs(name):
    assert problems(name, page_sections()[name]) == []


def test_text_before_the_first_section_has_no_measurements():
    assert measurements(prose(page_sections()[""])) == []


def test_target_phrases_are_in_use():
    with open(PAGE, encoding="utf-8") as f:
        flat = " ".join(f.read().split())
    assert [t for t in TARGETS if t not in flat] == []


def test_one_changed_digit_is_caught():
    """Changing one digit of a table cell, or of a prose number, makes the section fail."""
    found = page_sections()
    name = next(n for n in found if n and n not in UNCHECKED_SECTIONS)
    text = found[name]
    row = next(line for line in table_lines(text) if re.search(r"\d", line) and not line.startswith("|---"))
    cell = re.search(r"\d", row)
    digit = str((int(cell.group(0)) + 1) % 10)
    changed = text.replace(row, row[:cell.start()] + digit + row[cell.end():], 1)
    assert problems(name, text) == [] and problems(name, changed) != []
    numbers = measurements(prose(text))
    assert numbers, f"{name} quotes no measurement in its prose"
    # a number written with one more digit cannot be in the file by accident
    changed = prose(text).replace(numbers[0], numbers[0] + "7", 1)
    refs, paths = recorded_files(text)
    assert any(n not in set().union(*map(file_numbers, paths)) for n in measurements(changed))


def test_measurement_rule():
    text = ("lamp is 2.39x faster, 24-47x, 1.5 ns per event, 235 texts per second, 214 s, 13,168 queries / s; "
            "K = 10 and 100 types, 2 cores, float32, AVX-512, top-10, tick 0.8.0.2, 1e-6, N = 10^6, 2026-12-05, "
            "256 x 4,096 scores, within 2x of faiss")
    assert measurements(text) == ["2.39", "24", "47", "1.5", "235", "214", "13,168"]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(RESULTS, "*.txt"))) or [None],
                         ids=lambda p: os.path.basename(p) if p else "none")
def test_recorded_file_header(path):
    if path is None:
        pytest.fail("no recorded benchmark output in benchmarks/results")
    with open(path, encoding="utf-8") as f:
        head = [f.readline().rstrip("\n") for _ in range(4)]
    assert head[0].startswith("command: "), head[0]
    scripts = re.findall(r"\bbenchmarks/(bench_\w+\.py)\b", head[0])
    assert scripts and os.path.isfile(os.path.join(ROOT, "benchmarks", scripts[0])), head[0]
    name = os.path.basename(path)[:-len(".txt")]
    assert re.search(rf"--record(?:=|\s){re.escape(name)}(?:\.txt)?$", head[0]), head[0]
    assert re.fullmatch(r"date: \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", head[1]), head[1]
    assert re.fullmatch(r"commit: [0-9a-f]{7,40}( \(with uncommitted changes\))?", head[2]), head[2]
    assert head[3].startswith("machine: "), head[3]


def test_every_recorded_file_is_quoted():
    with open(PAGE, encoding="utf-8") as f:
        named = set(FILE_REF.findall(f.read()))
    present = {os.path.relpath(p, ROOT).replace(os.sep, "/") for p in glob.glob(os.path.join(RESULTS, "*.txt"))}
    assert present - named == set()


def other_pages():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        if path == PAGE:
            continue
        with open(path, encoding="utf-8") as f:
            for para in re.split(r"\n\s*\n", f.read()):
                if FILE_REF.search(para):
                    out.append((os.path.basename(path), para))
    return out


@pytest.mark.parametrize("page,para", other_pages() or [(None, None)])
def test_other_pages_quote_recorded_runs(page, para):
    if page is None:
        pytest.skip("no other page names a recorded file")
    refs, paths = recorded_files(para)
    assert all(os.path.isfile(p) for p in paths), refs
    numbers = set().union(*map(file_numbers, paths))
    assert [n for n in measurements(prose(para)) if n not in numbers] == [], (page, refs)
