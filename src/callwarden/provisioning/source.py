"""Reading a provisioning file: YAML with line numbers kept, validated into a document.

The YAML is composed into a node tree first; the data is constructed from that same tree, and
pydantic's error locations (`("users", 1, "extension")`) are walked back through it to the line
at fault. Duplicate keys, anchors/aliases and merge keys are refused rather than silently
resolved, so what the file says is exactly what is applied.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from callwarden.provisioning.document import ProvisioningDocument, keys_at
from callwarden.provisioning.errors import Problem, ProvisioningError

MAX_FILE_BYTES = 5 * 1024 * 1024
TOP_LEVEL_KEYS = ("version", "prune", "roles", "teams", "users", "trunks", "queues")

PathPart = str | int
Location = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """`("users", 1, "extension")` -> `users[1].extension`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class Locator:
    """Turns a path inside the document into a `Problem` with the line of that place."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self._root = root

    def line(self, path: Sequence[PathPart]) -> int | None:
        if self._root is None:
            return None
        node = self._root
        line = node.start_mark.line
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = next(
                    (
                        (key, value)
                        for key, value in node.value
                        if isinstance(key, yaml.ScalarNode) and key.value == part
                    ),
                    None,
                )
                if pair is None:
                    break
                node = pair[1]
                line = pair[0].start_mark.line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line
            else:
                break
        return line + 1

    def problem(self, path: Sequence[PathPart], message: str) -> Problem:
        return Problem(self.source, self.line(path), format_path(path), message)


@dataclass(frozen=True)
class LoadedDocument:
    document: ProvisioningDocument
    locator: Locator


def _walk(
    node: yaml.Node, path: Location, seen: set[int]
) -> Iterator[tuple[yaml.Node, Location, bool]]:
    """Every node with its path; a node met again (an alias) is flagged and not entered."""
    repeated = id(node) in seen
    seen.add(id(node))
    yield node, path, repeated
    if repeated:
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key.value, str) else "?"
            yield from _walk(value, (*path, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*path, index), seen)


def _structure_problems(root: yaml.Node, source: str) -> list[Problem]:
    """Duplicate keys, aliases and merge keys: YAML features that would hide what is applied."""
    problems: list[Problem] = []
    for node, path, repeated in _walk(root, (), set()):
        line = node.start_mark.line + 1
        if repeated:
            problems.append(
                Problem(source, line, format_path(path), "anchors and aliases are not supported")
            )
            continue
        if not isinstance(node, yaml.MappingNode):
            continue
        first_line: dict[str, int] = {}
        for key, _value in node.value:
            name = str(key.value)
            key_line = key.start_mark.line + 1
            if key.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    Problem(source, key_line, format_path(path), "merge keys are not supported")
                )
            elif name in first_line:
                problems.append(
                    Problem(
                        source,
                        key_line,
                        format_path((*path, name)),
                        f"duplicate key (first at line {first_line[name]})",
                    )
                )
            else:
                first_line[name] = key_line
    return problems


def _loader(text: str) -> yaml.SafeLoader | yaml.CSafeLoader:
    """libyaml when present: linear in the input (the pure-Python scanner is quadratic in flow
    nesting) and limited to 1000 levels of nesting."""
    if yaml.__with_libyaml__:
        return yaml.CSafeLoader(text)
    return yaml.SafeLoader(text)  # pragma: no cover - wheels ship libyaml


def _compose(text: str, source: str) -> tuple[yaml.Node | None, object]:
    loader = _loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        problems = _structure_problems(root, source)
        if problems:
            raise ProvisioningError(source, problems)
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        what = " ".join(part for part in (error.context, error.problem) if part)
        raise ProvisioningError(
            source, [Problem(source, line, "", f"invalid YAML: {what}")]
        ) from None
    except yaml.YAMLError as error:
        raise ProvisioningError(
            source, [Problem(source, None, "", f"invalid YAML: {error}")]
        ) from None
    except RecursionError:
        raise ProvisioningError(source, [Problem(source, None, "", "nested too deeply")]) from None
    finally:
        loader.dispose()


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    messages = {
        "missing": "is required",
        "string_type": "must be a string",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "list_type": "must be a list",
        "model_type": "must be a mapping of keys to values",
        "dict_type": "must be a mapping of keys to values",
    }
    if kind in messages:
        return messages[kind]
    if kind == "extra_forbidden":
        location = error["loc"]
        known = sorted(keys_at(location[:-1]))
        hint = difflib.get_close_matches(str(location[-1]), known, n=1)
        return "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind in {"value_error", "assertion_error"} and "error" in context:
        return str(context["error"])
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "less_than_equal": ("must be at most", "le"),
        "string_too_short": ("must be at least {} characters long", "min_length"),
        "string_too_long": ("must be at most {} characters long", "max_length"),
    }
    if kind in bounds:
        text, key = bounds[kind]
        return text.format(context[key]) if "{}" in text else f"{text} {context[key]}"
    if kind == "enum":
        return f"must be one of {context['expected']}"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def validate(data: object, locator: Locator) -> ProvisioningDocument:
    """Validate constructed data against the schema; every fault becomes a located problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProvisioningError(
            locator.source,
            [locator.problem((), f"must be a mapping with the keys {', '.join(TOP_LEVEL_KEYS)}")],
        )
    try:
        return ProvisioningDocument.model_validate(data)
    except ValidationError as error:
        problems = [
            locator.problem(tuple(detail["loc"]), _message(detail)) for detail in error.errors()
        ]
        raise ProvisioningError(locator.source, problems) from None


def parse_text(text: str, source: str) -> LoadedDocument:
    root, data = _compose(text, source)
    locator = Locator(source, root)
    return LoadedDocument(validate(data, locator), locator)


def read_file(path: Path) -> LoadedDocument:
    """Read and validate the file at `path`; problems name it as given (e.g. `callcenter.yaml`)."""
    source = str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ProvisioningError(
            source, [Problem(source, None, "", f"cannot read the file: {error.strerror}")]
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ProvisioningError(
            source, [Problem(source, None, "", f"larger than {MAX_FILE_BYTES} bytes")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProvisioningError(
            source, [Problem(source, None, "", f"not UTF-8 text (byte {error.start})")]
        ) from None
    return parse_text(text, source)
