"""Source: docs.wandb.ai — Tables in artifacts ("Log tables to artifacts": `artifact.add(table,
"my_table")`, `artifact["other_table"] = table`, retrieve with `artifact.get("my_table")`, and a
Table built column by column with `add_column`)."""

import wandb

# -- the pattern
with wandb.init(project="table-artifacts", job_type="eval") as run:
    table = wandb.Table(columns=["id", "pred", "label"])
    for i in range(5):
        table.add_data(i, i % 2, 1)
    per_class = wandb.Table()
    per_class.add_column("class", ["cat", "dog"])
    per_class.add_column("precision", [0.9, 0.8])
    artifact = wandb.Artifact("eval-results", type="results")
    artifact.add(table, "my_table")
    artifact["per_class"] = per_class
    run.log_artifact(artifact)

with wandb.init(project="table-artifacts", job_type="report") as run:
    artifact = run.use_artifact("eval-results:latest")
    my_table = artifact.get("my_table")
    per_class = artifact["per_class"]

# -- checks: what W&B does
assert sorted(artifact.manifest.entries) == ["my_table.table.json", "per_class.table.json"]
assert my_table.get_column("pred") == [0, 1, 0, 1, 0]
assert [row for _, row in per_class.iterrows()] == [["cat", 0.9], ["dog", 0.8]]
accuracy = sum(p == label for _, (_, p, label) in my_table.iterrows()) / len(my_table.data)
assert accuracy == 0.4
