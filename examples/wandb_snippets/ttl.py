"""Source: https://docs.wandb.ai/models/artifacts/ttl ("Set a TTL policy when you create an
artifact", "Set or edit a TTL policy after you create an artifact", "Set a TTL policy outside of
a run", "Deactivate a TTL policy", "View TTL policies")."""

from datetime import timedelta

import artifactfs as wandb

# -- setup
with open("my_file", "w") as f:
    f.write("data")

# -- the docs: at creation
with wandb.init(project="my-project-name", entity="my-entity") as run:
    artifact = wandb.Artifact(name="artifact-name", type="dataset")
    artifact.add_file("my_file")

    artifact.ttl = timedelta(days=30)  # Set TTL policy
    run.log_artifact(artifact)

# -- the docs: edit after creation
with wandb.init(project="my-project-name", entity="my-entity") as run:
    artifact = run.use_artifact("my-entity/my-project-name/artifact-name:latest")
    artifact.ttl = timedelta(days=365 * 2)  # Delete in two years
    artifact.save()
    two_years = run.use_artifact("my-entity/my-project-name/artifact-name:latest").ttl

# -- the docs: outside of a run
api = wandb.Api()

artifact = api.artifact("my-entity/my-project-name/artifact-name:latest")

artifact.ttl = timedelta(days=365)  # Delete in one year

artifact.save()
one_year = api.artifact("my-entity/my-project-name/artifact-name:latest").ttl

# -- the docs: deactivate, then view
with wandb.init(project="my-project-name", entity="my-entity") as run:
    artifact = run.use_artifact("my-entity/my-project-name/artifact-name:latest")
    artifact.ttl = None
    artifact.save()
    artifact = run.use_artifact("my-entity/my-project-name/artifact-name:latest")
    print(artifact.ttl)

# -- checks
assert two_years == timedelta(days=730) and one_year == timedelta(days=365)
assert artifact.ttl is None
