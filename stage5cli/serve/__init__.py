"""`stage5 serve`: the review room, a local web page over the project (Starlette on uvicorn).

Every action calls the same core function as the CLI command (curation, conflicts, jobs,
locking, library, history, project, extract.service); the gatekeeper bar reads
`readiness.assess`. Nothing here is imported by `stage5 --help`: starlette and uvicorn are the
optional extra `stage5[serve]`, imported by the `serve` command only.
"""
