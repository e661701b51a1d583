"""The policy file as the console edits it: one value at a time, comments and layout kept.

An edit replaces the text of one YAML scalar (or inserts one `key: value` line into a rule), the
whole new text is validated with the project's own `load_policy`, and only then replaces the
file (temporary file in the same folder + `os.replace`), so the proxy's hot reload sees either
the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from dlpproxy.errors import DlpError
from dlpproxy.policy import ACTIONS, MODES, PolicyError, load_policy

Key = tuple[str | int, ...]


class PolicyEditError(DlpError):
    """An edit that cannot be made or saved; nothing was written."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One editable value: where it lives in the file, what kind it is, its current text."""

    key: Key
    kind: str  # mode | action | threshold
    section: str
    name: str
    value: str

    @property
    def dotted(self) -> str:
        return ".".join(str(k) for k in self.key)


def next_value(setting: Setting) -> str:
    """The value a toggle moves to: the other mode, or the next action."""
    choices = MODES if setting.kind == "mode" else ACTIONS
    if setting.value not in choices:
        return choices[0]
    return choices[(choices.index(setting.value) + 1) % len(choices)]


def check_threshold(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        raise PolicyEditError(f"'{text}' is not a number; a threshold is a score 0..1") from None
    if not 0.0 <= value <= 1.0:
        raise PolicyEditError(f"{value:g} is outside 0..1; a threshold is a score 0..1")
    return f"{value:g}"


class PolicyFile:
    """The policy text on disk, its editable settings, and atomic validated saves."""

    def __init__(self, path: Path):
        self.path = path
        self.text = ""
        self.error = ""
        self.settings: list[Setting] = []
        self._stamp: tuple[int, int] = (0, 0)
        self.reload()

    def reload(self) -> None:
        """Read the file again; `error` says why it cannot be edited (then `settings` is empty)."""
        self.settings, self.error = [], ""
        try:
            self.text = self.path.read_text(encoding="utf-8")
            st = self.path.stat()
            self._stamp = (st.st_mtime_ns, st.st_size)
            load_policy(self.path)
            self.settings = _settings(yaml.compose(self.text))
        except PolicyError as exc:
            self.error = f"{exc} (fix the file by hand; the proxy keeps its previous policy)"
        except (OSError, UnicodeDecodeError) as exc:
            self.error = f"{self.path}: cannot read ({exc})"

    @property
    def writable(self) -> bool:
        """Write permission on file and folder; a file with no write bit counts as read-only
        even for root, who could write it: someone marked it so."""
        try:
            marked = self.path.stat().st_mode & 0o222 != 0
        except OSError:
            return False
        return marked and os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)

    def set(self, key: Key, value: str) -> str:
        """Validate and save the file with `key` set to `value`; returns what was done."""
        if self.error:
            raise PolicyEditError(self.error)
        text = _with_value(self.text, key, value)
        self.save(text)
        return f"saved {'.'.join(str(k) for k in key)} = {value} in {self.path}"

    def save(self, text: str) -> None:
        """Write `text` over the file if it validates and the file did not change meanwhile."""
        if not self.writable:
            raise PolicyEditError(f"{self.path}: no write permission; nothing was written")
        st = self.path.stat()
        if (st.st_mtime_ns, st.st_size) != self._stamp:
            raise PolicyEditError(
                f"{self.path} changed on disk since it was read; press R to reload, then edit"
            )
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            try:
                load_policy(tmp)
            except PolicyError as exc:
                raise PolicyEditError(
                    f"not saved: {PolicyError(str(self.path), exc.problem, exc.line)}"
                ) from None
            os.chmod(tmp, st.st_mode & 0o7777)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise PolicyEditError(f"{self.path}: not saved ({exc.strerror or exc})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self.reload()


def _settings(root: yaml.Node | None) -> list[Setting]:
    if not isinstance(root, yaml.MappingNode):
        return []
    top = _pairs(root)
    out: list[Setting] = []
    if "mode" in top:
        out.append(Setting(("mode",), "mode", "policy", "whole policy", _scalar(top["mode"])))
    for name, node in _pairs(top.get("packs")).items():
        out.append(Setting(("packs", name), "mode", "pack", name, _scalar(node)))
    for detector, cats in _pairs(top.get("thresholds")).items():
        for cat, node in _pairs(cats).items():
            out.append(Setting(("thresholds", detector, cat), "threshold", "threshold",
                               f"{detector} {cat}", _scalar(node)))  # fmt: skip
    out += _rule_settings(top.get("rules"), ("rules",), "rule")
    for section in ("groups", "destinations"):
        for owner, rules in _pairs(top.get(section)).items():
            out += _rule_settings(rules, (section, owner), f"{section[:-1]} {owner}")
    return out


def _rule_settings(node: yaml.Node | None, base: Key, section: str) -> list[Setting]:
    if not isinstance(node, yaml.SequenceNode):
        return []
    out = []
    for i, item in enumerate(node.value):
        fields = _pairs(item)
        rid = _scalar(fields.get("id")) or f"#{i + 1}"
        category = _scalar(fields.get("category")) or "*"
        name = f"{rid} ({category})"
        out.append(Setting((*base, i, "action"), "action", section, name,
                           _scalar(fields.get("action"))))  # fmt: skip
        mode = _scalar(fields.get("mode")) or "enforce"
        out.append(Setting((*base, i, "mode"), "mode", section, name, mode))
    return out


def _pairs(node: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _scalar(node: yaml.Node | None) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _with_value(text: str, key: Key, value: str) -> str:
    """`text` with the scalar at `key` replaced by `value` (the last key inserted if missing)."""
    node: yaml.Node | None = yaml.compose(text)
    for part in key[:-1]:
        node = node.value[part] if isinstance(node, yaml.SequenceNode) and isinstance(
            part, int) and part < len(node.value) else _pairs(node).get(str(part))  # fmt: skip
    if not isinstance(node, yaml.MappingNode):
        raise PolicyEditError(f"{'.'.join(map(str, key))}: not found in the file; reload it")
    target = _pairs(node).get(str(key[-1]))
    if isinstance(target, yaml.ScalarNode):
        start, end = target.start_mark.index, target.end_mark.index
        return text[:start] + value + text[end:]
    if target is not None:
        raise PolicyEditError(f"{'.'.join(map(str, key))}: not a single value")
    return _insert(text, node, f"{key[-1]}: {value}")


def _insert(text: str, mapping: yaml.MappingNode, line: str) -> str:
    """Add `key: value` to a mapping: before `}` in flow style, else a line after its last pair."""
    if mapping.flow_style:
        close = mapping.end_mark.index - 1
        return text[:close].rstrip() + f", {line}" + text[close:]
    first_key = mapping.value[0][0]
    indent = " " * first_key.start_mark.column
    last_value = mapping.value[-1][1]
    eol = text.find("\n", last_value.end_mark.index)
    if eol < 0:
        return text + "\n" + indent + line + "\n"
    return text[: eol + 1] + indent + line + "\n" + text[eol + 1 :]
