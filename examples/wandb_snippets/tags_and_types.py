"""Source: W&B Public API reference (https://docs.wandb.ai/models/ref/python/public-api/api):
`artifact_type(type_name, project).collections()`, `artifact_collections(project_name,
type_name)`, `artifact_exists`, `artifact_collection_exists`; Run.log_artifact(tags=) and
Artifact.tags (https://docs.wandb.ai/models/ref/python/experiments/run#log_artifact)."""

import artifactfs as wandb

# -- setup
with wandb.init(entity="entity", project="project") as run:
    for name, type_ in (("train-set", "dataset"), ("test-set", "dataset"), ("resnet", "model")):
        artifact = wandb.Artifact(name, type=type_)
        with artifact.new_file("f.txt") as f:
            f.write(name)
        run.log_artifact(artifact, tags=["v1-data"] if type_ == "dataset" else None)

# -- the reference examples
api = wandb.Api()
dataset_type = api.artifact_type("dataset", "entity/project")
names = sorted(c.name for c in dataset_type.collections())
types = sorted(t.name for t in api.artifact_types("entity/project"))
collections = api.artifact_collections(project_name="entity/project", type_name="model")
exists = wandb.Api().artifact_exists("entity/project/resnet:v0")
missing = wandb.Api().artifact_exists("entity/project/resnet:v9")
coll_exists = wandb.Api.artifact_collection_exists(
    api, type="dataset", name="entity/project/train-set"
)

artifact = api.artifact("entity/project/train-set:latest")
artifact.tags = artifact.tags + ["reviewed"]
artifact.save()

# -- checks
assert names == ["test-set", "train-set"] and types == ["dataset", "model"]
assert [c.name for c in collections] == ["resnet"]
assert exists and not missing and coll_exists
assert sorted(api.artifact("entity/project/train-set:v0").tags) == ["reviewed", "v1-data"]
assert [a.name for a in api.artifacts("dataset", "entity/project/test-set", tags=["v1-data"])] == [
    "test-set:v0"
]
