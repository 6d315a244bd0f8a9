"""The registry's key layout (DESIGN §4), in one place.

    blobs/md5/<2 hex>/<30 hex>                       content, written once, never changed
    manifests/md5/<2 hex>/<30 hex>.json              W&B manifest v1 JSON, one per distinct manifest
    manifests/md5/<2 hex>/<30 hex>.idx               its compact index, for manifests of 100k+ entries
    blockdigests/sha256/<2 hex>/<62 hex>.json        per-block SHA-256 of a version's big entries
                                                     (resolver/blockrecord.py), content-addressed
    registry/<entity>/<project>/<name>/collection.json              type, created_at (create-only)
    registry/<entity>/<project>/<name>/versions/v<N>.json           version record (create-only)
    registry/<entity>/<project>/<name>/aliases/<alias>.json         {"version": N or null when removed} (CAS)
    registry/<entity>/<project>/<name>/digests/<digest>.json        {"version": N} (create-only)
    registry/<entity>/<project>/<name>/used_by/v<N>/<run id>.json   lineage (create-only)
    registry/<entity>/<project>/<name>/index/p<K>.json              listing index, v<250K>.. (CAS)
    registry/<entity>/<project>/<name>/links/<source id>.json       portfolio: which version links a
                                                                    source (create-only; CAS to unlink)
    registry/<entity>/<project>/<name>/linked_to/v<N>/<entity>/<project>/<portfolio>.json
                                                                    source: where it is linked (create-only)
    runs/<entity>/<project>/<run id>.json                           run record (CAS by its run)
    runs/<entity>/<project>/<run id>/history/<seq>.jsonl            history rows, one chunk per flush
                                                                    (create-only; a run's history costs
                                                                    O(rows) writes in total)

Every component is a validated name, so keys hold no `//`, spaces or leading dots.
"""

from __future__ import annotations

import re

REGISTRY = "registry"
BLOCK_DIGESTS = "blockdigests/sha256/"
_MANIFEST_KEY = re.compile(r"manifests/md5/[0-9a-f]{2}/[0-9a-f]{30}\.json")


def is_manifest_key(key: object) -> bool:
    """True for a key `manifest_key()` makes. A version record names its manifest by key, and
    records come from the store (so may be hostile): a reader follows only keys of this form,
    never an absolute path (`/etc/passwd`), a `..` or a key outside `manifests/`."""
    return isinstance(key, str) and _MANIFEST_KEY.fullmatch(key) is not None


def blob_key(md5_hex: str) -> str:
    return f"blobs/md5/{md5_hex[:2]}/{md5_hex[2:]}"


def manifest_key(md5_hex: str) -> str:
    return f"manifests/md5/{md5_hex[:2]}/{md5_hex[2:]}.json"


def manifest_index_key(manifest_key: str) -> str:
    """The prebuilt compact index of a big manifest (resolver/manifest_index.py), beside it."""
    return manifest_key.removesuffix(".json") + ".idx"


def block_digests_key(sha256_hex: str) -> str:
    """A block-digest record (resolver/blockrecord.py), named by its own SHA-256."""
    return f"{BLOCK_DIGESTS}{sha256_hex[:2]}/{sha256_hex[2:]}.json"


def entity_prefix() -> str:
    return f"{REGISTRY}/"


def project_prefix(entity: str) -> str:
    return f"{REGISTRY}/{entity}/"


def collections_prefix(entity: str, project: str) -> str:
    return f"{REGISTRY}/{entity}/{project}/"


def collection_prefix(entity: str, project: str, name: str) -> str:
    return f"{REGISTRY}/{entity}/{project}/{name}/"


def collection_key(entity: str, project: str, name: str) -> str:
    return collection_prefix(entity, project, name) + "collection.json"


def versions_prefix(entity: str, project: str, name: str) -> str:
    return collection_prefix(entity, project, name) + "versions/"


def version_key(entity: str, project: str, name: str, version: int) -> str:
    return f"{versions_prefix(entity, project, name)}v{version}.json"


def aliases_prefix(entity: str, project: str, name: str) -> str:
    return collection_prefix(entity, project, name) + "aliases/"


def version_page_key(entity: str, project: str, name: str, page: int) -> str:
    """A page of the collection's listing index (resolver/registry/listing.py)."""
    return f"{collection_prefix(entity, project, name)}index/p{page}.json"


_KEY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def encode_alias(alias: str) -> str:
    """An alias as one key component: letters, digits, `_`, `-`, `.` as they are (so every alias
    from before spaces were allowed keeps its key), any other character's UTF-8 bytes as `~XX`
    (DESIGN §4: keys hold no spaces; `~` because `%` would be decoded by HTTP servers serving
    an exported registry)."""
    return "".join(
        c if c in _KEY_SAFE else "".join(f"~{b:02X}" for b in c.encode("utf-8")) for c in alias
    )


def decode_alias(component: str) -> str:
    """The alias encode_alias() turned into `component`."""
    if "~" not in component:
        return component
    out = bytearray()
    i = 0
    while i < len(component):
        if component[i] == "~":
            out.append(int(component[i + 1 : i + 3], 16))
            i += 3
        else:
            out.extend(component[i].encode("utf-8"))
            i += 1
    return out.decode("utf-8")


def alias_key(entity: str, project: str, name: str, alias: str) -> str:
    return f"{aliases_prefix(entity, project, name)}{encode_alias(alias)}.json"


def digest_key(entity: str, project: str, name: str, digest: str) -> str:
    return f"{collection_prefix(entity, project, name)}digests/{digest}.json"


def used_by_prefix(entity: str, project: str, name: str, version: int) -> str:
    return f"{collection_prefix(entity, project, name)}used_by/v{version}/"


def link_key(entity: str, project: str, portfolio: str, source_id: str) -> str:
    return f"{collection_prefix(entity, project, portfolio)}links/{source_id}.json"


def linked_to_prefix(entity: str, project: str, name: str, version: int) -> str:
    return f"{collection_prefix(entity, project, name)}linked_to/v{version}/"


def linked_to_key(
    entity: str, project: str, name: str, version: int, target: tuple[str, str, str]
) -> str:
    return linked_to_prefix(entity, project, name, version) + "/".join(target) + ".json"


def runs_prefix(entity: str, project: str) -> str:
    return f"runs/{entity}/{project}/"


def run_key(entity: str, project: str, run_id: str) -> str:
    return f"runs/{entity}/{project}/{run_id}.json"


def history_prefix(entity: str, project: str, run_id: str) -> str:
    return f"runs/{entity}/{project}/{run_id}/history/"


def history_chunk_key(entity: str, project: str, run_id: str, seq: int) -> str:
    return f"{history_prefix(entity, project, run_id)}{seq:08d}.jsonl"


def parse_history_chunk(name: str) -> int | None:
    """`"00000012.jsonl"` -> 12; anything else -> None."""
    stem = name.removesuffix(".jsonl")
    return int(stem) if stem != name and stem.isdigit() else None


def parse_version_file(name: str) -> int | None:
    """`"v12.json"` -> 12; anything else (temporary files, junk) -> None."""
    if name.startswith("v") and name.endswith(".json") and name[1:-5].isdigit():
        return int(name[1:-5])
    return None
