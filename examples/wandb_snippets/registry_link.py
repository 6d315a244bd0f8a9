"""Source: https://docs.wandb.ai/models/registry/link_version ("Link an artifact version within
the context of a run" and "... outside the context of a run")."""

import artifactfs as wandb

# -- setup: the local file the docs link
with open("model.onnx", "wb") as f:
    f.write(b"onnx" * 64)

# -- the docs: within a run
entity = "acme"  # Your team entity
project = "my-project"  # The name of the project that contains your artifact

# Initialize a run
with wandb.init(entity=entity, project=project) as run:
    # Create an artifact object
    artifact = wandb.Artifact(name="my-model", type="model")

    # Add the file to the artifact object.
    artifact.add_file(local_path="model.onnx")

    # Specify the collection and registry to link the artifact to
    REGISTRY_NAME = "model"
    COLLECTION_NAME = "production-models"
    target_path = f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}"

    # Link the artifact to the collection
    run.link_artifact(artifact=artifact, target_path=target_path)

# -- the docs: outside a run
artifact = wandb.Artifact(name="my-dataset", type="dataset")
artifact.add_file(local_path="model.onnx")
REGISTRY_NAME = "dataset"
COLLECTION_NAME = "golden"
target_path = f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}"
artifact.link(target_path=target_path)

# -- checks
api = wandb.Api(overrides={"entity": "acme"})
linked = api.artifact("acme/wandb-registry-model/production-models:v0")
assert linked.is_link and linked.source_name == "my-model:v0"
assert [a.qualified_name for a in linked.source_artifact.linked_artifacts] == [
    "acme/wandb-registry-model/production-models:v0"
]
golden = api.artifact("entity/wandb-registry-dataset/golden:latest")
assert golden.source_artifact.logged_by().job_type == "auto"
