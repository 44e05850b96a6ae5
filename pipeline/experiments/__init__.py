"""One module per family; each exposes `run(ctx: RunContext) -> RunOutput`."""
