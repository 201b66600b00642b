"""Imports step, stream and auth files and turns their config into JSON.

A file is imported as a module of a package rooted at the project's PARENT directory, the way Python
would name it if that parent were on sys.path: /x/my-app/steps/orders/create_step.py becomes
`my_app.steps.orders.create_step`, so `from .store import x` and `from ..lib import y` work. The
parent packages are created with their real directory as __path__, so every other submodule resolves
through the normal path finder. Step files are compiled from source on every load (never from a
stale .pyc), which makes a second load a fresh import for dev reload.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import inspect
import keyword
import linecache
import math
import os
import re
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from . import dialect

_OURS = "__steppe_package__"  # marks the synthetic packages this loader created


class LoadError(Exception):
    """The file imported but does not have what its kind needs; `type` names the problem."""


@dataclass(slots=True)
class LoadedFile:
    path: str
    kind: str
    module: ModuleType
    config: dict[str, Any]
    handler: Callable[..., Any] | None = None
    middleware: list[Callable[..., Any]] = field(default_factory=list)
    can_access: Callable[..., Any] | None = None
    authenticate: Callable[..., Any] | None = None

    def answer(self) -> dict[str, Any]:
        return {"config": self.config, "handler": self.handler is not None,
                "middleware": len(self.middleware), "canAccess": self.can_access is not None}


def identifier(part: str) -> str:
    name = re.sub(r"\W", "_", part)
    if not name or name[0].isdigit():
        name = "_" + name
    return name + "_" if keyword.iskeyword(name) else name


class Loader:
    def __init__(self, root: str) -> None:
        self.files: dict[str, LoadedFile] = {}
        self.set_root(root)

    def set_root(self, root: str) -> None:
        self.root = os.path.abspath(root)
        if self.root not in sys.path:
            sys.path.insert(0, self.root)  # `import steps.lib` style absolute imports
        self._package: str | None = None

    # -- naming and packages -------------------------------------------------------------------------

    def _root_package(self) -> str:
        if self._package is None:
            base = identifier(os.path.basename(self.root) or "project")
            name = base if not _taken(base, self.root) else "_steppe_" + base
            _ensure_package(name, self.root)
            self._package = name
        return self._package

    def module_name(self, path: str) -> str:
        directory, filename = os.path.split(path)
        stem = filename[:-3] if filename.endswith(".py") else filename
        leaf = identifier(stem)
        if leaf != stem and os.path.exists(os.path.join(directory, leaf + ".py")):
            leaf += "_"  # `a.step.py` beside a real `a_step.py`: keep both importable
        rel = os.path.relpath(directory, self.root)
        if rel == os.curdir:
            return f"{self._root_package()}.{leaf}"
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            # outside the project: its own directory is its package, so sibling imports still work
            package = f"_steppe_ext_{zlib.crc32(directory.encode()):08x}"
            _ensure_package(package, directory)
            return f"{package}.{leaf}"
        package, here = self._root_package(), self.root
        for part in rel.split(os.sep):
            here = os.path.join(here, part)
            child = f"{package}.{identifier(part)}"
            _ensure_package(child, here, package)
            package = child
        return f"{package}.{leaf}"

    # -- loading --------------------------------------------------------------------------------------

    def load(self, path: str, kind: str) -> LoadedFile:
        self.files.pop(path, None)
        dialect.preload()
        module = self._import(os.path.abspath(path))
        if kind == "step":
            loaded = _step(path, module)
        elif kind == "stream":
            loaded = _stream(path, module)
        else:
            loaded = _auth(path, module)
        self.files[path] = loaded
        return loaded

    def _import(self, path: str) -> ModuleType:
        importlib.invalidate_caches()  # helpers created since the last load must be found
        linecache.checkcache(path)  # tracebacks must show the current source
        name = self.module_name(path)
        with open(path, "rb") as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses and pydantic look the module up
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        parent, _, leaf = name.rpartition(".")
        setattr(sys.modules[parent], leaf, module)
        return module


def _taken(name: str, directory: str) -> bool:
    """Would using `name` as the project's package hide a real module of that name?"""
    existing = sys.modules.get(name)
    if existing is not None:
        return not (getattr(existing, _OURS, False) and list(getattr(existing, "__path__", [])) == [directory])
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _ensure_package(name: str, directory: str, parent: str | None = None) -> None:
    if name in sys.modules:
        return
    init = os.path.join(directory, "__init__.py")
    if os.path.isfile(init):
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[directory])
    else:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [directory]
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    setattr(module, _OURS, True)
    sys.modules[name] = module
    if spec.loader is not None:
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    if parent is not None:
        setattr(sys.modules[parent], name.rpartition(".")[2], module)


# -- what each kind of file must define ---------------------------------------------------------------

def _config_dict(module: ModuleType) -> dict[str, Any]:
    config = getattr(module, "config", None)
    if not isinstance(config, Mapping):
        raise LoadError("the file defines no module-level `config` dict")
    return dict(config)


def _function(module: ModuleType, *names: str) -> Callable[..., Any] | None:
    for name in names:
        fn = getattr(module, name, None)
        if fn is not None:
            if not callable(fn):
                raise LoadError(f"`{name}` is not a function")
            return fn  # type: ignore[no-any-return]
    return None


def _runnable(fn: Any, name: str) -> Any:
    """`fn`, unless it is a generator function: called, it would hand back a generator and never run its
    body (the delivery a silent success), so the file fails to load saying so."""
    if fn is None:
        return None
    call = fn if inspect.isroutine(fn) or isinstance(fn, functools.partial) else type(fn).__call__
    if inspect.isasyncgenfunction(call):
        kind = "an async generator"
    elif inspect.isgeneratorfunction(call):
        kind = "a generator"
    else:
        return fn
    raise LoadError(f"`{name}` is {kind} function (it uses `yield`): calling it would never run its body; "
                    "return the value instead of yielding it")


def _step(path: str, module: ModuleType) -> LoadedFile:
    if (one_argument := dialect.config_of(module)) is not None:
        return LoadedFile(path, "step", module, one_argument, _runnable(module.handler, "handler"))
    config = _config_dict(module)
    middleware = config.pop("middleware", None) or []
    if not isinstance(middleware, (list, tuple)) or not all(callable(m) for m in middleware):
        raise LoadError("config.middleware must be a list of functions")
    for i, m in enumerate(middleware):
        _runnable(m, f"config.middleware[{i}]")
    return LoadedFile(path, "step", module, to_json(config, "config"),
                      _runnable(_function(module, "handler"), "handler"), list(middleware))


def _stream(path: str, module: ModuleType) -> LoadedFile:
    config = _config_dict(module)
    can_access = config.pop("canAccess", None)
    if can_access is not None and not callable(can_access):
        raise LoadError("config.canAccess must be a function")
    can_access = _runnable(can_access or _function(module, "canAccess", "can_access"), "canAccess")
    return LoadedFile(path, "stream", module, to_json(config, "config"), can_access=can_access)


def _auth(path: str, module: ModuleType) -> LoadedFile:
    authenticate = _function(module, "authenticate")
    if authenticate is None:
        raise LoadError("the file defines no `authenticate(request)` function")
    return LoadedFile(path, "auth", module, {}, authenticate=_runnable(authenticate, "authenticate"))


# -- config to JSON -----------------------------------------------------------------------------------

_DROP = object()


def to_json(value: Any, where: str) -> Any:
    """Plain JSON from a config: schema classes become JSON Schema, functions are dropped."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LoadError(f"{where} is {value}, which JSON cannot encode")
        return value
    schema = _schema_of(value)
    if schema is not None:
        return to_json(schema, where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(key, str):
                name = key
            elif isinstance(key, int) and not isinstance(key, bool):
                name = str(key)  # responseSchema {200: Model}
            else:
                raise LoadError(f"{where} has a key {key!r} of type {type(key).__name__}; JSON keys are strings")
            converted = to_json(item, f"{where}.{name}")
            if converted is not _DROP:
                out[name] = converted
        return out
    if isinstance(value, (list, tuple)):
        items = (to_json(item, f"{where}[{i}]") for i, item in enumerate(value))
        return [item for item in items if item is not _DROP]
    if callable(value) and not isinstance(value, type):
        return _DROP
    raise LoadError(f"{where} is a {type(value).__name__}, which is not JSON-encodable")


def _schema_of(value: Any) -> Any:
    if isinstance(value, type):
        pydantic2 = getattr(value, "model_json_schema", None)
        if callable(pydantic2):
            return pydantic2()
        pydantic1 = getattr(value, "schema", None)
        if hasattr(value, "__fields__") and callable(pydantic1):
            return pydantic1()
        return None
    if type(value).__name__ == "TypeAdapter" and callable(getattr(value, "json_schema", None)):
        return value.json_schema()
    return None
