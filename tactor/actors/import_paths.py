"""How a child process finds what its parent names: by import path, never by pickle.

A class is named by its module and qualified name (``module:Qual.Name``); an
object — a :class:`~tactor.codecs.TypeCodec`, a :class:`~tactor.codecs.Codec`
— by the module-level name that holds it: a global (``module:NAME``) or an
item of a global list or tuple (``module:NAME[2]``), found by identity among
the modules loaded. The child imports the module and takes the same name, so
what it gets is made by the same code. The parent's script is ``__main__``: the
child runs it as ``__mp_main__`` (its ``if __name__ == "__main__":`` block does
not run), as multiprocessing does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["class_path", "main_script", "object_path", "resolve"]

_ITEM = re.compile(r"(.*)\[(\d+)\]")


def main_script() -> str | None:
    """The path of the script this process runs, or None (an interactive session, ``-c``)."""
    main = getattr(sys.modules["__main__"], "__file__", None)
    return None if main is None else os.path.abspath(main)


def class_path(cls: type) -> str | None:
    """``module:Qual.Name`` of ``cls``, or None when a child could not import it (a class
    made in a function, or in an interactive session)."""
    if "<locals>" in cls.__qualname__ or (cls.__module__ == "__main__" and main_script() is None):
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def object_path(obj: object, near: Iterable[str] = ()) -> str | None:
    """The module-level name that holds ``obj`` (by identity), or None if none does.

    The modules named ``near`` are looked in first, then the script, then every
    module loaded, in the order they were.
    """
    for module in _modules(near):
        try:
            names = list(vars(module).items())
        except TypeError:  # not a module after all (sys.modules may hold anything)
            continue
        for name, value in names:
            if value is obj:
                return f"{module.__name__}:{name}"
            if type(value) in (list, tuple):
                for index, item in enumerate(value):
                    if item is obj:
                        return f"{module.__name__}:{name}[{index}]"
    return None


def _modules(near: Iterable[str]) -> Iterator[types.ModuleType]:
    seen: set[str] = set()
    everything = list(sys.modules.items())
    first = [*near, "__main__"]
    for name, module in [*((n, sys.modules.get(n)) for n in first), *everything]:
        if module is None or name in seen or name == "__mp_main__":
            continue
        if name == "__main__" and main_script() is None:
            continue  # an interactive session: a child cannot import what it holds
        seen.add(name)
        yield module


def resolve(path: str, main: str | None = None) -> Any:
    """What ``path`` (``module:Qual.Name`` or ``module:NAME[i]``) names, in a child; the
    module ``__main__`` is the script ``main``. Raises ImportError saying why."""
    module_name, _, qualname = path.partition(":")
    index = None
    item = _ITEM.fullmatch(qualname)
    if item is not None:
        qualname, index = item[1], int(item[2])
    if module_name == "__main__":
        if main is None:
            raise ImportError(f"{path}: the parent's script is not known")
        target: Any = _run_main(main)
    else:
        target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ImportError(f"module {module_name!r} has no {qualname!r}")
    if index is not None:
        if not (isinstance(target, list | tuple) and index < len(target)):
            raise ImportError(f"{module_name}:{qualname} has no item {index}")
        target = target[index]
    return target


def _run_main(path: str) -> types.ModuleType:
    """Run the parent's script as ``__mp_main__``, once (its ``__main__`` block does not run)."""
    module = sys.modules.get("__mp_main__")
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location("__mp_main__", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__mp_main__"] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules["__mp_main__"]
        raise ImportError(
            f"running the script {path} to find it raised {type(exc).__name__}: {exc} (a "
            'child runs the script without its `if __name__ == "__main__":` block: what '
            "starts the program, asyncio.run(...) or a system, belongs under it)"
        ) from exc
    return module
