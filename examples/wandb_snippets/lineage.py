"""Source: https://docs.wandb.ai/models/artifacts/explore-and-traverse-an-artifact-graph
("Use the API to track lineage")."""

import artifactfs as wandb

# -- setup: the file the docs add
with open("image1.png", "wb") as f:
    f.write(b"\x89PNG" + bytes(60))

# -- the docs
with wandb.init() as run:
    artifact = wandb.Artifact("artifact_name", "artifact_type")

    # Add Files and Assets to the artifact using
    # `.add`, `.add_file`, `.add_dir`, and `.add_reference`
    artifact.add_file("image1.png")
    run.log_artifact(artifact)

# (a consumer, so that used_by() has something to show)
with wandb.init(job_type="eval") as consumer:
    consumer.use_artifact("artifact_name:latest")

# Walk up and down the graph from an artifact:
producer_run = artifact.logged_by()
consumer_runs = artifact.used_by()

# -- checks
assert producer_run.id == run.id
assert [r.id for r in consumer_runs] == [consumer.id]
assert [a.name for a in consumer_runs[0].used_artifacts()] == ["artifact_name:v0"]
assert [a.name for a in producer_run.logged_artifacts()] == ["artifact_name:v0"]
