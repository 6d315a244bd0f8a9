"""The mount: the FUSE front end over the resolver (read side) and the drafts engine (write side).

Routing and lifecycle: operations (the mfusepy callbacks; which side answers each path),
writes (the changing callbacks: drafts only), guard (the errno policy), tree (path routing).
Files are opened without upcalls (the kernel's no_open, see operations): reads and writes come
by path. Read side: versions (aliases and versions: lookup, listing, read), catalog (namespace
cache over the registry; version indexes mmapped), openfiles and fusebuf (held fds per path,
fd-backed replies), attrs (stat, statfs and xattr renderings), control (`.artifactfs/`),
stats. Drafts: draft_tree (the seam protocol), draft_ops (the draft callbacks over
`artifactfs.drafts.workspace`), draft_fds (draft files' fds by path), writers (who has a draft
file open for writing, from /proc). Process: mount (start, stop; the public face), serve (the
FUSE process), mountpoint (options and checks). libfuse_abi: what the mount declares about
libfuse's C ABI (layouts and signatures per loaded version; the fast paths it cannot vouch for
stay off).
"""

from artifactfs.fusefs.libfuse_abi import choose_libfuse

# Before any module of the mount imports mfusepy (which loads a libfuse when imported): always
# libfuse 3 unless a mount asks otherwise (check_fuse), even where libfuse2 is installed too.
choose_libfuse()
