"""`nightshift submit PROMPT`: enqueue one job; print its id, or wait and print the image paths.
`nightshift submit --from IMAGE.png`: the job that made a PNG again, the flags given winning.

Imports only the client and the expiry parser: a plain submit stays fast (no batch-file
parser, no torch); --from loads the PNG reader (producer/replay.py) when it is used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from config.errors import InvalidInput
from config.records import JobRecord, JobStatus
from producer.client import Client, Job
from producer.timeparse import parse_expiry

# Flags passed on to Client.submit as they are; None means the default from settings (or,
# replaying, what the source says).
SUBMIT_FIELDS = (
    "model",
    "negative_prompt",
    "prompt_2",
    "negative_prompt_2",
    "seed",
    "steps",
    "width",
    "height",
    "guidance",
    "images",
    "scheduler",
    "priority",
    "queue",
    "init_image",
    "mask",
    "strength",
)
HIRES_FLAGS = ("scale", "steps", "strength", "upscaler")  # --hires-<name>, Hires' fields


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="enqueue one prompt (or a PNG's job again); prints its id")
    p.add_argument("prompt", nargs="?", help="required unless --from gives one")
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="IMAGE.png",
        help="the job that made this PNG (Nightshift's or A1111's) again; flags override it",
    )
    p.add_argument(
        "--wildcards",
        action="store_true",
        help="fill the prompt's {a|b} and __name__ wildcards (dynamicprompts) from its seed",
    )
    add_job_options(p)
    p.set_defaults(handler=cmd_submit)


def add_job_options(p: argparse.ArgumentParser) -> None:
    """The flags submit and replay share: every job field, and how to wait and print."""
    p.add_argument("--model", help="a catalog name (`nightshift models`); default: its default")
    p.add_argument("--negative-prompt")
    p.add_argument("--prompt-2", help="SDXL only: the prompt for its second text encoder")
    p.add_argument("--negative-prompt-2", help="SDXL only: the second encoder's negative prompt")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--images", type=int)
    p.add_argument("--scheduler")
    p.add_argument("--priority", type=int, help="0 (first) to 9 (last)")
    p.add_argument("--queue")
    p.add_argument(
        "--lora",
        dest="loras",
        action="append",
        type=lora_arg,
        metavar="NAME[:WEIGHT]",
        help="apply a LoRA (weight 1 unless given); repeat for more. <lora:NAME:W> in the "
        "prompt works too",
    )
    p.add_argument("--init-image", type=Path, metavar="PATH", help="img2img: the starting image")
    p.add_argument(
        "--mask", type=Path, metavar="PATH", help="inpaint: white repaints (needs --init-image)"
    )
    p.add_argument(
        "--strength", type=float, help="img2img's denoising strength (0-1]; default 0.75"
    )
    p.add_argument(
        "--hires-scale",
        type=float,
        help="hires fix: upscale the first pass by this (2 when only another --hires-* is given)",
    )
    p.add_argument("--hires-steps", type=int, help="hires fix: its steps (default: the job's)")
    p.add_argument("--hires-strength", type=float, help="hires fix: its denoising strength")
    p.add_argument("--hires-upscaler", choices=("lanczos", "latent"))
    p.add_argument(
        "--vary-seed",
        type=count_arg,
        default=0,
        metavar="N",
        help="replaying: queue N neighbours (seeds +1 .. +N) instead of the job itself",
    )
    p.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="tell this URL if the job fails (a webhook or an apprise URL); repeat for more",
    )
    p.add_argument("--id", dest="job_id", help="your own job id; an existing id is not run twice")
    p.add_argument("--expires", help="drop the job if not started in time: 30m, 8h, or an ISO time")
    p.add_argument("--wait", action="store_true", help="wait, then print the output path(s)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to --wait")
    p.add_argument(
        "--json",
        action="store_true",
        help="print each job's record as one JSON line (`nightshift schema record`)",
    )


def lora_arg(text: str) -> dict[str, Any]:
    """`--lora NAME` or `--lora NAME:WEIGHT` (LoRA names hold no ':')."""
    name, sep, weight = text.rpartition(":")
    if not sep:
        return {"name": text.strip(), "weight": 1.0}
    try:
        return {"name": name.strip(), "weight": float(weight)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME or NAME:WEIGHT") from None


def count_arg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 or more")
    return value


def job_params(args: argparse.Namespace) -> dict[str, Any]:
    """The job fields the flags give; None for each one not given."""
    params: dict[str, Any] = {name: getattr(args, name) for name in SUBMIT_FIELDS}
    params["loras"] = args.loras
    params["notify"] = args.notify
    hires = {name: getattr(args, f"hires_{name}") for name in HIRES_FLAGS}
    params["hires"] = {k: v for k, v in hires.items() if v is not None} or None
    if args.expires:
        params["expires_at"] = parse_expiry(args.expires, time.time(), "--expires")
    return params


def cmd_submit(args: argparse.Namespace) -> int:
    if args.source is None and args.prompt is None:
        raise InvalidInput("prompt", None, "is required, unless --from IMAGE.png gives one")
    if args.source is None and args.vary_seed:
        raise InvalidInput("--vary-seed", args.vary_seed, "replays: use it with --from")
    client = Client.from_env()
    params = job_params(args)
    if args.source is None:
        prompt = args.prompt
        if args.wildcards:
            prompt, params["seed"] = filled(prompt, params["seed"], client)
        return report([client.submit(prompt, job_id=args.job_id, **params)], args)
    from producer import replay  # only here: Pillow and the infotext parser

    notes: list[str] = []
    try:
        jobs = replay.submit_from(
            client,
            args.source,
            args.vary_seed,
            notes,
            prompt=args.prompt,
            job_id=args.job_id,
            **params,
        )
    finally:
        print_notes(notes)  # also when the job is refused: they may say why
    return report(jobs, args)


def filled(prompt: str, seed: int | None, client: Client) -> tuple[str, int]:
    """The prompt with its wildcards filled the way a batch fills them, and the seed that
    filled them: drawn here when none was given, so the job stores the prompt its seed makes."""
    import secrets

    from config.schema import SEED_MAX
    from producer.batches.wildcards import expand_one  # only here: dynamicprompts

    seed = secrets.randbelow(SEED_MAX + 1) if seed is None else seed
    return expand_one(prompt, seed, client.settings), seed


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"nightshift: note: {note}", file=sys.stderr)


def report(jobs: list[Job], args: argparse.Namespace) -> int:
    """Print each job as submit does (its id, its paths once done, or its record as JSON);
    1 when any of them failed."""
    deadline = time.monotonic() + args.timeout
    failed = False
    for job in jobs:
        # The live bar goes to stderr, so stdout keeps only the path(s) or the JSON.
        left = max(deadline - time.monotonic(), 0.0)
        record = job.wait(left, progress=True) if args.wait else job.record()
        if args.json:
            print(record.to_json_line())
        elif args.wait:
            _print_outcome(record)
        else:
            print(job.id)
        failed = failed or record.status is JobStatus.FAILED
    return 1 if failed else 0


def _print_outcome(record: JobRecord) -> None:
    if record.status is JobStatus.SUCCEEDED:
        print("\n".join(record.outputs))
    else:
        print(f"{record.id} {record.status.value}: {record.error or ''}", file=sys.stderr)
