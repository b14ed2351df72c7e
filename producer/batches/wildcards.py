"""Wildcards in prompts, filled by dynamicprompts: the syntax of the A1111 and ComfyUI wildcard
extensions and of InvokeAI, so a prompt written for them means the same here.

A prompt holding `{`, `__`, `${` or `%{` is a dynamicprompts template: variants `{a|b}`, nested
`{a|{b|c}}`, several at once `{2$$a|b|c}`, weighted `{3::a|b}`, wildcard files `__colors__`
(a .txt file, one value a line, or lists in a .yaml/.json file) from the wildcard folders,
variables `${x=...}`. Inside a template, as in dynamicprompts, `#`, `//` and `/* */` start
comments and a bare `$` or `%` is a syntax error. Any other prompt is kept exactly as written,
so `100% cotton, #1` stays what it was before templates existed.

Random mode fills a template from a generator seeded with the job's seed: the same template
and seed give the same text, the text dynamicprompts' own RandomPromptGenerator(seed=...)
gives. Combinatorial mode lists every combination, in the library's order.

Templates come from files anyone may send: each is bounded before pyparsing sees it (its
length, how many marks it holds, how deep its braces nest), since parsing costs about a
millisecond per mark. A wildcard is a name, never a path: no `..`, no absolute name, no link
out of the wildcard folders, and a name no folder holds is refused instead of being left in
the prompt (the library's fallback, which in combinatorial mode repeats without end).
"""

from __future__ import annotations

import itertools
import os
import random
import re
import warnings
from pathlib import Path
from typing import Literal

import dynamicprompts
from dynamicprompts.commands import Command
from dynamicprompts.enums import SamplingMethod
from dynamicprompts.parser.parse import parse
from dynamicprompts.sampling_context import SamplingContext
from dynamicprompts.wildcards import WildcardManager
from dynamicprompts.wildcards.collection import WildcardCollection, WildcardTextFile
from dynamicprompts.wildcards.collection.structured import parse_structured_file
from dynamicprompts.wildcards.values import WildcardValues

from config import fields as rules
from config.errors import InvalidJob
from config.settings import Settings

Mode = Literal["random", "combinatorial"]
MODES: tuple[Mode, ...] = ("random", "combinatorial")
# What a batch records (in its digest) so that a file is only "the same batch" again when it
# would be filled the same way.
EXPANDER = f"dynamicprompts {dynamicprompts.__version__}"
SYNTAX = ("{", "__", "${", "%{")
# A real prompt holds a few dozen marks; 256 parse in well under a second.
MAX_MARKS = 256
MAX_NESTING = 16  # pyparsing recurses about ten frames per level: 200 levels overflow
WILDCARD_SUFFIXES = (".txt", ".yaml", ".json")
# A drive (C:), a home (~), or a root: a wildcard is named from inside its folders only.
_ABSOLUTE = re.compile(r"[/\\~]|[A-Za-z]:")
# Combinatorial mode draws nothing at random except `{~a|b}` inside it; a fixed seed keeps
# the same file making the same rows.
COMBINATORIAL_SEED = 0


def is_template(prompt: str) -> bool:
    """Whether dynamicprompts has anything to fill in this prompt."""
    return any(mark in prompt for mark in SYNTAX)


def wildcard_folders(settings: Settings) -> list[Path]:
    """The wildcard folders, in search order: wildcard_dirs (split on os.pathsep), else
    <data_dir>/wildcards. The first folder holding a name serves it."""
    listed = [p.strip() for p in settings.wildcard_dirs.split(os.pathsep) if p.strip()]
    folders = [Path(p) for p in listed] or [settings.data_path / "wildcards"]
    return [folder.expanduser().resolve() for folder in folders]


def expand_one(prompt: str, seed: int, settings: Settings) -> str:
    """One prompt filled for this seed (random mode), as a batch would fill it for a job of
    that seed; a prompt without template syntax comes back unchanged. Raises InvalidJob
    naming `prompt` (`nightshift submit --wildcards`)."""
    return Wildcards(settings).fill(prompt, seed)


class Wildcards:
    """Fills templates for one batch (or one submit): each template parsed once, the wildcard
    folders read once, and only when a template names a wildcard."""

    def __init__(self, settings: Settings) -> None:
        self.folders = wildcard_folders(settings)
        self.max_chars = settings.max_prompt_chars
        self._parsed: dict[str, Command] = {}
        self._files: _Folders | None = None
        self._contexts: dict[tuple[SamplingMethod, bool], SamplingContext] = {}

    def check(self, template: str) -> None:
        """Refuse, naming `prompt`, a template too long, too busy, or not dynamicprompts
        syntax; a plain prompt passes (the job's own validation judges it)."""
        if is_template(template):
            self._command(template)

    def fill(self, template: str, seed: int) -> str:
        """The template with one choice made everywhere, drawn from `seed`."""
        if not is_template(template):
            return template
        return self._sample(template, SamplingMethod.RANDOM, seed, 1)[0]

    def every(self, template: str, limit: int) -> list[str]:
        """Every combination of the template, at most limit + 1 of them (one more than the
        limit says "more"), made lazily: the ones past it are never built."""
        if not is_template(template):
            return [template]
        return self._sample(template, SamplingMethod.COMBINATORIAL, COMBINATORIAL_SEED, limit + 1)

    def _sample(self, template: str, method: SamplingMethod, seed: int, count: int) -> list[str]:
        command = self._command(template)
        context = self._context(method, "__" in template)
        # Seeded afresh for each fill, as RandomPromptGenerator does for each of its seeds:
        # the same draws as a new Random(seed), without building a context for every job.
        context.rand.seed(seed)
        try:
            return [str(p) for p in itertools.islice(context.sample_prompts(command), count)]
        except InvalidJob:
            raise
        except Exception as exc:
            # pyparsing's errors for a wildcard file's line, RecursionError for a file that
            # names itself, ValueError for a variable never set: all the template's fault.
            raise InvalidJob("prompt", template, _reason(exc, parsing=False)) from None

    def _context(self, method: SamplingMethod, files: bool) -> SamplingContext:
        key = (method, files)
        if key not in self._contexts:
            if files and self._files is None:  # the folders are read once, when first named
                self._files = _Folders(self.folders)
            manager = self._files if files and self._files is not None else _NO_FILES
            self._contexts[key] = SamplingContext(
                default_sampling_method=method, wildcard_manager=manager, rand=random.Random()
            )
        return self._contexts[key]

    def _command(self, template: str) -> Command:
        command = self._parsed.get(template)
        if command is None:
            _check_size(template, self.max_chars)
            try:
                with warnings.catch_warnings():
                    # pyparsing 3.3 deprecates names dynamicprompts 0.31 builds its grammar
                    # with: the library's business, not the prompt's.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    command = parse(template)
            except Exception as exc:  # pyparsing's ParseException, RecursionError
                raise InvalidJob("prompt", template, _reason(exc, parsing=True)) from None
            self._parsed[template] = command
        return command


def _check_size(template: str, max_chars: int) -> None:
    try:
        rules.check_text(template, max_chars, required=True)
    except ValueError as exc:
        raise InvalidJob("prompt", template, str(exc)) from None
    marks = sum(template.count(c) for c in "{|}") + template.count("__")
    if marks > MAX_MARKS:
        reason = f"more than {MAX_MARKS} of {{ | }} and __ in one prompt: split it"
        raise InvalidJob("prompt", f"{marks} marks", reason)
    depth = deepest = 0
    for char in template:
        if char in "{}":
            depth = max(depth + (1 if char == "{" else -1), 0)
            deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        raise InvalidJob("prompt", f"{deepest} levels", f"braces nest deeper than {MAX_NESTING}")


def _reason(exc: Exception, parsing: bool) -> str:
    if isinstance(exc, RecursionError):
        return "its wildcards or variables refer to themselves without end"
    text = " ".join(str(exc).split())[:200]
    if not parsing:  # a wildcard file's line that does not parse, a variable never set
        return f"cannot be filled: {text}"
    hint = "a lone __, $ or % and an unclosed { are template syntax"
    return f"not a dynamicprompts template ({hint}): {text}"


class _Folders(WildcardManager):
    """dynamicprompts' wildcard manager over the files of the wildcard folders, read by us:
    links to files outside the folders are left out, links to folders are not entered (a loop
    would never end), FIFOs and devices are skipped; and a name it cannot serve is refused,
    with the files that were skipped and why."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        found, self.skipped = _collect([f for f in folders if f.is_dir()])
        # One root holding every name: the library would walk the folders itself, following
        # links wherever they go.
        root: dict[str, WildcardCollection | list[str]] = dict(found)
        super().__init__(root_map={"": [root]} if root else None)

    def get_values(self, wildcard: str) -> WildcardValues:
        shown = f"__{wildcard}__"
        parts = re.split(r"[/\\]+", wildcard)
        if _ABSOLUTE.match(wildcard) or ".." in wildcard or ".." in parts:
            reason = "names a file outside the wildcard folders: a wildcard is a name in them"
            raise InvalidJob("prompt", shown, reason)
        values = super().get_values(wildcard)
        if not values:
            where = ", ".join(str(f) for f in self.folders)
            reason = f"no such wildcard (or it is empty) in the wildcard folders: {where}"
            if self.skipped:
                reason += "; skipped: " + "; ".join(self.skipped[:MAX_SKIPPED_SHOWN])
            raise InvalidJob("prompt", shown, reason)
        return values


_NO_FILES = WildcardManager()
MAX_SKIPPED_SHOWN = 3


def _collect(roots: list[Path]) -> tuple[dict[str, WildcardCollection], list[str]]:
    """Name -> collection for every wildcard file (first folder wins), and the files left out,
    each with why. Names as dynamicprompts makes them: a .txt file's path below its folder
    without the suffix, '/'-separated; a .yaml/.json file's keys, under its folder's path."""
    found: dict[str, WildcardCollection] = {}
    skipped: list[str] = []
    for root in roots:
        for folder, dirnames, filenames in os.walk(root):  # links to folders are not entered
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                file = Path(folder) / filename
                if file.suffix not in WILDCARD_SUFFIXES:
                    continue
                target = file.resolve()
                if not any(target.is_relative_to(r) for r in roots):
                    skipped.append(f"{file} is a link out of the wildcard folders")
                elif not target.is_file():
                    skipped.append(f"{file} is not a regular file")
                else:
                    for name, collection in _collections(file, root, skipped):
                        found.setdefault(name, collection)
    return found, skipped


def _collections(
    file: Path, root: Path, skipped: list[str]
) -> list[tuple[str, WildcardCollection]]:
    if file.suffix == ".txt":
        return [(file.relative_to(root).with_suffix("").as_posix(), WildcardTextFile(file))]
    prefix = file.parent.relative_to(root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    try:
        return [(prefix + key, c) for key, c in parse_structured_file(file)]
    except Exception as exc:  # yaml's or json's errors, a decode error
        skipped.append(f"{file} cannot be read: {' '.join(str(exc).split())[:200]}")
        return []
