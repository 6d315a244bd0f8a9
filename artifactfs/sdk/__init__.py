"""The W&B-style SDK (mirrors `wandb/sdk`): `Artifact`, runs (`init`, `Run`, `log`), the public
`Api`, `Table`. Users reach it through `import artifactfs as wandb`; these modules are where it
lives, so the package shows its parts (SDK, fsspec front end, CLI, web page, shared base)."""
