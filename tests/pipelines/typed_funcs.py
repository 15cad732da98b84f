"""Typed functions and value classes for the type-checking tests, written as users write them.

For each supported annotation there is an ``echo_*`` function (the annotation on the
parameter and on the return value) and an ``emit_*`` function (takes ``Any``, returns the
value as the annotated type: only the output check can refuse it).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from dataclasses import dataclass
from typing import (  # noqa: UP035 - typing spellings are tested on purpose
    TYPE_CHECKING,
    Any,
    Dict,
    Generic,
    List,
    Literal,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

import sematic

if TYPE_CHECKING:  # not importable at run time: type checks must cope with that
    from decimal import Decimal

T = TypeVar("T")

# Names of the functions that ran, in order: tests assert that nothing ran.
CALLS: list[str] = []


# Value classes -------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: float
    y: float


@dataclass
class Segment:
    start: Point
    end: Point
    label: str


@dataclass(frozen=True)
class FrozenTag:
    name: str
    weight: int


@dataclass
class Box(Generic[T]):
    item: T


@dataclass
class Shelf(Generic[T]):
    items: list[T]
    label: T | None = None


@dataclass
class Scaled:
    """A dataclass with an InitVar: instances do not keep ``factor``."""

    value: int
    factor: dataclasses.InitVar[int]

    def __post_init__(self, factor: int) -> None:
        self.value *= factor


POST_INITS: list[int] = []


@dataclass
class Counted:
    """Records each __post_init__: a type check must not build another instance."""

    n: int

    def __post_init__(self) -> None:
        POST_INITS.append(self.n)


@dataclass
class Priced:
    amount: Decimal  # the name exists only for type checkers


@dataclass
class Mode:
    level: Literal[1, 2]


@dataclass
class Node:
    """A recursive dataclass."""

    value: int
    children: list[Node]


class Animal:
    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Dog(Animal):
    pass


class Grid:
    """A numpy-free stand-in for an array: unhashable, elementwise ==, no truth value."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, cells: list[float]) -> None:
        self.cells = cells

    def __eq__(self, other: object) -> Grid:  # type: ignore[override]
        return Grid([float(cell == other) for cell in self.cells])

    def __bool__(self) -> bool:
        raise ValueError("the truth value of a Grid is ambiguous")

    def __len__(self) -> int:
        return len(self.cells)

    def __repr__(self) -> str:
        return f"Grid({self.cells})"


# Plain functions -----------------------------------------------------------------------


@sematic.func
def add(a: float, b: float) -> float:
    CALLS.append("add")
    return a + b


@sematic.func
def type_name(x: float) -> str:
    """What the function body receives."""
    CALLS.append("type_name")
    return type(x).__name__


@sematic.func
def type_name_optional(x: float | None) -> str:
    return type(x).__name__


@sematic.func
def takes_int(x: int) -> int:
    CALLS.append("takes_int")
    return x


@sematic.func
def takes_bool(flag: bool) -> bool:
    return flag


@sematic.func
def takes_str(s: str) -> str:
    return s


@sematic.func
def takes_optional_int(x: int | None) -> str:
    return repr(x)


@sematic.func
def takes_typing_optional_int(x: Optional[int]) -> str:  # noqa: UP007 - typing spelling on purpose
    return repr(x)


@sematic.func
def takes_any(x: Any) -> str:
    return repr(x)


@sematic.func
def takes_animal(animal: Animal) -> str:
    return type(animal).__name__


@sematic.func
def takes_dog(dog: Dog) -> str:
    return type(dog).__name__


@sematic.func
def takes_date(day: datetime.date) -> str:
    return day.isoformat()


@sematic.func
def total(xs: list[int]) -> int:
    return sum(xs)


@sematic.func
def total_floats(xs: list[float]) -> float:
    return float(sum(xs))


@sematic.func
def total_nested(xss: list[list[int]]) -> int:
    return sum(sum(xs) for xs in xss)


@sematic.func
def total_or_none(xs: list[int] | None) -> int:
    return sum(xs or [])


@sematic.func
def length_of_any(xs: Any) -> int:
    return len(xs)


@sematic.func
def join_pair(pair: tuple[int, str]) -> str:
    return f"{pair[0]}:{pair[1]}"


@sematic.func
def sum_values(d: dict[str, int]) -> int:
    return sum(d.values())


@sematic.func
def sum_variadic(t: tuple[int, ...]) -> int:
    return sum(t)


# Producers: declared return types for futures ------------------------------------------


@sematic.func
def make_str() -> str:
    CALLS.append("make_str")
    return "text"


@sematic.func
def make_int() -> int:
    CALLS.append("make_int")
    return 7


@sematic.func
def make_bool() -> bool:
    return True


@sematic.func
def make_float() -> float:
    return 0.5


@sematic.func
def make_optional_int() -> Optional[int]:  # noqa: UP007 - typing spelling on purpose
    return 3


@sematic.func
def make_int_list() -> list[int]:
    return [1, 2]


@sematic.func
def make_dog() -> Dog:
    return Dog()


@sematic.func
def make_animal() -> Animal:
    return Dog()


@sematic.func
def make_datetime() -> datetime.datetime:
    return datetime.datetime(2024, 5, 6, 7, 8)


@sematic.func
def make_any(value: Any) -> Any:
    return value


@sematic.func
def make_segment() -> Segment:
    return Segment(Point(0.0, 0.0), Point(1.0, 1.0), "diagonal")


@sematic.func
def make_int_box() -> Box[int]:
    return Box(5)


@sematic.func
def make_int_shelf() -> Shelf[int]:
    return Shelf([1, 2], 3)


@sematic.func
def make_pair() -> tuple[int, str]:
    return 4, "four"


# Output checks -------------------------------------------------------------------------


@sematic.func
def int_returns_str(x: int) -> int:
    return str(x)  # type: ignore[return-value]


@sematic.func
def float_returns_int(x: int) -> float:
    return x


@sematic.func
def list_returns_bad_item(x: int) -> list[int]:
    return [x, str(x)]  # type: ignore[list-item]


@sematic.func
def none_returns_int(x: int) -> None:
    return x  # type: ignore[return-value]


@sematic.func
def int_returns_str_future(x: int) -> int:
    return make_str()  # type: ignore[return-value]


@sematic.func
def str_list_returns_int_futures(x: int) -> list[str]:
    return [make_int(), make_int()]  # type: ignore[list-item]


@sematic.func
def int_returns_any_future(value: Any) -> int:
    return make_any(value)  # type: ignore[no-any-return]


# One echo_* and one emit_* function per supported annotation ---------------------------


@sematic.func
def echo_none(value: None) -> None:
    return value


@sematic.func
def emit_none(value: Any) -> None:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_bool(value: bool) -> bool:
    return value


@sematic.func
def emit_bool(value: Any) -> bool:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_int(value: int) -> int:
    return value


@sematic.func
def emit_int(value: Any) -> int:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_float(value: float) -> float:
    return value


@sematic.func
def emit_float(value: Any) -> float:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_str(value: str) -> str:
    return value


@sematic.func
def emit_str(value: Any) -> str:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_bytes(value: bytes) -> bytes:
    return value


@sematic.func
def emit_bytes(value: Any) -> bytes:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_datetime(value: datetime.datetime) -> datetime.datetime:
    return value


@sematic.func
def emit_datetime(value: Any) -> datetime.datetime:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_date(value: datetime.date) -> datetime.date:
    return value


@sematic.func
def emit_date(value: Any) -> datetime.date:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_enum(value: Color) -> Color:
    return value


@sematic.func
def emit_enum(value: Any) -> Color:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_dataclass(value: Point) -> Point:
    return value


@sematic.func
def emit_dataclass(value: Any) -> Point:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_nested_dataclass(value: Segment) -> Segment:
    return value


@sematic.func
def emit_nested_dataclass(value: Any) -> Segment:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_frozen_dataclass(value: FrozenTag) -> FrozenTag:
    return value


@sematic.func
def emit_frozen_dataclass(value: Any) -> FrozenTag:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_generic_dataclass(value: Box[int]) -> Box[int]:
    return value


@sematic.func
def emit_generic_dataclass(value: Any) -> Box[int]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_list(value: list[int]) -> list[int]:
    return value


@sematic.func
def emit_list(value: Any) -> list[int]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_typing_list(value: List[int]) -> List[int]:  # noqa: UP006 - typing spelling on purpose
    return value


@sematic.func
def emit_typing_list(value: Any) -> List[int]:  # noqa: UP006
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_tuple(value: tuple[int, str]) -> tuple[int, str]:
    return value


@sematic.func
def emit_tuple(value: Any) -> tuple[int, str]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_typing_tuple(value: Tuple[int, str]) -> Tuple[int, str]:  # noqa: UP006
    return value


@sematic.func
def emit_typing_tuple(value: Any) -> Tuple[int, str]:  # noqa: UP006
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_variadic_tuple(value: tuple[int, ...]) -> tuple[int, ...]:
    return value


@sematic.func
def emit_variadic_tuple(value: Any) -> tuple[int, ...]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_dict(value: dict[str, int]) -> dict[str, int]:
    return value


@sematic.func
def emit_dict(value: Any) -> dict[str, int]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_typing_dict(value: Dict[str, int]) -> Dict[str, int]:  # noqa: UP006
    return value


@sematic.func
def emit_typing_dict(value: Any) -> Dict[str, int]:  # noqa: UP006
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_set(value: set[int]) -> set[int]:
    return value


@sematic.func
def emit_set(value: Any) -> set[int]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_optional(value: Optional[int]) -> Optional[int]:  # noqa: UP007
    return value


@sematic.func
def emit_optional(value: Any) -> Optional[int]:  # noqa: UP007
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_pipe_none(value: int | None) -> int | None:
    return value


@sematic.func
def emit_pipe_none(value: Any) -> int | None:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_union(value: Union[int, str]) -> Union[int, str]:  # noqa: UP007
    return value


@sematic.func
def emit_union(value: Any) -> Union[int, str]:  # noqa: UP007
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_literal(value: Literal["train", "test"]) -> Literal["train", "test"]:
    return value


@sematic.func
def emit_literal(value: Any) -> Literal["train", "test"]:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_any(value: Any) -> Any:
    return value


@sematic.func
def echo_user_class(value: Animal) -> Animal:
    return value


@sematic.func
def emit_user_class(value: Any) -> Animal:
    return value  # type: ignore[no-any-return]


@sematic.func
def echo_custom_class(value: Grid) -> Grid:
    return value


@sematic.func
def emit_custom_class(value: Any) -> Grid:
    return value  # type: ignore[no-any-return]
