"""Reading a study file safely: bounded in size, depth and aliases, every error one line.

A study file is untrusted input: it is read with a size limit, refused when it holds NUL or
control characters, parsed by a YAML loader that takes no aliases (a "billion laughs" file
cannot expand) and no nesting deeper than `MAX_DEPTH`, then validated as a `StudySpec`,
its runs counted (`feasibility.count_planned`), expanded (`expand.check_study`) and checked
against the data's sizes and the machine's memory (`feasibility.plan_problems`).
Each failure is a `SpecError` of one line per problem, ``FILE: line N: field: reason``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mnistlab.errors import SpecError
from mnistlab.studies.expand import check_study, study_configs
from mnistlab.studies.feasibility import DEFAULT_MAX_RUNS, plan_problems, run_count_problems
from mnistlab.studies.spec import (
    LineOf,
    Loc,
    StudySpec,
    format_loc,
    problems_error,
    validation_problems,
)

MAX_STUDY_BYTES = 1_000_000  # 1 MB: the largest study shipped is a few kB
MAX_DEPTH = 32  # nested mappings and lists; a study needs about 6
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF and CR are allowed


class _StudyLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with bounded nesting."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a study; write the value out", mark
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class LineIndex:
    """Field locations -> line numbers, from the composed YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, loc: Loc) -> int | None:
        """1-based line of the deepest node `loc` reaches; None when it reaches none."""
        node, found = self.root, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if str(k.value) == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if 0 <= part < len(node.value) else None
            else:
                node = None
            if node is None:
                break
            found = node
        return None if found is None else found.start_mark.line + 1


def _duplicate_keys(node: yaml.Node | None, loc: Loc = ()) -> list[str]:
    """Keys given twice in one mapping (YAML would silently keep the last), with their lines."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name, line = str(key.value), key.start_mark.line + 1
            if name in seen:
                where = format_loc((*loc, name))
                problems.append(
                    f"line {line}: {where}: key given twice (first on line {seen[name]})"
                )
            seen.setdefault(name, line)
            problems += _duplicate_keys(value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, i))
    return problems


def _check_characters(text: str, source: str) -> None:
    """Refuse NUL and control characters, naming the first one's line."""
    found = _CONTROL.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        code = f"U+{ord(found.group()):04X}"
        raise SpecError(f"{source}: line {line}: control character {code} is not allowed")


def read_yaml(text: str, source: str) -> tuple[Any, LineIndex]:
    """Parse YAML safely, keeping the node tree for line numbers; any failure is one line."""
    _check_characters(text, source)
    loader = _StudyLoader(text)
    try:
        node = loader.get_single_node()
        lines = LineIndex(node)
        duplicates = _duplicate_keys(node)
        if duplicates:
            raise SpecError("\n".join(f"{source}: {d}" for d in duplicates))
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "unreadable"
        raise SpecError(f"{source}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(f"{source}: invalid YAML: {problem}") from None
    except RecursionError:
        raise SpecError(f"{source}: invalid YAML: nested too deeply to read") from None
    finally:
        loader.dispose()
    return data, lines


def parse_study(text: str, source: str = "<study>", max_runs: int = DEFAULT_MAX_RUNS) -> StudySpec:
    """Read a study from YAML text and check it completely: what `run` would refuse.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        The name errors start with, usually the file's path.
    max_runs : int
        More runs than this (counted before expanding) is an error.

    Returns
    -------
    StudySpec
        Valid: every field path exists, every run it expands to is a valid `RunConfig`
        whose data sizes, layer shapes, feature steps and memory fit (`feasibility`), and
        every analysis's options are valid.

    Raises
    ------
    SpecError
        One line per problem (``source: line N: field.path: message``).
    """
    data, lines = read_yaml(text, source)
    if data is None:
        raise SpecError(f"{source}: the study is empty; it needs at least a name")
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SpecError(
            f"{source}: line 1: a study is a mapping (name: ..., grid: ...), got a {kind}"
        )
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise problems_error(validation_problems(exc), source, lines.line) from None
    except RecursionError:
        raise SpecError(f"{source}: the study is nested too deeply to validate") from None
    verify_study(spec, source, max_runs, lines.line)
    return spec


def verify_study(
    spec: StudySpec, source: str, max_runs: int = DEFAULT_MAX_RUNS, lines: LineOf | None = None
) -> None:
    """Every check `run` makes before training, on a validated spec (a file's or a derived one).

    Raises
    ------
    SpecError
        The run count over `max_runs`, an invalid run, a run that cannot fit its data or
        memory, or a bad analysis option; one line per problem.
    """
    for check in (lambda: run_count_problems(spec, max_runs), lambda: check_study(spec)):
        problems = check()
        if problems:
            raise problems_error(problems, source, lines)
    problems = plan_problems(*study_configs(spec))
    if problems:
        raise problems_error(problems, source, lines)
    from mnistlab.analysis import captures_for  # the analyses build on the studies

    captures_for(spec, source)


def read_study_text(path: Path | str) -> str:
    """The text of a study file, refused over `MAX_STUDY_BYTES` or when not UTF-8."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_STUDY_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the study file: {exc}") from None
    if len(raw) > MAX_STUDY_BYTES:
        raise SpecError(
            f"{path}: the study file is over the {MAX_STUDY_BYTES // 1_000_000} MB limit "
            f"({MAX_STUDY_BYTES:,} bytes); a study is a few kB"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(f"{path}: line {line}: cannot read the study file: not UTF-8") from None


def load_study(path: Path | str, max_runs: int = DEFAULT_MAX_RUNS) -> StudySpec:
    """Read and check the study file at `path` (see `parse_study`).

    Raises
    ------
    SpecError
        The file cannot be read, is too large, is not YAML, or describes an invalid study.
    """
    return parse_study(read_study_text(path), str(path), max_runs)
