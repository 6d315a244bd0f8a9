"""The mount: the registry as a read-only tree of versions, with drafts as the write side.

Modules: drafts_api (the seam with drafts), catalog (namespace cache over the registry; versions
are listed through resolver.manifest_index, mmapped), tree (path routing), control (`.artifactfs/`), operations
(mfusepy callbacks), mount (start/stop).
"""
