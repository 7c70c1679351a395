"""One registry type for every part chosen by name (surrogates, readouts, neuron models,
kernels, data sets, figures; later learning rules, losses, optimisers).

A :class:`Registry` maps names to objects.  Looking up an unknown name raises one
:class:`~spikegrad.errors.SpikegradError` that lists the choices and suggests the closest
name; registering a name twice raises too.  Registration order is kept (kernel candidates
are tried in that order); :meth:`Registry.names` lists them sorted for messages.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import SpikegradError

T = TypeVar("T")
_MISSING = object()


class Registry(Generic[T]):
    """Named parts of one kind, e.g. ``Registry("surrogate")``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; a name can be registered once."""
        if not isinstance(name, str) or not name:
            raise SpikegradError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items:
            raise SpikegradError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("name")``."""
        return lambda item: self.add(name, item)

    def get(self, name: str, default=_MISSING) -> T:
        """The part called ``name``, or an error listing the choices and the closest name
        (or ``default``, when given)."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            if default is not _MISSING:
                return default
            raise self.unknown(name) from None

    __getitem__ = get

    def __setitem__(self, name: str, item: T) -> None:
        """Replace (or add) a part: for tests and plug-ins that swap an implementation."""
        self._items[name] = item

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    def unknown(self, name, what: str | None = None, also: tuple[str, ...] = ()) -> SpikegradError:
        """The error for a name that is not registered; ``what`` names the field or flag it
        came from (default: the kind), ``also`` lists choices accepted besides the parts."""
        choices = [*also, *self.names()]
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        return SpikegradError(f"unknown {what or self.kind} {name!r}{hint}; choose one of: {', '.join(choices)}")

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, part) in registration order."""
        return list(self._items.items())

    def remove(self, name: str) -> T:
        """Unregister ``name`` (for tests and plug-ins that clean up after themselves)."""
        try:
            return self._items.pop(name)
        except KeyError:
            raise self.unknown(name) from None

    def __contains__(self, name) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
