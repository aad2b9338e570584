"""Plausible wrong answers to every exercise, one module per lesson (``exNN_topic.py``).

Each is what a student might really write. ``tests/test_grading_mistakes.py`` swaps each one into the
reference solutions and proves that its own exercise's grading tests fail on it — so the grading
tests catch more than stubs. Every later lesson adds its module here.
"""


def mistake(registry: dict, exercise_id: str):
    """Decorator: file the function under ``exercise_id`` in ``registry``."""
    def register(fn):
        registry.setdefault(exercise_id, []).append(fn)
        return fn
    return register
