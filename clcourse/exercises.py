"""The exercise generator: `solutions/exNN_topic.py` → `exercises/exNN_topic.py`.

`solutions/` is the single source of every exercise. An exercise is a function whose docstring's first
line starts with its id and lesson section, and whose body holds one solution region:

    def stable_softmax(z, T=1.0):
        \"\"\"ex00.1 · Lesson 00 §5 — Stable softmax of logits z (..., C) at temperature T.\"\"\"
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

The exercise file is the solution file, byte for byte, with a header comment on top and each region
replaced (same indentation) by a TODO line and `raise NotImplementedError("ex00.1: ...")`.
`ast` finds the function around each region; the replacement itself is done on lines, so everything
outside the regions stays exactly as written. Command: `clcourse exercises [--check]`.

Nothing a student wrote is overwritten without asking. Each generated file carries, in its header, a
fingerprint (sha256) of its own text: a file whose text no longer matches it has been edited. `clcourse
exercises` then refuses and lists the edited files; `--force` overwrites them and `--reset exNN` restores
one lesson's file, each after copying the student's version to `exercises/.backup/`. (A file from before
fingerprints counts as edited when any exercise function no longer ends with its stub's raise.)
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import io
import shutil
import time
import re
import sys
import tokenize
from pathlib import Path
from typing import NamedTuple

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# Anything that looks like a marker is checked, so a typo ("## BEGIN SOLUTION") is an error
# instead of a solution silently copied into the students' files.
_MARKER_LIKE = re.compile(r"#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)
# "ex00.1 · Lesson 00 §5 — summary" (the separators may also be -, :, – or nothing).
_DOC_ID = re.compile(
    r"^(?P<id>ex(?P<lesson>\d{2})\.\d+)\s*[·:|\-–—]?\s*"
    r"(?P<section>Lesson\s+\d{2}\s*§\s*\d+(?:\.\d+)*)\s*[—–\-:.]?\s*(?P<summary>.*)$"
)
_FILE_LESSON = re.compile(r"^ex(\d{2})_")
_FINGERPRINT = re.compile(r"^# clcourse-exercises fingerprint: ([0-9a-f]{64})\r?\n", re.MULTILINE)
BACKUP_DIR = ".backup"


class EditedExercisesError(RuntimeError):
    """Generating would overwrite exercise files a student has edited; ``files`` lists them."""

    def __init__(self, files):
        self.files = list(files)
        super().__init__("edited exercise files: " + ", ".join(self.files))


class ExerciseSourceError(ValueError):
    """A solution file breaks the conventions; the message starts with `file:line:`."""


class Exercise(NamedTuple):
    exercise_id: str
    function_name: str
    lesson_section: str
    file: Path


class _Region(NamedTuple):
    exercise_id: str
    function_name: str
    lesson_section: str
    summary: str
    begin: int  # 1-based line of BEGIN
    end: int  # 1-based line of END
    indent: str  # the BEGIN line's leading whitespace, reused for the stub


def id_sort_key(exercise_id: str):
    """Natural order: ex00.2 before ex00.10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", exercise_id)]


def _markers(source: str, filename: str) -> list[tuple[str, int, int]]:
    """(BEGIN|END, line, column) of every marker comment, in order. Using tokenize (not a text search)
    means a marker quoted inside a string or docstring is not mistaken for one."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT or not _MARKER_LIKE.match(tok.string):
            continue
        line, col = tok.start
        text = tok.string.rstrip()
        if text not in (BEGIN, END) or tok.line[:col].strip():
            raise ExerciseSourceError(
                f"{filename}:{line}: malformed solution marker {text!r}; write exactly "
                f"'{BEGIN}' or '{END}' alone on its line"
            )
        found.append(("BEGIN" if text == BEGIN else "END", line, col))
    return found


def _functions_with_extent(tree: ast.Module):
    """Yield (function node, first line after it). A function's extent runs to the next statement
    at its own indentation or less, so trailing comments (an `### END SOLUTION` after the last
    statement, or a region that holds no code) still count as inside it."""
    starts = []  # (line, column) where each statement begins, decorators included
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            decorators = getattr(node, "decorator_list", [])
            starts.append((min([node.lineno] + [d.lineno for d in decorators]), node.col_offset))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            after = [line for line, col in starts if line > node.lineno and col <= node.col_offset]
            yield node, min(after, default=10**9)


def _regions(source: str, filename: str) -> list[_Region]:
    """Parse and check one solution file; return its regions in source order."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise ExerciseSourceError(f"{filename}:{err.lineno}: SyntaxError: {err.msg}") from None
    lines = source.split("\n")

    # 1. Pair the markers: BEGIN, END, BEGIN, END, ... (no nesting, no strays).
    pairs, open_at = [], None
    for kind, line, col in _markers(source, filename):
        if kind == "BEGIN":
            if open_at is not None:
                raise ExerciseSourceError(
                    f"{filename}:{line}: nested '{BEGIN}' (the region opened at line {open_at[0]} "
                    "has no END yet)"
                )
            open_at = (line, col)
        else:
            if open_at is None:
                raise ExerciseSourceError(f"{filename}:{line}: '{END}' without a BEGIN before it")
            if col != open_at[1]:
                raise ExerciseSourceError(
                    f"{filename}:{line}: '{END}' is not indented like its BEGIN at line {open_at[0]}"
                )
            pairs.append((open_at[0], line))
            open_at = None
    if open_at is not None:
        raise ExerciseSourceError(f"{filename}:{open_at[0]}: '{BEGIN}' has no matching '{END}'")

    # 2. Attach each region to the innermost function around it, and read that function's docstring.
    functions = list(_functions_with_extent(tree))
    regions, region_of, first_seen = [], {}, {}
    for begin, end in pairs:
        col = len(lines[begin - 1]) - len(lines[begin - 1].lstrip())
        around = [
            (fn, stop) for fn, stop in functions
            if fn.lineno < begin < stop and col > fn.col_offset
        ]
        if not around:
            raise ExerciseSourceError(
                f"{filename}:{begin}: solution region outside a function (regions go inside the "
                "body of an exercise function)"
            )
        fn, stop = max(around, key=lambda pair: pair[0].lineno)  # innermost = starts last
        if end >= stop:
            raise ExerciseSourceError(
                f"{filename}:{end}: '{END}' lies outside function {fn.name!r} (line {fn.lineno})"
            )
        if fn in region_of:
            raise ExerciseSourceError(
                f"{filename}:{begin}: function {fn.name!r} already has a solution region "
                f"(line {region_of[fn]}); one region per exercise function"
            )
        region_of[fn] = begin
        info = _docstring_id(fn, filename)
        if info is None:
            raise ExerciseSourceError(
                f"{filename}:{fn.lineno}: function {fn.name!r} has a solution region but its "
                "docstring does not start with 'exNN.k · Lesson NN §S — summary'"
            )
        exercise_id, section, summary = info
        if exercise_id in first_seen:
            raise ExerciseSourceError(
                f"{filename}:{fn.lineno}: duplicate exercise id {exercise_id} "
                f"(already used at {filename}:{first_seen[exercise_id]})"
            )
        first_seen[exercise_id] = fn.lineno
        indent = lines[begin - 1][:col]
        regions.append(_Region(exercise_id, fn.name, section, summary, begin, end, indent))

    # 3. Every function that claims an exercise id must have a region, or its solution would leak.
    for fn, _ in functions:
        info = _docstring_id(fn, filename)
        if info is not None and fn not in region_of:
            raise ExerciseSourceError(
                f"{filename}:{fn.lineno}: exercise {info[0]} ({fn.name}) has no '{BEGIN}' region"
            )
    return regions


def _docstring_id(fn: ast.AST, filename: str):
    """(id, section, summary) from the first docstring line, or None when it names no exercise."""
    doc = ast.get_docstring(fn)
    match = _DOC_ID.match(doc.strip().splitlines()[0]) if doc and doc.strip() else None
    if match is None:
        return None
    file_lesson = _FILE_LESSON.match(Path(filename).name)
    if file_lesson and file_lesson.group(1) != match.group("lesson"):
        raise ExerciseSourceError(
            f"{filename}:{fn.lineno}: exercise {match.group('id')} does not belong to lesson "
            f"{file_lesson.group(1)} (the file name says so)"
        )
    section = re.sub(r"\s+", " ", match.group("section"))
    return match.group("id"), section, match.group("summary").strip()


def _header(filename: str) -> str:
    name = Path(filename).name
    lesson = _FILE_LESSON.match(name)
    grade = f"clcourse grade --lesson {lesson.group(1)}" if lesson else "clcourse grade"
    return (
        f"# Generated from solutions/{name} by `clcourse exercises`. This is YOUR file: replace each\n"
        f"# `raise NotImplementedError(...)` with your code, then grade it with `{grade}`.\n"
        "# `clcourse exercises` never overwrites your edits (it refuses unless --force, and keeps a copy\n"
        "# in exercises/.backup/); `clcourse exercises --reset NN` restores this lesson's untouched file.\n"
    )


def generate_text(solution_source: str, filename: str) -> str:
    """The exercise file for one solution file's text (`filename` is used in messages and header)."""
    lines = solution_source.split("\n")  # split on \n only: "\r" of CRLF files stays with its line
    for region in reversed(_regions(solution_source, filename)):
        eol = "\r" if lines[region.begin - 1].endswith("\r") else ""
        todo = f"# TODO {region.exercise_id} ({region.lesson_section})"
        if region.summary:
            todo += f": {region.summary}"
        message = (
            f"{region.exercise_id}: {region.function_name} is not implemented yet"
            f" — see {region.lesson_section}"
        )
        lines[region.begin - 1 : region.end] = [
            f"{region.indent}{todo}{eol}",
            f'{region.indent}raise NotImplementedError("{message}"){eol}',
        ]
    body = "\n".join(lines)
    # A shebang or coding line must stay first; the header goes right after it.
    keep = 0
    while keep < min(2, len(lines)) and re.match(r"^#!|^#.*coding[:=]", lines[keep]):
        keep += 1
    head = "".join(line + "\n" for line in lines[:keep])
    text = head + _header(filename) + body[len(head):]
    text = head + _header(filename) + _fingerprint_line(text) + body[len(head):]
    try:
        compile(text, filename, "exec")
    except SyntaxError as err:  # should not happen: it would be a bug in the generator
        raise ExerciseSourceError(f"{filename}:{err.lineno}: generated exercise does not compile: {err.msg}")
    return text


def _digest(text: str) -> str:
    return hashlib.sha256(_FINGERPRINT.sub("", text, count=1).encode("utf-8")).hexdigest()


def _fingerprint_line(text: str) -> str:
    """The header line that records the sha256 of the generated text (without this line)."""
    return f"# clcourse-exercises fingerprint: {_digest(text)}\n"


def _all_stubs(text: str) -> bool:
    """Is every exercise function of this (pre-fingerprint) file still the generated stub?"""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if not (doc and _DOC_ID.match(doc.strip().splitlines()[0])):
                continue
            last = node.body[-1]  # the stub's raise ends the function until the student replaces it
            stub = (isinstance(last, ast.Raise) and isinstance(last.exc, ast.Call)
                    and getattr(last.exc.func, "id", "") == "NotImplementedError")
            if not stub:
                return False
    return True


def is_edited(path) -> bool:
    """Has the student changed this generated exercise file? (See the module's docstring.)"""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return True
    found = _FINGERPRINT.search(text)
    if found:
        return found.group(1) != _digest(text)
    return not _all_stubs(text)


def back_up(path) -> Path:
    """Copy an exercise file to exercises/.backup/<name>.<timestamp> before it is overwritten."""
    path = Path(path)
    folder = path.parent / BACKUP_DIR
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / f"{path.name}.{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{path.name}.{stamp}-{n}"
    shutil.copy2(path, target)
    return target


def _solution_files(solutions_dir: Path) -> list[Path]:
    return sorted(p for p in Path(solutions_dir).glob("ex*.py") if p.is_file())


def list_exercises(solutions_dir) -> list[Exercise]:
    """Every exercise of `solutions_dir`, in id order; ids must be unique across files."""
    exercises, where = [], {}
    for path in _solution_files(Path(solutions_dir)):
        for region in _regions(path.read_bytes().decode("utf-8"), str(path)):
            if region.exercise_id in where:
                raise ExerciseSourceError(
                    f"{path}:{region.begin}: duplicate exercise id {region.exercise_id} "
                    f"(already in {where[region.exercise_id]})"
                )
            where[region.exercise_id] = path
            exercises.append(
                Exercise(region.exercise_id, region.function_name, region.lesson_section, path)
            )
    return sorted(exercises, key=lambda e: id_sort_key(e.exercise_id))


def _lesson_files(solutions_dir: Path, lessons) -> list[Path]:
    """The solution files of the given lessons ("02", "ex02", "ex02_ewc" or 2); every file if None."""
    files = _solution_files(solutions_dir)
    if lessons is None:
        return files
    chosen = []
    for lesson in lessons:
        digits = re.match(r"^(?:ex)?(\d{1,2})(?:[._].*)?$", str(lesson).strip())
        number = digits.group(1).zfill(2) if digits else None
        found = [p for p in files if number and p.name.startswith(f"ex{number}_")]
        if not found:
            known = ", ".join(p.name[2:4] for p in files) or "none"
            raise ExerciseSourceError(f"no lesson {lesson!r} in {solutions_dir} (lessons: {known})")
        chosen += [p for p in found if p not in chosen]
    return chosen


def generate_all(solutions_dir, exercises_dir, check: bool = False, force: bool = False,
                 lessons=None, backups: list | None = None) -> list[str]:
    """Write exercises_dir/exNN_*.py from solutions_dir, or with `check=True` only compare.

    Returns the exercise files that differ (check) or were written (write), as strings. In check mode a
    file in exercises_dir with no solution counterpart is a difference too; write mode leaves it alone.
    Write mode never overwrites a file the student has edited (``is_edited``): it writes nothing and
    raises ``EditedExercisesError`` listing them, unless ``force``, which first copies each edited file
    to ``exercises_dir/.backup/`` (the copies are appended to ``backups`` when given). ``lessons``: only
    these lessons' files (e.g. ["02"]).
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    list_exercises(solutions_dir)  # validates every file and the uniqueness of ids across files
    plan = []
    for path in _lesson_files(solutions_dir, lessons):
        target = exercises_dir / path.name
        wanted = generate_text(path.read_bytes().decode("utf-8"), str(path)).encode("utf-8")
        if target.is_file() and target.read_bytes() == wanted:
            continue
        plan.append((target, wanted))
    changed = [str(target) for target, _ in plan]
    if not check:
        edited = [target for target, _ in plan if is_edited(target)]
        if edited and not force:
            raise EditedExercisesError([str(t) for t in edited])
        for target, wanted in plan:
            if target in edited:
                copy = back_up(target)
                if backups is not None:
                    backups.append(copy)
            exercises_dir.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wanted)
    if check:
        sources = {p.name for p in _solution_files(solutions_dir)}
        changed += [str(p) for p in _solution_files(exercises_dir) if p.name not in sources]
    return changed


def find_repo_root(start=None) -> Path:
    """The nearest parent of `start` (default: cwd) holding `solutions/` and `pyproject.toml`, else the
    folder above the installed `clcourse` package (right for an editable install)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / "solutions").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path(__file__).resolve().parent.parent


def _shown(path) -> str:
    """A path relative to the working folder when it lies below it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    """`clcourse exercises [--check] [--solutions DIR] [--exercises DIR]`."""
    parser = argparse.ArgumentParser(
        prog="clcourse exercises",
        description="Generate exercises/ from solutions/ (each solution region becomes a TODO stub).",
    )
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if exercises/ differs from the generator's output")
    parser.add_argument("--solutions", type=Path, help="solutions folder (default: <repo>/solutions)")
    parser.add_argument("--exercises", type=Path, help="exercises folder (default: <repo>/exercises)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite edited exercise files too (each is first copied to "
                             "exercises/.backup/)")
    parser.add_argument("--reset", nargs="+", metavar="NN",
                        help="restore these lessons' exercise files as generated, e.g. --reset ex02 "
                             "(your version is first copied to exercises/.backup/)")
    args = parser.parse_args(argv)
    if args.check and (args.force or args.reset):
        parser.error("--check only compares: it cannot be combined with --force or --reset")
    root = find_repo_root()
    solutions = args.solutions or root / "solutions"
    exercises = args.exercises or root / "exercises"
    backups = []
    try:
        changed = generate_all(solutions, exercises, check=args.check, force=args.force or bool(args.reset),
                               lessons=args.reset, backups=backups)
    except EditedExercisesError as err:
        print("Refusing to overwrite exercise files you have edited (nothing was written):",
              file=sys.stderr)
        for name in err.files:
            print(f"  {_shown(name)}", file=sys.stderr)
        print("To restore one lesson's file as generated: `clcourse exercises --reset NN` (for example "
              "--reset 02); to regenerate everything: `clcourse exercises --force`. Either way your "
              f"version is first copied to {_shown(exercises)}/{BACKUP_DIR}/.", file=sys.stderr)
        return 1
    except (ExerciseSourceError, OSError, UnicodeDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print(f"{_shown(exercises)}/ differs from the generator's output (run `clcourse exercises`):")
            for name in changed:
                print(f"  {_shown(name)}")
            return 1
        print(f"{_shown(exercises)}/ is up to date with {_shown(solutions)}/.")
        return 0
    for name in changed:
        print(f"wrote {_shown(name)}")
    for copy in backups:
        print(f"your edited version was kept as {_shown(copy)}")
    if not changed:
        print(f"{_shown(exercises)}/ is already up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
