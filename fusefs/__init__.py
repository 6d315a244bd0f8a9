"""The mount: the registry as a read-only tree of versions, with drafts as the write side.

Modules: drafts_api (the seam with drafts), index (compact on-disk manifest index), catalog
(namespace cache over the registry), tree (path routing), control (`.artifactfs/`), operations
(mfusepy callbacks), mount (start/stop).
"""
