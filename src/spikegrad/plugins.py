"""Parts from a user's own code: a plugin is a Python module that registers parts on import
(``@register_rule("mine")``, ``@register_surrogate("mine")``, a loss, an optimiser, …), so
that the command line can name them without a file of spikegrad being touched.

The command line loads plugins before it reads any option, from three routes, in this
order (each module once):

1. installed packages that declare an entry point in the group ``spikegrad.plugins``
   (``pyproject.toml``: ``[project.entry-points."spikegrad.plugins"]`` ``mine = "my_pkg.parts"``);
2. the environment variable ``SPIKEGRAD_PLUGINS``: module names or paths of ``.py`` files,
   separated by commas;
3. ``spikegrad --plugin MODULE_OR_FILE`` (repeatable; before the command).

Modules named on the command line are added to ``SPIKEGRAD_PLUGINS`` of the process, so the
processes it starts (sweep workers) load them too.  A run folder records the plugins its
process had loaded (``plugins.json``: module names, files as absolute paths; entry points
are found again by themselves), and reading the run back (evaluate, resume, export, figures)
loads them first.  A plugin that cannot be imported is one error naming the plugin, where
it was named and the first line of what went wrong.  From Python, import the module
yourself, or call :func:`load_plugins`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import SpikegradError

ENTRY_POINT_GROUP = "spikegrad.plugins"
ENV = "SPIKEGRAD_PLUGINS"
RUN_FILE = "plugins.json"              # in a run folder: the plugins its process had loaded
_ENTRY = "entry point "                # key prefix of entry-point plugins (found again by themselves)

# plugin key (a module name, or a file's resolved path) → the imported module
_LOADED: dict[str, ModuleType] = {}


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def load_plugin(spec: str, source: str = "load_plugin") -> ModuleType:
    """Import the plugin ``spec`` (a module name, or the path of a ``.py`` file) once;
    ``source`` says where it was named, for the error."""
    spec = spec.strip()
    if not spec:
        raise SpikegradError(f"an empty plugin name (from {source})")
    if _is_file(spec):
        path = Path(spec).expanduser().resolve()
        key = str(path)
        if key in _LOADED:
            return _LOADED[key]
        if not path.is_file():
            raise SpikegradError(f"plugin {spec!r} (from {source}): no such file {path}")
        name = f"spikegrad_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module        # dataclasses and pickling look the module up by name
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            sys.modules.pop(name, None)
            raise SpikegradError(f"plugin {spec!r} (from {source}) failed: {_first_line(err)}") from None
    else:
        key = spec
        if key in _LOADED:
            return _LOADED[key]
        try:
            module = importlib.import_module(spec)
        except Exception as err:
            raise SpikegradError(f"plugin {spec!r} (from {source}) cannot be imported: {_first_line(err)}") from None
    _LOADED[key] = module
    return module


def _entry_points() -> list:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def env_plugins() -> list[str]:
    """The plugins ``SPIKEGRAD_PLUGINS`` names, in order."""
    return [part.strip() for part in os.environ.get(ENV, "").split(",") if part.strip()]


def load_plugins(command_line: list[str] | tuple[str, ...] = ()) -> None:
    """Load the entry-point plugins, then ``SPIKEGRAD_PLUGINS``'s, then ``command_line``'s.
    The command line's are appended to ``SPIKEGRAD_PLUGINS`` (files as absolute paths) for
    child processes."""
    for ep in _entry_points():
        key = f"{_ENTRY}{ep.name}"
        if key not in _LOADED:
            try:
                _LOADED[key] = ep.load()
            except Exception as err:
                raise SpikegradError(f"plugin {ep.value!r} (entry point {ep.name!r} of group {ENTRY_POINT_GROUP!r}) "
                                     f"cannot be imported: {_first_line(err)}") from None
    named = env_plugins()
    for spec in named:
        load_plugin(spec, ENV)
    for spec in command_line:
        load_plugin(spec, "--plugin")
        spec = spec.strip()
        as_env = str(Path(spec).expanduser().resolve()) if _is_file(spec) else spec
        if as_env not in named:
            named.append(as_env)
    if named:
        os.environ[ENV] = ",".join(named)


def loaded() -> list[str]:
    """The plugins this process loaded by name or file (files as absolute paths), in order:
    what a run folder's ``plugins.json`` records."""
    return [key for key in _LOADED if not key.startswith(_ENTRY)]


def load_recorded(run_dir: str | Path) -> list[str]:
    """Load the plugins a run folder's ``plugins.json`` names (none when it has no such file)."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return []
    try:
        specs = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise SpikegradError(f"{path} is not JSON ({_first_line(err)})") from None
    if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
        raise SpikegradError(f"{path} must hold a JSON list of plugin names, got {type(specs).__name__}")
    for spec in specs:
        load_plugin(spec, str(path))
    return specs
