"""Long work as jobs: an import (and later deduplication, scoring, eligibility, payment
preparation) runs in the background of the API process, answering 202 with a status URL, or in
the foreground of a command with its progress bar; either way it is a row of the `job` table
with its state, progress, outcome and errors.

- `kinds`: each stage registers the kinds of job it owns (the registry registers "import"),
  so this package imports no stage above it;
- `runner`: runs a job (in a small pool of threads, or in the caller's thread), reports its
  progress, passes on cancellation, and after a restart marks the jobs a previous process left
  behind as interrupted;
- `service`: the `job` rows: who may see them, their public form;
- `api`: `GET /jobs/{id}`, `POST /jobs/{id}/cancel`, `GET /jobs/{id}/rejects`.
"""
