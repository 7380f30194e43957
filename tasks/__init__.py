"""The worker package: the stage runner, the Huey consumer with its reaper, and the pipelines."""
