"""Named choices: the one mechanism behind every registry of the package.

Every choice a config names (a model source, an image-set type, a loss, an optimizer, a
schedule, a starting point, a method preset, a statistic, a comparison, a figure, a
workflow rule's job) lives in a :class:`Registry`, filled where the choice is implemented::

    LOSSES = Registry("loss")

    @LOSSES.register("normalized_l2")
    def normalized_l2(candidate, reference): ...

and is looked up with ``LOSSES[name]``, whose error lists the valid names. Names that come
from the config rather than from code (configured models, generators, methods, batches) are
looked up with :func:`lookup`, which raises the same kind of error. The config schema's enums
are checked against these registries by a test (:func:`metamers.config.schema_enums`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def lookup(
    mapping: Mapping[str, T], name: Any, kind: str, error: type[Exception] = KeyError, listed: str = "valid",
    context: str = "",
) -> T:
    """``mapping[name]``, or ``error("<context>unknown <kind> <name>; <listed>: <the names>")``.

    Parameters
    ----------
    mapping
        The names and what they stand for.
    name
        The name to look up.
    kind
        What a name is, for the message ("source", "image set type", "generator").
    error
        The exception class raised for an unknown name.
    listed
        How the names are introduced: ``valid`` for choices in code, ``configured`` for names
        that the config defines.
    context
        What the message starts with, naming where the name was given (``"model 'm': "``).
    """
    if name not in mapping:
        names = ", ".join(str(n) for n in mapping) or "(none)"
        raise error(f"{context}unknown {kind} {name!r}; {listed}: {names}")
    return mapping[name]


class Registry(Mapping[str, T], Generic[T]):
    """Name -> implementation, in registration order, with one lookup error.

    Parameters
    ----------
    kind
        What the names are ("loss", "optimizer"), for error messages.
    error
        The exception raised for an unknown name (:class:`KeyError` by default).
    """

    def __init__(self, kind: str, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, name: str, value: T | None = None) -> Any:
        """Register ``value`` under ``name``; without ``value``, a decorator that registers what
        it decorates (and returns it unchanged). A name is registered once."""
        if value is not None:
            self._add(name, value)
            return value

        def decorator(obj: T) -> T:
            self._add(name, obj)
            return obj

        return decorator

    def _add(self, name: str, value: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = value

    def __getitem__(self, name: str) -> T:
        return lookup(self._items, name, self.kind, self.error)

    def lookup(self, name: str, context: str = "") -> T:
        """``self[name]``, the error message starting with ``context`` (``"method 'm': "``)."""
        return lookup(self._items, name, self.kind, self.error, context=context)

    @contextlib.contextmanager
    def override(self, name: str, value: T) -> Iterator[T]:
        """Within the block, ``name`` stands for ``value`` (registered anew, or replacing the
        registered one); afterwards the registry is as it was. For tests and experiments."""
        missing = object()
        old = self._items.get(name, missing)
        self._items[name] = value
        try:
            yield value
        finally:
            if old is missing:
                del self._items[name]
            else:
                self._items[name] = old

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` when it is not registered (no error)."""
        return self._items.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
