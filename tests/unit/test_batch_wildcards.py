"""Wildcards in batch prompts, filled by dynamicprompts (producer/batches/wildcards.py).

Expansions are pinned for fixed seeds: a change of picks (a new dynamicprompts, another way of
seeding) shows here first. Each pinned list is also what the library's own
RandomPromptGenerator(seed=...) gives, so the batch fills templates as the A1111 extension does.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import dynamicprompts
import pytest
from dynamicprompts.generators import RandomPromptGenerator

from config.errors import InvalidJob
from config.settings import Settings
from producer import cli
from producer.batches import file as batchfile
from producer.batches.file import count_jobs, expand, expand_batch, load
from producer.batches.wildcards import EXPANDER, MAX_MARKS, Wildcards, expand_one

TWO_GROUPS = "a {red|green|blue} {cat|dog}"
# seeds 0-5; the home-made expander of before drew green dog, red cat, red cat, red cat, red
# dog, blue dog: dynamicprompts consumes its generator differently (weighted choices).
TWO_GROUPS_PICKS = [
    "a blue cat",
    "a green cat",
    "a red dog",
    "a green cat",
    "a red cat",
    "a blue dog",
]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A wildcard folder: a text file, a YAML file with nested keys, a JSON list."""
    words = tmp_path / "wildcards"
    write(words, "colors.txt", "red\ngreen\nblue\n# a comment, not a color\n\n")
    write(words, "sub/things.yaml", "animals: [cat, dog]\nplaces:\n  indoor: [kitchen, attic]\n")
    write(words, "trees.json", '["oak", "pine"]')
    return words


@pytest.fixture
def settings(tmp_path: Path, folder: Path) -> Settings:
    return Settings(
        default_steps=4,
        queues="q",
        model="tiny",
        data_dir=tmp_path / "data",
        wildcard_dirs=str(folder),
    )


def prompts(path: Path, settings: Settings) -> list[str]:
    return [spec.prompt for spec in expand(load(path), settings, "b")]


def refused(path: Path, settings: Settings) -> InvalidJob:
    with pytest.raises(InvalidJob) as caught:
        expand(load(path), settings, "b")
    return caught.value


def test_a_file_of_plain_variants_makes_as_many_jobs_with_pinned_picks_per_seed(
    tmp_path, settings
) -> None:
    path = write(tmp_path, "b.yaml", f"prompts: ['{TWO_GROUPS}', plain]\nseeds: 0-5\n")
    specs = expand(load(path), settings, "b")

    assert len(specs) == count_jobs(load(path)) == 12
    assert [s.prompt for s in specs[:6]] == TWO_GROUPS_PICKS
    assert [s.seed for s in specs[:6]] == list(range(6))
    assert [s.prompt for s in specs[6:]] == ["plain"] * 6
    library = [RandomPromptGenerator(seed=seed).generate(TWO_GROUPS)[0] for seed in range(6)]
    assert library == TWO_GROUPS_PICKS
    assert prompts(path, settings) == [s.prompt for s in specs]  # the same file, the same text


def test_every_option_is_drawn_over_enough_seeds(tmp_path, settings) -> None:
    path = write(tmp_path, "b.yaml", f"prompts: ['{TWO_GROUPS}']\nseeds: 0-59\n")
    filled = prompts(path, settings)
    assert {p.split()[1] for p in filled} == {"red", "green", "blue"}
    assert {p.split()[2] for p in filled} == {"cat", "dog"}


@pytest.mark.parametrize(
    ("template", "picks"),
    [
        (
            "a {big|{tiny|huge} {red|blue}} fox",  # nested
            ["a tiny red fox", "a tiny blue fox", "a big fox", "a tiny blue fox", "a big fox"],
        ),
        ("{2$$a|b|c}", ["c,a", "b,c", "a,b", "b,a", "a,c"]),  # two of three
        ("{2$$ and $$a|b|c}", ["c and a", "b and c", "a and b", "b and a", "a and c"]),
        ("{1-3$$a|b|c|d}", ["d,b", "c", "a", "c", "b"]),  # one to three
        ("{3::red|blue}", ["blue", "red", "red", "red", "red"]),  # weighted
        (
            "a __colors__ __sub/animals__ in the __sub/places/indoor__, __trees__",
            [
                "a green dog in the attic, pine",
                "a blue cat in the kitchen, oak",
                "a blue cat in the attic, pine",
                "a blue cat in the kitchen, pine",
                "a blue dog in the attic, pine",
            ],
        ),
    ],
    ids=["nested", "two-of", "separator", "range", "weights", "wildcard-files"],
)
def test_dynamicprompts_syntax_is_filled_from_the_jobs_seed(
    tmp_path, settings, template, picks
) -> None:
    path = write(tmp_path, "b.json", f'{{"prompts": ["{template}"], "seeds": "0-4"}}')
    assert prompts(path, settings) == picks


def test_a_weight_makes_an_option_that_much_likelier(settings) -> None:
    filler = Wildcards(settings)  # the template parsed once, not once a seed
    drawn = collections.Counter(filler.fill("{3::red|blue}", seed) for seed in range(1000))
    assert drawn.keys() == {"red", "blue"}
    assert 650 < drawn["red"] < 850  # three to one: 750 expected


def test_wildcards_come_from_the_data_folder_by_default_and_the_first_folder_wins(
    tmp_path,
) -> None:
    data = tmp_path / "data"
    write(data / "wildcards", "fruit.txt", "apple\n")
    plain = Settings(default_steps=4, queues="q", model="tiny", data_dir=data)
    assert expand_one("an __fruit__", 1, plain) == "an apple"

    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "fruit.txt", "pear\n")
    write(second, "fruit.txt", "plum\n")
    write(second, "nut.txt", "walnut\n")
    both = plain.model_copy(update={"wildcard_dirs": f"{first}{os.pathsep}{second}"})
    assert expand_one("a __fruit__ and a __nut__", 1, both) == "a pear and a walnut"


def test_plain_prompts_are_kept_as_written_and_expand_one_is_a_batch_jobs_fill(
    settings,
) -> None:
    for plain in ("100% cotton, #1 // best", "a } b | c", "café, 光"):
        assert expand_one(plain, 7, settings) == plain
    # Inside a template dynamicprompts' own rules hold: '#' starts a comment.
    assert expand_one("a {red|red} fox # note", 3, settings) == "a red fox "
    assert [expand_one(TWO_GROUPS, seed, settings) for seed in range(6)] == TWO_GROUPS_PICKS


def test_combinatorial_mode_makes_a_row_per_combination(tmp_path, settings) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        "wildcards: combinatorial\n"
        "prompts:\n"
        "  - {prompt: 'a __colors__ {cat|dog}', steps: 3}\n"
        "  - plain\n"
        "seeds: [5, 6]\n",
    )
    batch = load(path)
    made = expand_batch(batch, settings, "c")
    specs = made.specs

    assert len(specs) == count_jobs(batch, rows=7) == 14
    assert [s.prompt for s in specs[::2]] == [
        "a blue cat",
        "a blue dog",
        "a green cat",
        "a green dog",
        "a red cat",
        "a red dog",
        "plain",
    ]
    assert [s.seed for s in specs[:2]] == [5, 6]  # seeds still multiply each row
    assert {s.steps for s in specs[:12]} == {3} and specs[12].steps == 4  # the row's fields
    assert made.expander == f"{EXPANDER}, combinatorial"


def test_a_combinatorial_batch_past_the_limit_is_refused_with_its_count_at_dry_run(
    tmp_path, settings, monkeypatch, capsys
) -> None:
    ten = "{" + "|".join("abcdefghij") + "}"
    text = f"wildcards: combinatorial\nprompts: ['{ten}{ten}{ten}']\nseeds: 1-200\n"
    path = write(tmp_path, "big.yaml", text)

    def no_jobs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a job was built before the count was known")

    monkeypatch.setattr(batchfile, "new_job", no_jobs)
    error = refused(path, settings)
    assert error.field == "big.yaml, size"
    assert error.value == 1000 * 200  # exact: 1,000 prompts, each for 200 seeds
    assert "1000 prompts" in error.reason

    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NIGHTSHIFT_REDIS_URL", "redis://127.0.0.1:1/0")  # a dry run needs none
    assert cli.main(["batch", "submit", str(path), "--dry-run"]) == 2
    assert "big.yaml, size: more than 100000 jobs in one batch" in capsys.readouterr().err


def test_listing_combinations_stops_once_past_the_limit(tmp_path, settings, monkeypatch) -> None:
    ten = "{" + "|".join("abcdefghij") + "}"
    path = write(tmp_path, "huge.yaml", f"wildcards: combinatorial\nprompts: ['{ten * 6}']\n")
    monkeypatch.setattr(batchfile, "MAX_JOBS", 1000)  # a million combinations, listed to 1,001
    error = refused(path, settings)
    assert error.field == "huge.yaml, size"
    assert error.value == "at least 1001"


def test_the_expander_and_its_version_are_part_of_the_batch_digest(tmp_path, settings) -> None:
    plain = load(write(tmp_path, "p.yaml", "prompts: [a cat]\n"))
    assert expand_batch(plain, settings, "p").digest == plain.digest
    assert expand_batch(plain, settings, "p").expander is None

    random_mode = load(write(tmp_path, "r.yaml", f"prompts: ['{TWO_GROUPS}']\n"))
    made = expand_batch(random_mode, settings, "r")
    assert made.expander == f"dynamicprompts {dynamicprompts.__version__}, random"
    assert made.digest != random_mode.digest
    assert expand_batch(random_mode, settings, "r").digest == made.digest  # stable


@pytest.mark.parametrize(
    "name",
    ["../secret", "sub/../../secret", "/etc/passwd", "\\\\server\\share", "~/secret", "C:/x"],
)
def test_a_wildcard_outside_the_folders_is_refused(tmp_path, settings, name) -> None:
    write(tmp_path, "secret.txt", "the user's secret\n")
    path = write(
        tmp_path, "w.json", f'{{"prompts": ["a __{name.replace(chr(92), chr(92) * 2)}__"]}}'
    )
    error = refused(path, settings)
    assert error.field == "w.json, row 1, prompt"
    assert "outside the wildcard folders" in error.reason
    assert "secret" not in error.reason


def test_a_link_out_of_the_folder_an_unknown_name_a_loop_and_a_broken_file_are_refused(
    tmp_path, settings, folder
) -> None:
    (folder / "leak.txt").symlink_to(write(tmp_path, "secret.txt", "the user's secret\n"))
    (folder / "inside.txt").symlink_to(folder / "colors.txt")
    write(folder, "loop.txt", "again __loop__\n")
    write(folder, "broken.txt", "an {unclosed\n")
    write(folder, "bad.yaml", "moods: [calm\n")
    assert expand_one("__inside__", 0, settings) == "green"  # a link inside the folder is fine

    for template, reason in [
        ("a __leak__", "leak.txt is a link out of the wildcard folders"),
        ("a __nothing__", "no such wildcard"),
        ("a __moods__", "bad.yaml cannot be read"),
        ("a __loop__", "refer to themselves"),
        ("a __broken__", "cannot be filled"),
    ]:
        path = write(tmp_path, "w.yaml", f"prompts: ['{template}']\n")
        error = refused(path, settings)
        assert error.field == "w.yaml, row 1, prompt"
        assert reason in error.reason
        assert "the user's secret" not in str(error)
    assert expand_one("__colors__", 0, settings) == "green"  # the others are still served


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{" + "|" * (MAX_MARKS + 10) + "}", f"more than {MAX_MARKS} of"),
        ("{" * 40 + "a" + "}" * 40, "braces nest deeper than"),
        ("a {b", "not a dynamicprompts template"),
        ("{a|b} 100%", "not a dynamicprompts template"),
        ("{ | }", "must not be empty"),  # fills to nothing: the job refuses it
    ],
    ids=["marks", "nesting", "unclosed", "bare-percent", "empty"],
)
def test_a_template_is_bounded_before_it_is_parsed_and_refused_naming_row_and_prompt(
    tmp_path, settings, template, reason
) -> None:
    path = write(tmp_path, "t.json", f'{{"prompts": ["ok", "{template}"]}}')
    error = refused(path, settings)
    assert error.field == "t.json, row 2, prompt"
    assert reason in error.reason


def test_wildcards_mode_must_be_random_or_combinatorial(tmp_path, settings) -> None:
    path = write(tmp_path, "m.yaml", "wildcards: every\nprompts: [a]\n")
    error = refused(path, settings)
    assert (error.field, error.value) == ("m.yaml, wildcards", "every")


def test_the_wildcard_folders_are_read_once_and_only_when_a_template_names_one(
    settings, folder, monkeypatch
) -> None:
    from producer.batches import wildcards

    reads: list[Path] = []
    collect = wildcards._collect

    def counting(roots: list[Path]) -> object:
        reads.extend(roots)
        return collect(roots)

    monkeypatch.setattr(wildcards, "_collect", counting)
    filler = Wildcards(settings)
    assert filler.fill("{a|b} c", 1) in ("a c", "b c")
    assert reads == []
    assert [filler.fill("__colors__", seed) for seed in range(3)] == ["green", "blue", "blue"]
    assert reads == [folder]
