"""Schema findings: what is wrong with one object, as data."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class SchemaFinding:
    """One schema violation (or a missing schema) in one object.

    ``path`` is the field path inside the object (``spec.template.spec.containers[0]``),
    empty for the whole object; ``document_index`` counts YAML documents in ``file``
    from 0, and ``line`` is where that document starts.
    """

    file: str
    document_index: int
    api_version: str
    kind: str
    name: str
    path: str
    message: str
    line: int = 0
    """1-based line where the object's document starts in ``file`` (0: not from a file)."""

    @property
    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line} (document {self.document_index})"
        return f"{self.file or '<object>'}:{self.document_index}"

    def render(self) -> str:
        """One line for humans: ``file:doc Kind/name path: message``."""
        what = f"{self.kind or '?'}/{self.name or '?'}"
        where = f" {self.path}" if self.path else ""
        return f"{self.location}: {what}{where}: {self.message}"

    def to_dict(self) -> dict[str, str | int]:
        return asdict(self)


__all__ = ["SchemaFinding"]
