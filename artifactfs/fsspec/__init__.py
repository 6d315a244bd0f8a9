"""The fsspec front end: `artifact://entity/project/name:alias/path` for pandas, datasets, pyarrow
and universal_pathlib (`filesystem` the file system, `paths` its names, `open_file` an open file,
`upath` the UPath class). Inside this package `import fsspec` is still the fsspec library
(absolute imports)."""
