"""The services the dialects share, with no HTTP in them: models, recognition, sessions, training, jobs."""
