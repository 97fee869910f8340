"""The standard library's ``mailbox`` module, loaded explicitly.

Our ``mailbox`` app shadows it for every process started from the repository root (the root is
first on ``sys.path``), so ``import mailbox`` gives the app. Code that needs the mbox/Maildir
readers calls ``stdlib_mailbox()`` instead.
"""

import functools
import importlib.util
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

_MODULE_NAME = "_stdlib_mailbox"


@functools.cache
def stdlib_mailbox() -> ModuleType:
    path = Path(sysconfig.get_paths()["stdlib"]) / "mailbox.py"
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"standard library mailbox module not found at {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered under a private name so pickling and introspection find it.
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module
