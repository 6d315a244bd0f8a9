"""The drafts engine: staged, copy-on-write drafts of the next version, and their commit.

No FUSE here: `artifactfs commit` uses this room with no mount running, and the mount's draft
callbacks (`artifactfs.fusefs.draft_ops`) are a thin FUSE vocabulary over it.
"""
