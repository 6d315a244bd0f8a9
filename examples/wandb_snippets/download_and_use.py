"""Source: https://docs.wandb.ai/models/artifacts/download-and-use-an-artifact
(tabs "During a run" and "Outside of a run")."""

import os

import artifactfs as wandb

# -- setup: the docs assume 'bike-dataset' was logged before
os.makedirs("bikes/images", exist_ok=True)
for i in range(3):
    with open(f"bikes/images/bike{i}.png", "wb") as f:
        f.write(bytes([i]) * 100)
with open("bikes/labels.csv", "w") as f:
    f.write("file,label\n")
with wandb.init(entity="entity", project="example", job_type="prepare") as run:
    art = wandb.Artifact("bike-dataset", type="dataset")
    art.add_dir("bikes")
    run.log_artifact(art)
name = "images/bike1.png"

# -- the docs: during a run
with wandb.init(project="example", job_type="job-type") as run:
    # Indicate the artifact to use. Format is "name:alias"
    artifact = run.use_artifact("bike-dataset:latest")
    # Download the entire artifact
    datadir = artifact.download()
    # Download a specific file
    entry = artifact.get_entry(name)
    path = entry.download()

# -- the docs: outside of a run (Public API)
api = wandb.Api()
artifact = api.artifact("entity/example/bike-dataset:latest")
artifact.download()
images = artifact.download(root="only-images", path_prefix="images/")

# -- checks
assert sorted(os.listdir(os.path.join(datadir, "images"))) == [f"bike{i}.png" for i in range(3)]
assert open(path, "rb").read() == bytes([1]) * 100
assert sorted(os.listdir(images)) == ["images"]
assert [f.name for f in artifact.files()][:1] == ["images/bike0.png"]
