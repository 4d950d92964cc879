"""`sbteam-tui eval`: score the team on closed-form data-analysis questions.

The question format is InfiAgent-DABench's (ICML 2024): one JSON object per line
with `id`, `question`, `constraints`, `format` (answers as `@name[value]`),
`file_name`, `level` and `concepts`; labels with `common_answers`.

- `dabench`: reads questions and labels, builds the task the team is given;
- `answers`: finds `@name[value]` answers in the team's messages and compares them;
- `score`: DABench's three accuracies (ABQ, PSAQ, UASQ), overall, by level, by concept;
- `runner`: runs every question with its own sandbox and run record, resumable,
  shardable across machines (`team.scale`), writing `results.jsonl`;
- `report`: `summary.json` and `report.md`, also for merged shards;
- `sample`: the bundled question set (`team/data/eval/`) and the scripted solver
  that answers it in DEMO mode by really running pandas code in the sandbox.
"""
