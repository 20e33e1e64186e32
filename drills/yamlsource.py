"""YAML loading that remembers the line of every key and item, for errors that name a line.

Every YAML file drills reads comes through `load`, which bounds what a hostile file can cost:
its size (`MAX_BYTES` unless the caller says otherwise), its nesting (`MAX_DEPTH`) and the
number of nodes it holds once every alias is expanded (`MAX_NODES`: a "billion laughs" of a
few hundred bytes is refused while it is read, before anything walks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_BYTES = 1_000_000  # default; a scenario's can be changed in drills.yaml (limits)
MAX_DEPTH = 64  # collections inside collections; a scenario needs about 8
MAX_NODES = 10_000  # keys and values, aliases expanded; a scenario has a few hundred


@dataclass
class Source:
    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int]] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


_STARTS_AT_CONTEXT = ("while parsing a flow", "while scanning a quoted", "while scanning a simple")


class YamlSyntaxError(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(message)


class YamlLimitError(YamlSyntaxError):
    """Valid YAML, perhaps, but over one of the bounds drills reads within."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts nodes (an alias counts as all the nodes it repeats) and depth
    while it composes, and stops at the first bound crossed."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.total = 0
        self.sizes: dict[int, int] = {}  # id(node) -> nodes it holds, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                if id(target) not in self.sizes:  # still being composed: it contains itself
                    raise YamlSyntaxError(line, "an alias refers to itself")
                self._count(self.sizes[id(target)], line)
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise YamlLimitError(line, f"nested more than {MAX_DEPTH} levels deep")
        start = self.total
        self._count(1, line)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self.sizes[id(node)] = self.total - start
        return node

    def _count(self, nodes: int, line: int) -> None:
        self.total += nodes
        if self.total > MAX_NODES:
            raise YamlLimitError(
                line, f"more than {MAX_NODES} keys and values once aliases are expanded"
            )


def load(text: str, file: str, max_bytes: int = MAX_BYTES) -> Source:
    over = _over_size(text, max_bytes)
    if over is not None:
        raise YamlLimitError(over, f"larger than the limit of {max_bytes} bytes")
    try:
        loader = _BoundedLoader(text)  # the reader checks every character here
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_line_at(text, exc.position), _reader_problem(exc)) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return Source(file=file, data=None)
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_line_at(text, exc.position), _reader_problem(exc)) from exc
    except yaml.MarkedYAMLError as exc:
        problem, context = exc.problem_mark, exc.context_mark
        message = exc.problem or "invalid YAML"
        mark = problem or context
        line = mark.line + 1 if mark is not None else None
        if exc.context and context is not None and line != context.line + 1:
            # An unclosed bracket or quote is a mistake where it began; an enclosing block
            # mapping is only context.
            if exc.context.startswith(_STARTS_AT_CONTEXT):
                line = context.line + 1
                message = f"{message} ({exc.context} that starts here)"
            else:
                message = f"{message} ({exc.context} that starts on line {context.line + 1})"
        elif exc.context:
            message = f"{exc.context}: {message}"
        raise YamlSyntaxError(line, message) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, " ".join(str(exc).split())) from exc
    except RecursionError:
        raise YamlSyntaxError(None, "nested too deeply") from None
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        # PyYAML's constructors raise plain exceptions for bad tagged values (`!!int abc`).
        raise YamlSyntaxError(None, f"a value cannot be read: {type(exc).__name__}") from exc
    finally:
        loader.dispose()
    source = Source(file=file, data=data, lines={(): node.start_mark.line + 1})
    _walk(loader, node, data, (), source, frozenset())
    return source


def _over_size(text: str, max_bytes: int) -> int | None:
    """None within `max_bytes` of UTF-8; otherwise the line on which the limit is crossed."""
    if len(text) <= max_bytes // 4 or len(text.encode("utf-8", "surrogatepass")) <= max_bytes:
        return None
    within = text.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")
    return _line_at(within, len(within))


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _reader_problem(exc: yaml.reader.ReaderError) -> str:
    character = (
        exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
    )
    return f"unacceptable character #x{character:04x}: {exc.reason}"


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    data: Any,
    path: Path_,
    source: Source,
    ancestors: frozenset[int],
) -> None:
    if id(node) in ancestors:
        raise YamlSyntaxError(node.start_mark.line + 1, "an alias refers to itself")
    ancestors = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = loader.construct_object(key_node)  # noqa: RUF100
            if not isinstance(key, str | int):
                continue
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                source.duplicates.append((child, line))
            seen.add(key)
            source.lines[child] = line
            if key in data:
                _walk(loader, value_node, data[key], child, source, ancestors)
    elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        for index, (item_node, item) in enumerate(zip(node.value, data, strict=False)):
            source.lines[(*path, index)] = item_node.start_mark.line + 1
            _walk(loader, item_node, item, (*path, index), source, ancestors)
