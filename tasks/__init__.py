"""Worker side: the Huey queue, the stage runner and the pipelines."""
