"""The drafts engine: staged, copy-on-write drafts of the next version, and their commit.

No FUSE here: `artifactfs commit` uses this room with no mount running, and the mount's draft
callbacks (`artifactfs.fusefs.draft_ops`) are a thin FUSE vocabulary over it. Both go through
one interface, `workspace.DraftWorkspace` (the drafts of a write dir); it hands out `Draft`s.

One draft: view (what it shows, what it would commit), draft (its mutations), metadata (modes,
owners, times, xattrs), staging (the staged layer: a real directory on disk) with hostfs (the
system calls os lacks), overlay (the stored layer), state (its crash-safe record), binding (the
registry it belongs to), contents (manifest and diff), options (option attributes as text). A
write dir: layout (where drafts live), namespace (entities and projects made for drafts),
commit (draft -> version), recovery (interrupted commits), commit_requests (one owner;
`artifactfs commit` to a running mount), ledger (counters, progress log), errors.
"""
