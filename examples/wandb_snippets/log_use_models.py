"""Source: https://docs.wandb.ai/models/track/log/log-models (log_model, use_model) and
https://docs.wandb.ai/models/registry/model_registry/link-model-version (link_model)."""

import os

import artifactfs as wandb

# -- setup: a one-file model and a model directory
with open("model.pt", "wb") as f:
    f.write(b"weights" * 100)
os.makedirs("model_dir", exist_ok=True)
for part in ("config.json", "weights.bin"):
    with open(os.path.join("model_dir", part), "w") as f:
        f.write(part)

# -- the docs: log a model to a run
run = wandb.init(project="models", entity="acme")
run.log_model(path="model.pt", name="my-model")
run.finish()

# -- the docs: download and use a logged model
run = wandb.init(project="models", entity="acme")
downloaded_model_path = run.use_model(name="my-model")
run.finish()

# -- the docs: link a model version to the model registry
run = wandb.init(entity="acme", project="models")
run.link_model(path="model_dir", registered_model_name="Fine-Tuned-Review-Autocompletion")
run.finish()

# -- checks
assert os.path.basename(downloaded_model_path) == "model.pt"  # one file: the file itself
assert open(downloaded_model_path, "rb").read() == b"weights" * 100
api = wandb.Api()
linked = api.artifact("acme/model-registry/Fine-Tuned-Review-Autocompletion:latest")
assert linked.type == "model" and linked.is_link and linked.version == "v0"
assert sorted(linked.manifest.entries) == ["config.json", "weights.bin"]
assert linked.source_artifact.qualified_name.startswith("acme/models/run-")
