"""The mount: the FUSE front end over the resolver (read side) and the drafts engine (write side).

Routing and lifecycle: operations (the mfusepy callbacks; which side answers each path),
writes (the changing callbacks: drafts only), guard (the errno policy), tree (path routing).
Read side: versions (aliases and versions: lookup, listing, open, read), catalog (namespace
cache over the registry; version indexes mmapped), openfiles and fusebuf (read handles,
fd-backed replies), attrs (stat, statfs and xattr renderings), control (`.artifactfs/`),
stats. Drafts: draft_tree (the seam protocol), draft_ops (the draft callbacks over
`artifactfs.drafts.workspace`), draft_files (open draft files). Process: mount (start, stop;
the public face), serve (the FUSE process), mountpoint (options and checks).
"""
