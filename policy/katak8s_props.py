"""Reading policy props without tripping over unknowns: shared by the katak8s policy modules.

During a preview, values that depend on resources not yet created are unknown and
reading one raises UnknownValueError; iterating the keys never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ReportViolation = Callable[..., None]


def _keys(props: Mapping[str, Any]) -> set[str]:
    """The keys present, without reading values (a value may be unknown in preview)."""
    return set(iter(props))


def _get(props: Mapping[str, Any], *path: str) -> Any:
    """props[path...] or None when a key on the way is absent (unknown values still raise)."""
    value: Any = props
    for key in path:
        if not isinstance(value, Mapping) or key not in _keys(value):
            return None
        value = value[key]
    return value
