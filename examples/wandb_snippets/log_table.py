"""Source: docs.wandb.ai — Log tables ("Create a table", "Add data", "Retrieve data": `wandb.Table`
with `columns`/`data`, `add_data`, `add_column`, `Table(dataframe=df)`, `get_column`,
`iterrows`, `get_dataframe`, `run.log({"table_key": my_table})`, reading it back from the run's
artifact with `run.use_artifact(...).get("table_key")`)."""

import pandas as pd
import wandb

run = wandb.init(project="table-test")

# Create a table
my_table = wandb.Table(columns=["a", "b"], data=[["a1", "b1"], ["a2", "b2"]])
my_table.add_data("a3", "b3")
my_table.add_column(name="c", data=[1, 2, 3])

# From a DataFrame
df = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 0.25, 0.125]})
df_table = wandb.Table(dataframe=df)

# Log the tables to the run
run.log({"table_key": my_table})
run.log({"df_table": df_table})

# Retrieve data
col = my_table.get_column("c")
rows = [row for _, row in my_table.iterrows()]
back_df = my_table.get_dataframe()
run_id = run.id
run.finish()

# Access the table logged in a run (W&B names the artifact run-<run id>-<key>)
run = wandb.init(project="table-test")
artifact = run.use_artifact(f"run-{run_id}-table_key:latest")
table = artifact.get("table_key")
run.finish()

# -- checks: what W&B does
assert col == [1, 2, 3] and rows[2] == ["a3", "b3", 3]
assert list(back_df.columns) == ["a", "b", "c"] and len(back_df) == 3
assert artifact.type == "run_table"
assert table.columns == ["a", "b", "c"] and table.data == my_table.data
summary = wandb.Api().run(f"table-test/{run_id}").summary
assert summary["table_key"]["_type"] == "table-file" and summary["table_key"]["nrows"] == 3
assert summary["df_table"]["ncols"] == 2
