"""The render side: device policy, pipeline loading, the renderer, and the Celery task.

Nothing here imports torch at module import time: torch loads in the worker child process.
"""
