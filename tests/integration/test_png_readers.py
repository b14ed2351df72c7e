"""Nightshift's PNGs as other tools read them: sd-parsers, a reader nobody here wrote, takes them
for AUTOMATIC1111's and reads back what the job was."""

from __future__ import annotations

from pathlib import Path

from sd_parsers import ParserManager
from sd_parsers.data import Generators

from config.records import JobStatus
from producer.client import Client

JOBS = [
    # prompt, negative prompt, scheduler and its A1111 label, size
    ("a lighthouse on a cliff, (mist:1.2)", "blurry, text", "euler_a", "Euler a", (64, 96)),
    ("منارة على جرف عند الغروب", "ضبابي، نص", "ddim", "DDIM", (64, 64)),
    # Looks like A1111's separator to a careless reader, mid-line; is part of the prompt.
    ("a poster titled Negative prompts: none, pop art", "lowres", "pndm", "PLMS", (96, 64)),
]


def test_sd_parsers_reads_every_png_as_a1111s(client: Client, worker) -> None:
    jobs = [
        client.submit(
            prompt,
            negative_prompt=negative,
            scheduler=scheduler,
            seed=1000 + i,
            steps=2 + i,
            guidance=6.5,
            width=size[0],
            height=size[1],
        )
        for i, (prompt, negative, scheduler, _, size) in enumerate(JOBS)
    ]
    records = [job.wait(timeout=180) for job in jobs]
    parser = ParserManager()

    for i, (record, (prompt, negative, _, label, size)) in enumerate(
        zip(records, JOBS, strict=True)
    ):
        assert record.status is JobStatus.SUCCEEDED, record.error
        info = parser.parse(Path(record.outputs[0]))

        assert info is not None, record.outputs[0]
        assert info.generator is Generators.AUTOMATIC1111
        assert info.full_prompt == prompt
        assert info.full_negative_prompt == negative
        (sampler,) = info.samplers
        assert sampler.name == label
        assert sampler.parameters["seed"] == str(1000 + i)
        assert sampler.parameters["steps"] == str(2 + i)
        assert sampler.parameters["cfg_scale"] == "6.5"
        assert sampler.model is not None and sampler.model.name == record.spec.model
        assert info.metadata["Size"] == f"{size[0]}x{size[1]}"
        assert info.metadata["Job id"] == record.id
