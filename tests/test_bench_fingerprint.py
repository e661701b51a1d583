"""The fingerprint bench's own parts: the renamer renames as a person would, and a flagged
snippet counts as a copy of the file it matched by its words alone."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.fingerprint import copied_share, renamed  # noqa: E402

MODULE = """import numpy as np
from shapes import Base

class Box(Base, metaclass=Meta):
    def grow(self, size, dtype=None):
        total = np.zeros(size, dtype=dtype)
        self.count = total
        return helper(total, scale=size)

def helper(values, scale=1):
    box = Box()
    box.grow(3, dtype=int)
    return values * scale
"""


def _run(source: str) -> dict[str, object]:
    scope: dict[str, object] = {}
    exec(compile(source, "module.py", "exec"), scope)
    return scope


def test_renamer_renames_local_names_consistently():
    out = renamed(MODULE)
    for name in ("Box", "size", "total", "helper", "values", "box"):
        assert not any(w.strip("(),:=*") == name for w in out.split()), name
    class_name = out.split("class ")[1].split("(")[0]
    assert out.count(class_name) == 2  # the class and its one use, the same new name


def test_renamer_keeps_keyword_arguments_of_calls_and_the_parameters_they_name():
    out = renamed(MODULE)
    assert "dtype=dtype" in out and "dtype=None" in out and "scale=1" in out
    assert "metaclass=" in out


def test_renamer_keeps_attribute_names_where_they_are_defined_too():
    out = renamed(MODULE)
    assert "def grow(self" in out and ".grow(3" in out and "self.count =" in out


def test_renamed_code_still_runs_and_computes_the_same():
    source = """def area(width, height=2):
    result = width * height
    assert result, f"{width!r} by {height!s}"
    return result

def total(items, factor=1):
    return sum(area(i, height=factor) for i in items)

ANSWER = total([1, 2, 3], factor=3)
"""
    out = renamed(source)
    assert "width" not in out and "result" not in out
    assert _run(source)["ANSWER"] == 18
    assert 18 in _run(out).values()  # under its new name


def test_copy_share_counts_rewrapped_and_reindented_words_in_order():
    source = "intro\n\nThe quick brown fox jumps over the lazy dog and runs far away.\n\nend\n"
    snippet = "    The quick brown fox\n    jumps over the lazy dog\n    and runs far away."
    assert copied_share(snippet, source) == 1.0


def test_copy_share_ignores_short_runs_and_words_out_of_reach():
    snippet = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    scattered = "alpha beta gamma x delta epsilon zeta y eta theta iota z kappa"
    assert copied_share(snippet, scattered) == 0.0
    far = "alpha beta gamma delta epsilon " + "filler " * 100 + "zeta eta theta iota kappa"
    assert copied_share(snippet, far) == 0.5


def test_copy_share_of_a_lightly_edited_copy():
    source = "def close(self):\n    if self.open:\n        self.flush()\n        self.open = 0\n"
    edited = "def close(self):\n    if self.open:\n        self.flush(force=True)\n"
    assert 0.7 <= copied_share(edited, source) < 1.0


def test_two_names_never_get_the_same_new_name():
    # `vafs` and `vamc` share their short hash: one of them gets another name
    out = renamed("def f(vafs, vamc):\n    return vafs - vamc\n")
    assert _run(out)  # a duplicate argument would not compile
    assert len(set(re.findall(r"\bn\d+x*\b", out))) == 3  # f, vafs, vamc


def test_a_form_feed_inside_a_line_does_not_shift_the_renaming():
    source = "total = 1  # page\x0cbreak\nvalue = total + 1\n"
    out = renamed(source)
    assert "\x0c" in out and 2 in _run(out).values()
