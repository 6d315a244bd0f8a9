"""Source: https://docs.wandb.ai/models/artifacts/update-an-artifact (all three tabs). The
collections tab calls `api.artifact_collection(type=..., collection=...)`, which W&B's own Api
does not accept; ported with W&B's keyword names `type_name=`, `name=`."""

import warnings

import artifactfs as wandb

# -- setup: an artifact with two versions
for i in range(2):
    with wandb.init(entity="entity", project="project") as run:
        art = wandb.Artifact("artifact", type="dataset", metadata={"oldKey": "old value"})
        with art.new_file("data.txt") as f:
            f.write(f"version {i}")
        run.log_artifact(art, aliases=["alias"] if i == 1 else None)

# -- the docs: during a run
with wandb.init(project="project") as run:
    artifact = run.use_artifact("artifact:alias")
    artifact.description = "a description"
    artifact.save()

# -- the docs: Public API only
api = wandb.Api()

artifact = api.artifact("entity/project/artifact:alias")

# Update the description
artifact.description = "My new description"

# Selectively update metadata keys
artifact.metadata["oldKey"] = "new value"

# Replace the metadata entirely
artifact.metadata = {"newKey": "new value"}

# Add an alias
artifact.aliases.append("best")

# Remove an alias
artifact.aliases.remove("latest")

# Completely replace the aliases
artifact.aliases = ["replaced"]

# Persist all artifact modifications
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    artifact.save()

# -- the docs: with collections
with wandb.init(project="project") as run:
    api = wandb.Api()
    artifact = api.artifact_collection(type_name="dataset", name="artifact")
    artifact.name = "renamed-artifact"
    artifact.description = "This is where you'd describe the purpose of your collection."
    artifact.save()

# -- checks
# 'latest' is the registry's (always the newest version): save() keeps it and says so
assert any("'latest' is managed" in str(w.message) for w in caught)
v1 = wandb.Api().artifact("entity/project/renamed-artifact:replaced")
assert (v1.version, v1.description, v1.metadata) == (
    "v1",
    "My new description",
    {"newKey": "new value"},
)
assert sorted(v1.aliases) == ["latest", "replaced"]
assert not wandb.Api().artifact_exists("entity/project/renamed-artifact:alias")
assert wandb.Api().artifact("entity/project/artifact:latest").version == "v1"  # old name follows
coll = wandb.Api().artifact_collection("dataset", "entity/project/renamed-artifact")
assert coll.description.startswith("This is where")
assert [c.name for c in wandb.Api().artifact_collections("entity/project", "dataset")] == [
    "renamed-artifact"
]
