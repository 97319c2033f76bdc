"""A small, safe evaluator for indicator rules such as ``vcdr >= 0.6``.

The rule text is parsed with :mod:`ast` and walked node by node against a whitelist:
comparisons (chained too), ``and``/``or``/``not``, ``+ - * / // % **`` (small exponents),
``in``/``not in`` over list/tuple literals, numbers, strings, booleans, ``None`` and
names bound to indicator outputs. There is no ``eval``/``exec``, no attribute access, no
subscripts, no calls and no comprehensions: anything else is rejected at load time with
the column where it starts.

Evaluation runs under budgets, so a rule that passes ``validate`` cannot exhaust CPU or
memory: every intermediate number is at most 1e15 in magnitude (``(((9**8)**8)**8)`` is
refused after the first step, not computed), every intermediate string at most 10,000
characters, ``%`` applies to numbers only (no string formatting: ``'%.999999999f' % 1``),
``*`` never repeats a string or sequence, and one evaluation visits at most 2,000 nodes.
Subexpressions made of literals only are evaluated by ``compile_rule``, so ``validate``
reports what can be known before any tool runs.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from typing import Any

from dxgraph.errors import ConfigError

__all__ = ["Rule", "compile_rule", "RuleError"]


class RuleError(ConfigError):
    """A rule that cannot be parsed, or that refers to something it may not."""


_CMP = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_BIN = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_MAX_LEN = 500
_MAX_DEPTH = 32
MAX_NUMBER = 1e15
MAX_STRING = 10_000
_MAX_STEPS = 2_000


class _Budget(ValueError):
    """An evaluation that would pass one of the budgets above."""


def _bounded(value: Any) -> Any:
    """``value`` if it is within the number and string budgets, else _Budget."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER:
            raise _Budget(f"an intermediate number is larger than {MAX_NUMBER:.0e}")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise _Budget(f"an intermediate number is not finite or larger than {MAX_NUMBER:.0e}")
    elif isinstance(value, (str, tuple)) and len(value) > MAX_STRING:
        raise _Budget(f"an intermediate value is longer than {MAX_STRING} characters")
    return value


def _binop(op: ast.operator, left: Any, right: Any) -> Any:
    """One arithmetic step on bounded operands, refusing formatting and repetition."""
    if isinstance(op, ast.Mod) and not _is_number(left):
        raise _Budget("'%' works on numbers only (no string formatting)")
    if isinstance(op, ast.Mult) and not (_is_number(left) and _is_number(right)):
        raise _Budget("'*' works on numbers only (no repeating text or lists)")
    if isinstance(op, ast.Pow) and not (_is_number(left) and _is_number(right)):
        raise _Budget("'**' works on numbers only")
    return _bounded(_BIN[type(op)](left, right))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(node: ast.AST, names: set[str], depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise RuleError("rule is nested too deeply")
    where = f" (column {getattr(node, 'col_offset', 0) + 1})"
    if isinstance(node, ast.Expression):
        _check(node.body, names, depth + 1)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, names, depth + 1)
    elif isinstance(node, ast.Compare):
        if not all(type(op) in _CMP for op in node.ops):
            raise RuleError("unsupported comparison" + where)
        _check(node.left, names, depth + 1)
        for c in node.comparators:
            _check(c, names, depth + 1)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BIN:
            raise RuleError(f"operator {type(node.op).__name__} is not allowed" + where)
        _check(node.left, names, depth + 1)
        _check(node.right, names, depth + 1)
        sides = {ast.Mult: (node.left, node.right), ast.Mod: (node.left,)}.get(type(node.op), ())
        if any(isinstance(side, (ast.List, ast.Tuple, ast.Set)) or (
                isinstance(side, ast.Constant) and isinstance(side.value, str)) for side in sides):
            symbol = "*" if isinstance(node.op, ast.Mult) else "%"
            raise RuleError(f"'{symbol}' works on numbers only (no repeating or formatting text)" + where)
        if isinstance(node.op, ast.Pow) and not (
            isinstance(node.right, ast.Constant) and isinstance(node.right.value, (int, float))
            and abs(node.right.value) <= 8
        ):
            raise RuleError("'**' needs a small constant exponent (at most 8)" + where)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise RuleError("unsupported unary operator" + where)
        _check(node.operand, names, depth + 1)
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for e in node.elts:
            if not isinstance(e, ast.Constant):
                raise RuleError("lists in rules may hold only literals" + where)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise RuleError(f"literal {node.value!r} is not allowed" + where)
        try:
            _bounded(node.value)
        except _Budget as exc:
            raise RuleError(f"literal {str(node.value)[:40]!r}: {exc}" + where) from None
    elif isinstance(node, ast.Name):
        names.add(node.id)
    elif isinstance(node, ast.Attribute):
        raise RuleError("attribute access is not allowed in rules" + where)
    elif isinstance(node, ast.Call):
        raise RuleError("function calls are not allowed in rules" + where)
    elif isinstance(node, ast.Subscript):
        raise RuleError("indexing is not allowed in rules" + where)
    else:
        raise RuleError(f"{type(node).__name__} is not allowed in rules" + where)


def _eval(node: ast.AST, env: dict[str, Any], steps: list[int] | None = None) -> Any:
    steps = steps if steps is not None else [0]
    steps[0] += 1
    if steps[0] > _MAX_STEPS:
        raise _Budget(f"evaluation took more than {_MAX_STEPS} steps")
    return _eval_node(node, env, steps)


def _eval_node(node: ast.AST, env: dict[str, Any], steps: list[int]) -> Any:
    _eval_ = lambda n, e: _eval(n, e, steps)  # noqa: E731 - one budget across the whole tree
    if isinstance(node, ast.Expression):
        return _eval_(node.body, env)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for v in node.values:
                result = _eval_(v, env)
                if not result:
                    return result
            return result
        result = False
        for v in node.values:
            result = _eval_(v, env)
            if result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _eval_(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval_(comp, env)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp):
        return _binop(node.op, _eval_(node.left, env), _eval_(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_eval_(node.operand, env)))
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return tuple(e.value for e in node.elts)  # type: ignore[attr-defined]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise KeyError(node.id)
        return _bounded(env[node.id])
    raise RuleError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check


@dataclass(frozen=True)
class Rule:
    """A compiled rule: its text, the names it reads, and its checked syntax tree."""

    text: str
    names: frozenset[str]
    _tree: ast.Expression

    def evaluate(self, values: dict[str, Any]) -> bool:
        """Evaluate against indicator outputs; a missing name or a type clash raises ValueError."""
        try:
            return bool(_eval(self._tree, values))
        except KeyError as exc:
            raise ValueError(f"rule {self.text!r} needs {exc.args[0]!r}, which was not produced") from None
        except (TypeError, ZeroDivisionError, OverflowError, _Budget) as exc:
            raise ValueError(f"rule {self.text!r} could not be evaluated: {exc}") from None


def _check_literal_parts(node: ast.AST) -> None:
    """Evaluate each arithmetic part made of literals only, so ``validate`` meets its budget errors."""
    if isinstance(node, (ast.BinOp, ast.UnaryOp)) and not any(isinstance(n, ast.Name) for n in ast.walk(node)):
        try:
            _eval(node, {})
        except (_Budget, TypeError, ZeroDivisionError, OverflowError) as exc:
            raise RuleError(f"{ast.unparse(node)[:60]!r} cannot be evaluated: {exc} "
                            f"(column {node.col_offset + 1})") from None
        return
    for child in ast.iter_child_nodes(node):
        _check_literal_parts(child)


def compile_rule(text: str) -> Rule:
    """Parse and check a rule. Raises RuleError with the reason and column."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("rule must be a non-empty expression such as 'vcdr >= 0.6'")
    if len(text) > _MAX_LEN:
        raise RuleError(f"rule is longer than {_MAX_LEN} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"rule {text!r} is not a valid expression (column {exc.offset or 0}): {exc.msg}") from None
    names: set[str] = set()
    _check(tree, names)
    reserved = names & {"True", "False", "None"}
    names -= reserved
    _check_literal_parts(tree.body)
    return Rule(text=text.strip(), names=frozenset(names), _tree=tree)
