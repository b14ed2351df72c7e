"""The producer side: the Python client and the `nightshift` command line.

Imports nothing heavy: no torch, no diffusers, so submitting stays fast anywhere.
"""

from producer.client import Client, Job

__all__ = ["Client", "Job"]
