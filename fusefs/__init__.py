"""The mount: the FUSE front end over the resolver (read side) and the drafts engine (write side).

Modules: operations (mfusepy callbacks and routing), tree (path routing), catalog (namespace cache
over the registry; versions are listed through resolver.manifest_index, mmapped), openfiles and
fusebuf (read handles, fd-backed replies), control (`.artifactfs/`), draft_tree (the seam with the
drafts side), draft_ops (draft callbacks over `artifactfs.drafts`), mount (start/stop).
"""
