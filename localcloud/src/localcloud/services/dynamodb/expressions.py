"""DynamoDB's expression language: condition/filter, key condition, update and projection expressions.

Parsing resolves ``#name`` and ``:value`` placeholders up front, so every error a request can be
rejected for surfaces before any item is read, and produces a small tree that evaluates against an
item (a dict of attribute values, see :mod:`.values`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from localcloud.core import AwsError
from localcloud.services.dynamodb import values
from localcloud.services.dynamodb.reserved_words import RESERVED_WORDS
from localcloud.services.dynamodb.values import AttributeValue, Item

PathElement = str | int
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
# Type names as DynamoDB spells them in "incorrect operand type" errors about ADD and DELETE.
_TYPE_NAMES = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "BOOL": "BOOLEAN", "NULL": "NULL", "M": "MAP", "L": "LIST"}
_CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
_UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}
_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")
_TOKEN = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<nameref>#[A-Za-z0-9_]+)"
    r"|(?P<valueref>:[A-Za-z0-9_]+)"
    r"|(?P<number>[0-9]+)"
    r"|(?P<op><>|<=|>=|[=<>()\[\],.+-])"
)
_SPACE = re.compile(r"\s*")


def _invalid(kind: str, message: str) -> AwsError:
    return values.validation_error(f"Invalid {kind}: {message}")


def _operand_type_error(kind: str, function: str, value: AttributeValue) -> AwsError:
    return _invalid(
        kind,
        "Incorrect operand type for operator or function; "
        f"operator or function: {function}, operand type: {values.type_of(value)}",
    )


class Placeholders:
    """A request's ExpressionAttributeNames/Values, shared by all its expressions, recording which are used
    so that unused ones can be rejected like DynamoDB does."""

    def __init__(self, names: dict[str, str] | None, attribute_values: dict[str, AttributeValue] | None) -> None:
        self.names = names or {}
        self.values = {key: _placeholder_value(key, value) for key, value in (attribute_values or {}).items()}
        for key in self.names:
            if not key.startswith("#"):
                raise values.validation_error(
                    f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"'
                )
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    def name(self, kind: str, ref: str) -> str:
        if ref not in self.names:
            raise _invalid(
                kind, f"An expression attribute name used in the document path is not defined; attribute name: {ref}"
            )
        self.used_names.add(ref)
        return self.names[ref]

    def value(self, kind: str, ref: str) -> AttributeValue:
        if ref not in self.values:
            raise _invalid(
                kind, f"An expression attribute value used in expression is not defined; attribute value: {ref}"
            )
        self.used_values.add(ref)
        return self.values[ref]

    def check_all_used(self) -> None:
        for label, given, used in (("Names", self.names, self.used_names), ("Values", self.values, self.used_values)):
            unused = sorted(set(given) - used)
            if unused:
                raise values.validation_error(
                    f"Value provided in ExpressionAttribute{label} unused in expressions: keys: {{{', '.join(unused)}}}"
                )


def _placeholder_value(key: str, value: AttributeValue) -> AttributeValue:
    if not key.startswith(":"):
        raise values.validation_error(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"')
    try:
        return values.normalize(value)
    except AwsError as exc:
        raise values.validation_error(
            f"ExpressionAttributeValues contains invalid value: {exc.message} for key {key}"
        ) from exc


# --- operands ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """A document path such as ``a.b[2].c``, placeholders already resolved."""

    elements: tuple[PathElement, ...]

    def resolve(self, item: Item) -> AttributeValue | None:
        value = item.get(self.elements[0])
        for element in self.elements[1:]:
            value = _child(value, element)
        return value

    def overlaps(self, other: Path) -> bool:
        shortest = min(len(self.elements), len(other.elements))
        return self.elements[:shortest] == other.elements[:shortest]

    def __str__(self) -> str:
        return "[" + ", ".join(f"[{e}]" if isinstance(e, int) else e for e in self.elements) + "]"


def _child(value: AttributeValue | None, element: PathElement) -> AttributeValue | None:
    if value is None:
        return None
    if isinstance(element, int):
        elements = value.get("L")
        return elements[element] if elements is not None and element < len(elements) else None
    members = value.get("M")
    return None if members is None else members.get(element)


@dataclass(frozen=True)
class Literal:
    value: AttributeValue

    def resolve(self, item: Item) -> AttributeValue:
        return self.value


@dataclass(frozen=True)
class Size:
    path: Path

    def resolve(self, item: Item) -> AttributeValue | None:
        value = self.path.resolve(item)
        if value is None:
            return None
        kind, inner = next(iter(value.items()))
        if kind in ("N", "BOOL", "NULL"):
            return None
        return {"N": str(len(inner))}


Operand = Path | Literal | Size


# --- conditions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand

    def evaluate(self, item: Item) -> bool:
        left, right = self.left.resolve(item), self.right.resolve(item)
        if self.op == "=":
            return values.equal(left, right)
        if self.op == "<>":
            return not values.equal(left, right)
        if not _orderable(left, right):
            return False
        a, b = values.order_key(left), values.order_key(right)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


def _orderable(*operands: AttributeValue | None) -> bool:
    kinds = {None if value is None else values.type_of(value) for value in operands}
    return len(kinds) == 1 and kinds <= set(values.SCALAR_TYPES)


@dataclass(frozen=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand

    def evaluate(self, item: Item) -> bool:
        value, low, high = (part.resolve(item) for part in (self.operand, self.low, self.high))
        if not _orderable(value, low, high):
            return False
        return values.order_key(low) <= values.order_key(value) <= values.order_key(high)


@dataclass(frozen=True)
class In:
    operand: Operand
    options: tuple[Operand, ...]

    def evaluate(self, item: Item) -> bool:
        value = self.operand.resolve(item)
        return any(values.equal(value, option.resolve(item)) for option in self.options)


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[Operand, ...]

    def evaluate(self, item: Item) -> bool:
        resolved = [arg.resolve(item) for arg in self.args]
        return _FUNCTIONS[self.name](*resolved)


def _begins_with(value: AttributeValue | None, prefix: AttributeValue | None) -> bool:
    if value is None or prefix is None or values.type_of(value) != values.type_of(prefix):
        return False
    kind = values.type_of(value)
    return kind in ("S", "B") and value[kind].startswith(prefix[kind])


def _contains(container: AttributeValue | None, member: AttributeValue | None) -> bool:
    if container is None or member is None:
        return False
    kind, member_kind = values.type_of(container), values.type_of(member)
    if kind in ("S", "B"):
        return member_kind == kind and member[kind] in container[kind]
    if kind in values.SET_TYPES:
        return member_kind == values.SET_TYPES[kind] and member[member_kind] in container[kind]
    if kind == "L":
        return any(values.equal(element, member) for element in container["L"])
    return False


_FUNCTIONS: dict[str, Callable[..., bool]] = {
    "attribute_exists": lambda value: value is not None,
    "attribute_not_exists": lambda value: value is None,
    "attribute_type": lambda value, kind: value is not None and values.type_of(value) == kind.get("S"),
    "begins_with": _begins_with,
    "contains": _contains,
}


@dataclass(frozen=True)
class And:
    left: Condition
    right: Condition

    def evaluate(self, item: Item) -> bool:
        return self.left.evaluate(item) and self.right.evaluate(item)


@dataclass(frozen=True)
class Or:
    left: Condition
    right: Condition

    def evaluate(self, item: Item) -> bool:
        return self.left.evaluate(item) or self.right.evaluate(item)


@dataclass(frozen=True)
class Not:
    condition: Condition

    def evaluate(self, item: Item) -> bool:
        return not self.condition.evaluate(item)


Condition = Compare | Between | In | Function | And | Or | Not


# --- update expressions -----------------------------------------------------------------------------


def _missing_attribute() -> AwsError:
    return values.validation_error("The provided expression refers to an attribute that does not exist in the item")


def _wrong_type() -> AwsError:
    return values.validation_error("An operand in the update expression has an incorrect data type")


def _invalid_path() -> AwsError:
    return values.validation_error("The document path provided in the update expression is invalid for update")


def _required(operand: SetValue, item: Item) -> AttributeValue:
    value = operand.resolve(item)
    if value is None:
        raise _missing_attribute()
    return value


@dataclass(frozen=True)
class Arithmetic:
    op: str
    left: SetValue
    right: SetValue

    def resolve(self, item: Item) -> AttributeValue:
        left, right = _required(self.left, item), _required(self.right, item)
        if "N" not in left or "N" not in right:
            raise _wrong_type()
        a, b = values.to_decimal(left), values.to_decimal(right)
        context = values.NUMBER_CONTEXT
        return values.number(context.add(a, b) if self.op == "+" else context.subtract(a, b))


@dataclass(frozen=True)
class ListAppend:
    first: SetValue
    second: SetValue

    def resolve(self, item: Item) -> AttributeValue:
        first, second = _required(self.first, item), _required(self.second, item)
        if "L" not in first or "L" not in second:
            raise _wrong_type()
        return {"L": first["L"] + second["L"]}


@dataclass(frozen=True)
class IfNotExists:
    path: Path
    default: SetValue

    def resolve(self, item: Item) -> AttributeValue:
        existing = self.path.resolve(item)
        return existing if existing is not None else _required(self.default, item)


SetValue = Path | Literal | Arithmetic | ListAppend | IfNotExists


@dataclass
class UpdateExpression:
    """The parsed actions; every right-hand side is evaluated against the item as it was before the update."""

    sets: list[tuple[Path, SetValue]] = field(default_factory=list)
    removes: list[Path] = field(default_factory=list)
    adds: list[tuple[Path, AttributeValue]] = field(default_factory=list)
    deletes: list[tuple[Path, AttributeValue]] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [path for path, _ in self.sets] + self.removes + [path for path, _ in self.adds + self.deletes]

    def apply(self, item: Item) -> Item:
        new = copy.deepcopy(item)
        for path, value in [(path, _required(value, item)) for path, value in self.sets]:
            _set_path(new, path, copy.deepcopy(value))
        # Highest list index first, so removing one element does not shift the next one to remove.
        for path in sorted(self.removes, key=_removal_order, reverse=True):
            _remove_path(new, path)
        for path, value in self.adds:
            _set_path(new, path, _add(path.resolve(item), value))
        for path, value in self.deletes:
            remaining = _delete(path.resolve(item), value)
            if remaining is None:
                _remove_path(new, path)
            else:
                _set_path(new, path, remaining)
        return new


def _removal_order(path: Path) -> list[tuple[int, PathElement]]:
    return [(1, e) if isinstance(e, int) else (0, e) for e in path.elements]


def _add(existing: AttributeValue | None, value: AttributeValue) -> AttributeValue:
    if existing is None:
        return copy.deepcopy(value)
    kind = values.type_of(value)
    if kind != values.type_of(existing):
        raise _wrong_type()
    if kind == "N":
        return values.number(values.NUMBER_CONTEXT.add(values.to_decimal(existing), values.to_decimal(value)))
    return {kind: existing[kind] + [member for member in value[kind] if member not in existing[kind]]}


def _delete(existing: AttributeValue | None, value: AttributeValue) -> AttributeValue | None:
    """What is left of a set after DELETE; None when nothing is (DynamoDB then drops the attribute)."""
    if existing is None:
        return None
    kind = values.type_of(value)
    if kind != values.type_of(existing):
        raise _wrong_type()
    remaining = [member for member in existing[kind] if member not in value[kind]]
    return {kind: remaining} if remaining else None


def _parent(item: Item, path: Path) -> AttributeValue | None:
    value = item.get(path.elements[0])
    for element in path.elements[1:-1]:
        value = _child(value, element)
    return value


def _set_path(item: Item, path: Path, value: AttributeValue) -> None:
    *_, last = path.elements
    if len(path.elements) == 1:
        item[last] = value
        return
    parent = _parent(item, path)
    if isinstance(last, int) and parent is not None and "L" in parent:
        elements = parent["L"]
        # An index past the end appends, as in DynamoDB.
        elements[last : last + 1] = [value]
    elif isinstance(last, str) and parent is not None and "M" in parent:
        parent["M"][last] = value
    else:
        raise _invalid_path()


def _remove_path(item: Item, path: Path) -> None:
    *_, last = path.elements
    if len(path.elements) == 1:
        item.pop(last, None)
        return
    parent = _parent(item, path)
    if isinstance(last, int) and parent is not None and "L" in parent:
        del parent["L"][last : last + 1]
    elif isinstance(last, str) and parent is not None and "M" in parent:
        parent["M"].pop(last, None)


# --- projection -------------------------------------------------------------------------------------


def project(item: Item, paths: Iterable[Path]) -> Item:
    """The parts of ``item`` the paths name, nested the way they were in the item (list elements compacted)."""
    tree: dict = {}
    for path in paths:
        node = tree
        for element in path.elements[:-1]:
            node = node.setdefault(element, {})
        node[path.elements[-1]] = None
    return {name: value for name, sub in tree.items() if (value := _project(item.get(name), sub)) is not None}


def _project(value: AttributeValue | None, tree: dict | None) -> AttributeValue | None:
    if value is None or tree is None:
        return copy.deepcopy(value)
    if "M" in value:
        members = {
            k: v
            for k, sub in tree.items()
            if isinstance(k, str) and (v := _project(value["M"].get(k), sub)) is not None
        }
        return {"M": members} if members else None
    if "L" in value:
        indexes = sorted(k for k in tree if isinstance(k, int))
        elements = [v for i in indexes if (v := _project(_child(value, i), tree[i])) is not None]
        return {"L": elements} if elements else None
    return None


# --- parsing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # name, nameref, valueref, number, op, invalid, eof
    text: str
    start: int
    end: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = _SPACE.match(text).end()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match:
            tokens.append(_Token(match.lastgroup, match.group(), pos, match.end()))
            pos = match.end()
        else:
            tokens.append(_Token("invalid", text[pos], pos, pos + 1))
            pos += 1
        pos = _SPACE.match(text, pos).end()
    tokens.append(_Token("eof", "", len(text), len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, kind: str, placeholders: Placeholders) -> None:
        if not text.strip():
            raise _invalid(kind, "The expression can not be empty;")
        self.text = text
        self.kind = kind
        self.placeholders = placeholders
        self.tokens = _tokenize(text)
        self.pos = 0

    # token helpers

    @property
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def accept(self, op: str) -> bool:
        if self.peek.kind == "op" and self.peek.text == op:
            self.advance()
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.accept(op):
            raise self.syntax_error()

    def at_keyword(self, *words: str) -> bool:
        return self.peek.kind == "name" and self.peek.text.upper() in words

    def accept_keyword(self, word: str) -> bool:
        if self.at_keyword(word):
            self.advance()
            return True
        return False

    def at_function(self) -> bool:
        following = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else self.peek
        return self.peek.kind == "name" and following.text == "("

    def end(self) -> None:
        if self.peek.kind != "eof":
            raise self.syntax_error()

    def error(self, message: str) -> AwsError:
        return _invalid(self.kind, message)

    def syntax_error(self) -> AwsError:
        """DynamoDB's report: the offending token and the text from the token before it to the one after."""
        token = self.peek
        before = self.tokens[max(self.pos - 1, 0)]
        after = self.tokens[min(self.pos + 1, len(self.tokens) - 1)]
        shown = "<EOF>" if token.kind == "eof" else token.text
        return self.error(f'Syntax error; token: "{shown}", near: "{self.text[before.start : after.end]}"')

    # paths and operands

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_name()]
        while True:
            if self.accept("."):
                elements.append(self.path_name())
            elif self.accept("["):
                if self.peek.kind != "number":
                    raise self.syntax_error()
                elements.append(int(self.advance().text))
                self.expect("]")
            else:
                return Path(tuple(elements))

    def path_name(self) -> str:
        token = self.peek
        if token.kind == "nameref":
            self.advance()
            return self.placeholders.name(self.kind, token.text)
        if token.kind != "name":
            raise self.syntax_error()
        if token.text.upper() in RESERVED_WORDS:
            raise self.error(f"Attribute name is a reserved keyword; reserved keyword: {token.text}")
        self.advance()
        return token.text

    def value(self) -> Literal:
        if self.peek.kind != "valueref":
            raise self.syntax_error()
        return Literal(self.placeholders.value(self.kind, self.advance().text))

    def operand(self) -> Operand:
        if self.peek.kind == "valueref":
            return self.value()
        if self.at_function():
            function = self.function()
            if not isinstance(function, Size):
                raise self.error(
                    f"The function is not allowed to be used this way in an expression; function: {function.name}"
                )
            return function
        return self.path()

    # conditions

    def condition(self) -> Condition:
        left = self.conjunction()
        while self.accept_keyword("OR"):
            left = Or(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.accept_keyword("AND"):
            left = And(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.accept_keyword("NOT"):
            return Not(self.negation())
        return self.predicate()

    def predicate(self) -> Condition:
        if self.accept("("):
            inner = self.condition()
            self.expect(")")
            return inner
        if self.at_function():
            function = self.function()
            return self.comparison(function) if isinstance(function, Size) else function
        return self.comparison(self.operand())

    def comparison(self, left: Operand) -> Condition:
        token = self.peek
        if token.kind == "op" and token.text in COMPARATORS:
            self.advance()
            right = self.operand()
            if token.text not in ("=", "<>"):
                self.check_orderable(token.text, left, right)
            return Compare(token.text, left, right)
        if self.accept_keyword("BETWEEN"):
            low = self.operand()
            if not self.accept_keyword("AND"):
                raise self.syntax_error()
            return self.between(left, low, self.operand())
        if self.accept_keyword("IN"):
            self.expect("(")
            options = [self.operand()]
            while self.accept(","):
                options.append(self.operand())
            self.expect(")")
            return In(left, tuple(options))
        raise self.syntax_error()

    def between(self, operand: Operand, low: Operand, high: Operand) -> Between:
        self.check_orderable("BETWEEN", operand, low, high)
        constant = isinstance(low, Literal) and isinstance(high, Literal) and _orderable(low.value, high.value)
        if constant and values.order_key(low.value) > values.order_key(high.value):
            raise self.error(
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
                f"lower operand: AttributeValue: {_show(low.value)}, upper operand: AttributeValue: {_show(high.value)}"
            )
        return Between(operand, low, high)

    def check_orderable(self, op: str, *operands: Operand) -> None:
        for operand in operands:
            if isinstance(operand, Literal) and values.type_of(operand.value) not in values.SCALAR_TYPES:
                raise _operand_type_error(self.kind, op, operand.value)

    def function(self) -> Function | Size:
        name = self.advance().text
        if name in _UPDATE_FUNCTIONS:
            raise self.error(f"The function is not allowed in a condition expression; function: {name}")
        if name not in _CONDITION_FUNCTIONS:
            raise self.error(f"Invalid function name; function: {name}")
        args = self.arguments(name, _CONDITION_FUNCTIONS[name], self.operand)
        if name in ("attribute_exists", "attribute_not_exists", "attribute_type", "size") and not isinstance(
            args[0], Path
        ):
            raise self.error(f"Operator or function requires a document path; operator or function: {name}")
        if name == "size":
            return Size(args[0])
        if name == "attribute_type":
            self.check_type_name(args[1])
        if name == "begins_with":
            for arg in args:
                if isinstance(arg, Literal) and values.type_of(arg.value) not in ("S", "B"):
                    raise _operand_type_error(self.kind, name, arg.value)
        return Function(name, tuple(args))

    def arguments(self, name: str, count: int, parse: Callable[[], Operand | SetValue]) -> list:
        self.expect("(")
        args = [parse()]
        while self.accept(","):
            args.append(parse())
        self.expect(")")
        if len(args) != count:
            raise self.error(
                f"Incorrect number of operands for operator or function; operator or function: {name}, "
                f"number of operands: {len(args)}"
            )
        return args

    def check_type_name(self, arg: Operand) -> None:
        if not isinstance(arg, Literal):
            raise self.error("Operator or function requires an attribute value; operator or function: attribute_type")
        if arg.value.get("S") not in values.ALL_TYPES:
            raise self.error(
                f"Invalid attribute type name found in type: {_show(arg.value)}, "
                f"valid types: {{{','.join(values.ALL_TYPES)}}}"
            )

    # update expressions

    def update(self) -> UpdateExpression:
        update = UpdateExpression()
        seen: set[str] = set()
        while self.peek.kind != "eof":
            if not self.at_keyword(*_CLAUSES):
                raise self.syntax_error()
            clause = self.advance().text.upper()
            if clause in seen:
                raise self.error(f'The "{clause}" section can only be used once in an update expression;')
            seen.add(clause)
            self.clause(clause, update)
        self.check_overlaps(update.paths)
        return update

    def clause(self, clause: str, update: UpdateExpression) -> None:
        while True:
            if clause == "SET":
                path = self.path()
                self.expect("=")
                update.sets.append((path, self.set_value()))
            elif clause == "REMOVE":
                update.removes.append(self.path())
            else:
                path, value = self.path(), self.value().value
                self.check_set_operand(clause, value)
                (update.adds if clause == "ADD" else update.deletes).append((path, value))
            if not self.accept(","):
                return

    def check_set_operand(self, clause: str, value: AttributeValue) -> None:
        kind = values.type_of(value)
        allowed = kind in values.SET_TYPES or (clause == "ADD" and kind == "N")
        if not allowed:
            raise self.error(
                "Incorrect operand type for operator or function; "
                f"operator or function: operator: {clause}, operand type: {_TYPE_NAMES.get(kind, kind)}"
            )

    def set_value(self) -> SetValue:
        left = self.set_operand()
        for op in ("+", "-"):
            if self.accept(op):
                right = self.set_operand()
                for side in (left, right):
                    if isinstance(side, Literal) and "N" not in side.value:
                        raise _operand_type_error(self.kind, op, side.value)
                return Arithmetic(op, left, right)
        return left

    def set_operand(self) -> SetValue:
        if self.peek.kind == "valueref":
            return self.value()
        if not self.at_function():
            return self.path()
        name = self.advance().text
        if name in _CONDITION_FUNCTIONS:
            raise self.error(f"The function is not allowed in an update expression; function: {name}")
        if name not in _UPDATE_FUNCTIONS:
            raise self.error(f"Invalid function name; function: {name}")
        first, second = self.arguments(name, 2, self.set_operand)
        if name == "if_not_exists":
            if not isinstance(first, Path):
                raise self.error(f"Operator or function requires a document path; operator or function: {name}")
            return IfNotExists(first, second)
        for arg in (first, second):
            if isinstance(arg, Literal) and "L" not in arg.value:
                raise _operand_type_error(self.kind, name, arg.value)
        return ListAppend(first, second)

    def check_overlaps(self, paths: list[Path]) -> None:
        for index, path in enumerate(paths):
            for other in paths[index + 1 :]:
                if path.overlaps(other):
                    raise self.error(
                        "Two document paths overlap with each other; must remove or rewrite one of these paths; "
                        f"path one: {path}, path two: {other}"
                    )

    # projections

    def projection(self) -> list[Path]:
        paths = [self.path()]
        while self.accept(","):
            paths.append(self.path())
        self.end()
        self.check_overlaps(paths)
        return paths


def _show(value: AttributeValue) -> str:
    kind, inner = next(iter(value.items()))
    return f"{{{kind}:{inner}}}"


def parse_condition(text: str, placeholders: Placeholders, kind: str = "ConditionExpression") -> Condition:
    """A ConditionExpression, FilterExpression or (before :func:`key_condition`) KeyConditionExpression."""
    parser = _Parser(text, kind, placeholders)
    condition = parser.condition()
    parser.end()
    return condition


def parse_update(text: str, placeholders: Placeholders) -> UpdateExpression:
    return _Parser(text, "UpdateExpression", placeholders).update()


def parse_projection(text: str, placeholders: Placeholders) -> list[Path]:
    return _Parser(text, "ProjectionExpression", placeholders).projection()


# --- key conditions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCondition:
    """A Query's key condition: the partition key's value and, optionally, a condition on the sort key."""

    partition_value: AttributeValue
    sort_condition: Condition | None


def key_condition(
    text: str, placeholders: Placeholders, partition_key: tuple[str, str], sort_key: tuple[str, str] | None
) -> KeyCondition:
    """Parse and check a KeyConditionExpression against a (name, type) partition key and optional sort key."""
    parts = _conjuncts(parse_condition(text, placeholders, "KeyConditionExpression"))
    if len(parts) > 2:
        raise values.validation_error("Conditions can be of length 1 or 2 only")
    by_attribute: dict[str, Condition] = {}
    for part in parts:
        name = _key_attribute(part)
        if name in by_attribute:
            raise values.validation_error("KeyConditionExpressions must only contain one condition per key")
        by_attribute[name] = part
    partition_name, partition_type = partition_key
    partition = by_attribute.pop(partition_name, None)
    if not isinstance(partition, Compare) or partition.op != "=":
        raise values.validation_error(f"Query condition missed key schema element: {partition_name}")
    if by_attribute and sort_key is None:
        raise values.validation_error("Query key condition not supported")
    if by_attribute and set(by_attribute) != {sort_key[0]}:
        raise values.validation_error(f"Query condition missed key schema element: {sort_key[0]}")
    partition_value = _key_literals(partition)[0]
    _check_key_type(partition_value, partition_type)
    sort_condition = by_attribute.get(sort_key[0]) if sort_key else None
    if sort_condition is not None:
        for literal in _key_literals(sort_condition):
            _check_key_type(literal, sort_key[1])
    return KeyCondition(partition_value, sort_condition)


def _conjuncts(condition: Condition) -> list[Condition]:
    if isinstance(condition, And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    if isinstance(condition, Or | Not | In):
        operator = {Or: "OR", Not: "NOT", In: "IN"}[type(condition)]
        raise values.validation_error(f"Invalid operator used in KeyConditionExpression: {operator}")
    return [condition]


def _key_attribute(condition: Condition) -> str:
    """The one top-level attribute a key condition part constrains; anything else is unsupported."""
    if isinstance(condition, Compare) and condition.op == "<>":
        raise values.validation_error("Invalid operator used in KeyConditionExpression: <>")
    if isinstance(condition, Function) and condition.name != "begins_with":
        raise values.validation_error(f"Invalid operator used in KeyConditionExpression: {condition.name}")
    parts = _operands(condition)
    paths = [part for part in parts if isinstance(part, Path)]
    if len(paths) > 1:
        raise values.validation_error(
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
        )
    # Only `attribute <op> :value` (attribute first, top-level, no size()) can be served from the key.
    if len(paths) != 1 or parts[0] is not paths[0] or len(paths[0].elements) != 1:
        raise values.validation_error("Query key condition not supported")
    if any(isinstance(part, Size) for part in parts):
        raise values.validation_error("Query key condition not supported")
    return paths[0].elements[0]


def _operands(condition: Compare | Between | Function) -> tuple[Operand, ...]:
    if isinstance(condition, Compare):
        return condition.left, condition.right
    if isinstance(condition, Between):
        return condition.operand, condition.low, condition.high
    return condition.args


def _key_literals(condition: Condition) -> list[AttributeValue]:
    """The values a checked key condition part compares its attribute with (every operand after the first)."""
    return [operand.value for operand in _operands(condition)[1:]]


def _check_key_type(value: AttributeValue, expected: str) -> None:
    if values.type_of(value) != expected:
        raise values.invalid_parameter("Condition parameter type does not match schema type")
