"""Source: the "use the artifact if it exists, else build it" pattern of public training repos
(`try: artifact = api.artifact(name) except wandb.errors.CommError: ...`), and docs.wandb.ai —
Public API reference (`api.artifact_exists`)."""

import wandb
from wandb.errors import CommError

api = wandb.Api()
name = "entity/errors/processed-data:latest"


def get_or_build():
    try:
        artifact = api.artifact(name)
        built = False
    except CommError:
        with wandb.init(project="errors", job_type="preprocess") as run:
            artifact = wandb.Artifact("processed-data", type="dataset")
            with artifact.new_file("data.csv", mode="w") as f:
                f.write("x,y\n1,2\n")
            run.log_artifact(artifact)
        artifact = api.artifact(name)
        built = True
    return artifact, built


first, built_first = get_or_build()
second, built_second = get_or_build()

try:
    api.artifact("entity/errors/never-logged:v0")
    raised = None
except wandb.Error as e:
    raised = e

# -- checks: what W&B does
assert built_first and not built_second
assert first.digest == second.digest
assert isinstance(raised, CommError)
assert api.artifact_exists(name) and not api.artifact_exists("entity/errors/never-logged:v0")
