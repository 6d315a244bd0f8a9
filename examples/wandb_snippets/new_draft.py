"""Source: https://docs.wandb.ai/models/artifacts/create-a-new-artifact-version
("Create a new artifact version from an existing version", inside and outside of a run)."""

import os

import artifactfs as wandb

# -- setup: 'my_artifact' with a file to remove, one to modify and a directory to remove
os.makedirs("data/dir_to_remove", exist_ok=True)
for name, text in {
    "data/deleted_file.txt": "old",
    "data/kept.txt": "kept",
    "data/dir_to_remove/x.txt": "x",
}.items():
    with open(name, "w") as f:
        f.write(text)
with open("file_to_add.txt", "w") as f:
    f.write("added")
with open("modified_file.txt", "w") as f:
    f.write("modified")
with wandb.init(project="drafts") as run:
    art = wandb.Artifact("my_artifact", type="dataset")
    art.add_dir("data")
    run.log_artifact(art)

# -- the docs: inside a run
with wandb.init(project="drafts", job_type="modify dataset") as run:
    saved_artifact = run.use_artifact(
        "my_artifact:latest"
    )  # fetch artifact and input it into your run
    draft_artifact = saved_artifact.new_draft()  # create a draft version

    # modify a subset of files in the draft version
    draft_artifact.add_file("file_to_add.txt")
    draft_artifact.remove("dir_to_remove/")
    run.log_artifact(
        draft_artifact
    )  # log your changes to create a new version and mark it as output to your run

# -- the docs: outside of a run
client = wandb.Api(overrides={"project": "drafts"})
saved_artifact = client.artifact("my_artifact:latest")  # load your artifact
draft_artifact = saved_artifact.new_draft()  # create a draft version

# modify a subset of files in the draft version
draft_artifact.remove("deleted_file.txt")
draft_artifact.add_file("modified_file.txt")
draft_artifact.save()  # commit changes to the draft

# -- checks
v1 = client.artifact("my_artifact:v1")
v2 = client.artifact("my_artifact:v2")
assert sorted(v1.manifest.entries) == ["deleted_file.txt", "file_to_add.txt", "kept.txt"]
assert sorted(v2.manifest.entries) == ["file_to_add.txt", "kept.txt", "modified_file.txt"]
assert v2.logged_by().job_type == "auto" and v1.logged_by().job_type == "modify dataset"
assert client.artifact("my_artifact:latest").version == "v2"
