"""Gradio's import without its type-stub writer: the largest single cost of the app's start.

Every time a Gradio component class is defined (about 60 at `import gradio`), Gradio's
metaclass reads and parses that component's source file to write or refresh a `.pyi` type stub
beside it (`gradio.component_meta.create_or_modify_pyi`), an aid for editors of Gradio itself.
On this project's 2-core machine that is 1.3 s of the 3.3 s `import gradio` takes, paid by
every start of the app, every command that serves a page and every test that builds one. The
installed wheel already ships its stubs, and the app never reads them.

`skip_stub_writer()` installs an import hook that replaces that one function with a no-op as
`gradio.component_meta` is loaded, before any component class exists. It must run before the
first `import gradio` (ui/__init__.py calls it); afterwards it changes nothing.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

_MODULE = "gradio.component_meta"
_FUNCTION = "create_or_modify_pyi"


def _no_stub(*_args: Any, **_kwargs: Any) -> None:
    """The stub writer's stand-in: the component class is left as Gradio defined it."""


class _StubWriterHook(importlib.abc.MetaPathFinder):
    """Finds `gradio.component_meta` with the normal finders, then patches it once executed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)  # once: the normal finders find the real module below
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            if callable(getattr(module, _FUNCTION, None)):  # a Gradio without it: nothing to skip
                setattr(module, _FUNCTION, _no_stub)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def skip_stub_writer() -> None:
    """Make the coming `import gradio` skip the stub writer (no effect once Gradio is loaded)."""
    if _MODULE in sys.modules or any(isinstance(f, _StubWriterHook) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _StubWriterHook())
