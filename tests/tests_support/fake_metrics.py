"""A ``ray.util.metrics``-shaped fake that records calls, so metric logic is tested without Ray."""

from __future__ import annotations

from types import SimpleNamespace


def fake_factory(store: dict[str, list[tuple[str, float, dict[str, str]]]]) -> SimpleNamespace:
    """``ray.util.metrics``-shaped constructors that record calls into ``store``.

    Each recorded call is ``(operation, value, tags)`` under the metric's name.
    """

    class _Fake:
        def __init__(self, name: str, description: str = "", tag_keys: tuple = (),
                     boundaries: list[float] | None = None) -> None:
            self.name, self.tag_keys = name, tuple(tag_keys)
            store.setdefault(name, [])

        def _rec(self, op: str, value: float, tags: dict[str, str]) -> None:
            if set(tags) != set(self.tag_keys):
                raise ValueError(f"{self.name}: tags {sorted(tags)} != {sorted(self.tag_keys)}")
            if op == "inc" and value <= 0:
                raise ValueError("value must be >0")
            store[self.name].append((op, value, dict(tags)))

        def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
            self._rec("inc", value, tags or {})

        def set(self, value: float, tags: dict[str, str] | None = None) -> None:
            self._rec("set", value, tags or {})

        def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
            self._rec("observe", value, tags or {})

    return SimpleNamespace(Counter=_Fake, Gauge=_Fake, Histogram=_Fake)
