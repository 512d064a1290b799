"""What a ``module:attribute`` path names: how a user's plug-ins (teachers, environments, contextual specs) are
found, by the teacher and environment registries alike."""

from __future__ import annotations

import importlib
from typing import Any


def load_object(path: str) -> Any:
    """The object a ``module:attribute`` path names (dotted attributes allowed).

    :raises LookupError: the module does not import or the attribute does not exist (message says which)
    """
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise LookupError(str(exc)) from exc
    return obj
