"""One try of a non-webhook target through apprise (ntfy, Pushover, Slack, Discord, email...).

`macosx://` (the Mac's Notification Center) goes through apprise when terminal-notifier is
installed (what apprise drives), and through macOS's own osascript otherwise, so the default
"batch finished" message on a Mac needs nothing installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from worker.notify.webhook import TryResult

MAC_SCHEME = "macosx"


def send(url: str, title: str, text: str, timeout_s: float) -> TryResult:
    if url.partition("://")[0].lower() == MAC_SCHEME and shutil.which("terminal-notifier") is None:
        return _osascript(title, text, timeout_s)
    import apprise  # here: only a worker that sends one pays for the import

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return TryResult(False, None, "apprise does not take this URL (unknown service?)")
    if notifier.notify(title=title, body=text):
        return TryResult(True)
    return TryResult(False, None, "apprise could not deliver it (see the worker's log)", True)


def osascript_argv(title: str, text: str) -> list[str]:
    """`display notification`, the title and text passed as arguments, never as script text
    (a prompt holding a quote must not become AppleScript)."""
    script = ["on run argv", "display notification (item 2 of argv) with title (item 1 of argv)"]
    lines = [arg for line in [*script, "end run"] for arg in ("-e", line)]
    return ["osascript", *lines, title, text]


def _osascript(title: str, text: str, timeout_s: float) -> TryResult:
    if sys.platform != "darwin":
        return TryResult(False, None, "macosx:// needs macOS")
    try:
        done = subprocess.run(
            osascript_argv(title, text), capture_output=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return TryResult(False, None, f"osascript: {type(exc).__name__}", True)
    if done.returncode != 0:
        return TryResult(False, None, f"osascript exited {done.returncode}", True)
    return TryResult(True)
