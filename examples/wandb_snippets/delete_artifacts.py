"""Source: https://docs.wandb.ai/models/artifacts/delete-artifacts ("Delete all versions of an
artifact that do not have an alias", "Delete multiple artifact versions with aliases", "Delete an
artifact collection"). The docs' second snippet uses `api` without creating it; ported with
`api = wandb.Api()` first."""

import artifactfs as wandb

# -- setup: five versions of a model, two with aliases; a run that logged a scratch collection
with wandb.init(entity="entity", project="project") as run:
    for i in range(5):
        art = wandb.Artifact("checkpoints", type="model")
        with art.new_file("w.bin", mode="wb") as f:
            f.write(bytes([i]) * 32)
        run.log_artifact(art, aliases=["best"] if i == 1 else None)
with wandb.init(entity="entity", project="project", job_type="scratch") as scratch:
    for i in range(2):
        art = wandb.Artifact("scratch", type="dataset")
        with art.new_file("s.txt") as f:
            f.write(str(i))
        scratch.log_artifact(art)

# -- the docs: delete all versions of an artifact that do not have an alias
# Provide your entity and a project name when you
# use wandb.Api methods.
api = wandb.Api(overrides={"project": "project", "entity": "entity"})

artifact_type, artifact_name = "model", "checkpoints"  # provide type and name
for v in api.artifact_versions(artifact_type, artifact_name):
    # Clean up versions that don't have an alias such as 'latest'.
    # NOTE: You can put whatever deletion logic you want here.
    if len(v.aliases) == 0:
        v.delete()

remaining = sorted(v.version for v in api.artifacts("model", "checkpoints"))

# -- the docs: delete multiple artifact versions with aliases
api = wandb.Api()
run = api.run(f"entity/project/{scratch.id}")

for artifact in run.logged_artifacts():
    # Set delete_aliases=True in order to delete
    # artifacts with one more aliases
    artifact.delete(delete_aliases=True)

# -- the docs: delete an artifact collection
api = wandb.Api(overrides={"project": "project", "entity": "entity"})
collection = api.artifact_collection("model", "entity/project/checkpoints")
collection.delete()

# -- checks
assert remaining == ["v1", "v4"]  # 'best' and 'latest' stay
assert api.artifacts("dataset", "scratch") == []
assert not api.artifact_collection_exists("checkpoints", "model")
assert not api.artifact_exists("entity/project/checkpoints:best")
