"""Extended attributes of draft paths: user xattrs kept like a disk's, commit options on the side.

Three kinds of names, so a copy out of a version can never set commit options by accident:

* `user.artifact.commit.{type,description,metadata,aliases}` on the draft directory: the commit
  options (drafts/options.py parses them; `artifactfs commit` flags win).
* any other `user.artifact.*`: the informational attributes versions show (`type`, `aliases`,
  `digest`, `size`, ...). `cp -a` and `rsync -aX` out of a version copy them; on a draft path
  they are accepted and ignored (inert), so such a copy neither fails nor makes the new version
  inherit the old one's aliases, type or description. The draft directory shows its own
  informational `user.artifact.base_version`.
* every other `user.*` name: a plain user xattr of the staged entry, kept by the local file
  system while the draft lives (not part of a version). Other namespaces (`security.*`,
  `trusted.*`, `system.*`) are not the user's to set through a daemon that may run as root:
  reads find nothing (ENODATA), writes are EOPNOTSUPP.

Apart from draft_ops.py so the naming rules, and only they, are read here.
"""

from __future__ import annotations

import errno
import logging

from artifactfs.drafts.workspace import Draft, DraftWorkspace
from artifactfs.fusefs.draft_fds import oserr

log = logging.getLogger(__name__)

INFO_PREFIX = "user.artifact."
OPTION_PREFIX = "user.artifact.commit."


class DraftXattrs:
    """getxattr/listxattr/setxattr/removexattr of one workspace's draft paths."""

    def __init__(self, workspace: DraftWorkspace) -> None:
        self.workspace = workspace

    def _option(self, rel: str, name: str) -> str | None:
        """The commit option `name` sets on the draft directory (None: not an option)."""
        if rel or not name.startswith(OPTION_PREFIX):
            return None
        key = name[len(OPTION_PREFIX) :]
        return key if key in self.workspace.option_keys else None

    def _info(self, draft: Draft) -> dict[str, bytes]:
        """Informational attributes of the draft directory (base_version), by full name."""
        values = self.workspace.option_values(draft)
        return {
            (INFO_PREFIX if k == "base_version" else OPTION_PREFIX) + k: v
            for k, v in values.items()
        }

    def get(self, draft: Draft, rel: str, name: str, path: str) -> bytes:
        draft.node(rel)
        if name.startswith(INFO_PREFIX):
            found = self._info(draft).get(name) if not rel else None
            if found is None:
                raise oserr(errno.ENODATA, path)
            return found
        if not name.startswith("user."):
            raise oserr(errno.ENODATA, path)
        return draft.getxattr(rel, name)

    def list(self, draft: Draft, rel: str) -> list[str]:
        names = draft.listxattr(rel)
        if not rel:
            names += list(self._info(draft))
        return names

    def set(self, draft: Draft, rel: str, name: str, value: bytes, flags: int, path: str) -> None:
        key = self._option(rel, name)
        if key is not None:
            self.workspace.set_option(draft, key, value, label=name)
            return
        if name.startswith(INFO_PREFIX):
            draft.node(rel)
            log.debug("%s: %s is informational, ignored on a draft", path, name)
            return
        if not name.startswith("user."):
            raise oserr(errno.EOPNOTSUPP, path, f"{name}: only user.* attributes in drafts")
        draft.setxattr(rel, name, value, flags)

    def remove(self, draft: Draft, rel: str, name: str, path: str) -> None:
        key = self._option(rel, name)
        if key is not None:
            if self._info(draft).get(name) is None:
                raise oserr(errno.ENODATA, path)
            self.workspace.clear_option(draft, key)
            return
        if name.startswith(INFO_PREFIX) or not name.startswith("user."):
            raise oserr(errno.ENODATA, path)
        draft.removexattr(rel, name)
