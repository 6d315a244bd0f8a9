"""Import one module under another name, as the same module object.

Two jobs use it: the old import paths of modules that moved into rooms (`artifactfs.fsspec_fs`
is `artifactfs.fsspec.filesystem`; installed entry points and user code name the old paths), and
`install_as_wandb()`, which answers `import wandb.sdk.lib` with `artifactfs.sdk.lib`.

An alias is a meta path finder whose loader hands back the already imported target module, so
`sys.modules` holds one object under both names (module state such as the current run is never
split between two copies, which a second import of the same file would do). The same trick is
what `six.moves` and PyMySQL's `install_as_MySQLdb()` rely on.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
from collections.abc import Callable, Sequence
from types import ModuleType

Lookup = Callable[[str], "str | None"]
"""Maps an import name to the module it aliases, None when the finder does not handle it."""


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        # The import system keeps an existing module's __name__ and __spec__ (override=False),
        # so the target stays itself; only sys.modules gains the alias name.
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module was executed under its own name."""


class AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves the names `lookup` maps; leaves every other name to the next finder."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        target_name = self.lookup(fullname)
        if target_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target_name))


def table_lookup(table: dict[str, str]) -> Lookup:
    """A lookup from a fixed table of old name -> new name."""
    return table.get
