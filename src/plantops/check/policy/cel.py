"""CEL with ValidatingAdmissionPolicy semantics, on Google's C++ CEL (cel-expr-python).

Why this library (docs/policy.md has the measurements): it is the reference C++
implementation that Kubernetes' own cel-go tracks for conformance, it compiles an
expression once and evaluates it in tens of microseconds, and it type-checks at compile
time so a broken rule fails before any object is checked. ``cel-python`` (pure Python)
is ~30x slower and its compiled runner crashed on an ``all()`` macro.

An expression sees ``object``, ``oldObject``, ``params``, ``request``, ``namespaceObject``
and ``variables`` (each VAP variable, evaluated in order), as the API server binds them
(k8s.io/apiserver/pkg/admission/plugin/cel: ObjectAccessor, variables as
``variables.<name>``). Compiled programs are cached by text, so each rule compiles once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

from plantops.errors import UserError

VAP_VARIABLES = ("object", "oldObject", "params", "request", "namespaceObject", "variables")


class CelCompileError(UserError):
    """A CEL expression that does not compile (exit 2), with where it was written."""


@functools.cache
def _env() -> Any:
    return cel.NewEnv(
        variables={name: cel.Type.DYN for name in VAP_VARIABLES},
        extensions=[ext_strings.ExtStrings()],
    )


@functools.cache
def compile_expression(text: str) -> Any:
    """The compiled program; raises ``RuntimeError`` with the compiler's message."""
    return _env().compile(text)


def check_compiles(text: str, where: str) -> None:
    try:
        compile_expression(text)
    except RuntimeError as exc:
        raise CelCompileError(f"{where}: CEL does not compile: {exc}") from exc


@dataclass(frozen=True)
class Outcome:
    value: Any
    error: str = ""


def evaluate(text: str, data: Mapping[str, Any]) -> Outcome:
    result = compile_expression(text).eval(data=data)
    if result.type() == cel.Type.ERROR:
        return Outcome(None, str(result.value()))
    return Outcome(result.plain_value())


@dataclass(frozen=True)
class VapProgram:
    """A VAP's CEL: variables, match conditions, and (expression, message) validations."""

    variables: Sequence[tuple[str, str]]
    match_conditions: Sequence[str]
    validations: Sequence[tuple[str, str]]
    """``(expression, messageExpression or "")``."""

    def compile(self, where: str) -> None:
        for _, text in self.variables:
            check_compiles(text, where)
        for text in self.match_conditions:
            check_compiles(text, where)
        for expr, msg in self.validations:
            check_compiles(expr, where)
            if msg:
                check_compiles(msg, where)

    def run(self, obj: Mapping[str, Any], params: Any = None) -> list[str]:
        """Messages of the validations the object fails; [] when it passes or the match
        conditions exclude it. An evaluation error fails the object (failurePolicy Fail)."""
        data: dict[str, Any] = {
            "object": obj,
            "oldObject": None,
            "params": params,
            "request": {},
            "namespaceObject": None,
        }
        variables: dict[str, Any] = {}
        for name, text in self.variables:
            out = evaluate(text, {**data, "variables": variables})
            variables[name] = out.value
        data["variables"] = variables
        for text in self.match_conditions:
            out = evaluate(text, data)
            if out.error:
                return [f"match condition failed to evaluate: {out.error}"]
            if out.value is not True:
                return []
        failed = []
        for expr, msg in self.validations:
            out = evaluate(expr, data)
            if out.value is True:
                continue
            text = ""
            if msg:
                m = evaluate(msg, data)
                text = str(m.value) if isinstance(m.value, str) else ""
            failed.append(text or (f"evaluation error: {out.error}" if out.error else expr))
        return failed


__all__ = [
    "VAP_VARIABLES",
    "CelCompileError",
    "Outcome",
    "VapProgram",
    "check_compiles",
    "compile_expression",
    "evaluate",
]
