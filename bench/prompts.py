"""Prompts for the speed benchmark, built here from our own templates.

Three kinds of about 2 KB each, as people paste them into a chat:
- `prose`: an English request full of names, e-mail addresses, phone numbers, card numbers,
  IBANs and national IDs;
- `code`: a slice of a CPython standard-library module (textwrap.py, shlex.py, from the running
  interpreter: real public code) followed by a JavaScript snippet of ours holding a token or two;
- `mixed`: prose, code and Korean and Chinese text together.
Values are random but well-formed (valid checksums where a format has one) and seeded.
"""

from __future__ import annotations

import random
import shlex
import string
import textwrap
from pathlib import Path

FIRST = ("Maria", "James", "Min-jun", "Wei", "Sofia", "Ahmed", "Lucas", "Yuna", "Carlos", "Emma")
LAST = ("Garcia", "Smith", "Kim", "Chen", "Rossi", "Al-Harbi", "Martin", "Park", "Lopez", "Brown")
CITIES = ("Seoul", "Madrid", "Riyadh", "Austin", "Shanghai", "Monterrey", "Busan", "Seville")

PROSE = (
    "Hi, can you draft a polite reply to {name} ({email}) about the delayed refund? "
    "They called from {phone} twice this week and the case is escalated.\n",
    "Please summarise the account notes: customer {name}, SSN {ssn}, lives in {city}, "
    "card on file {card}, and wants the statement sent to {email}.\n",
    "Rewrite this in a friendlier tone: Dear {name}, your transfer to IBAN {iban} "
    "was rejected because the reference did not match our records.\n",
    "Translate for the {city} office: the new hire {name} (employee ID {order}) starts "
    "on Monday; reach them on {phone} if the badge is not ready.\n",
    "Check the grammar: {name} asked us to update the billing address in {city} and to "
    "charge the renewal to the card ending {card4} instead of the old one.\n",
    "Make a table of these contacts: {name}, {email}, {phone}; then {name2}, {email2}.\n",
)
KOREAN = (
    "다음 고객 정보를 정리해 주세요. 이름 {kname}, 연락처 010-{p4a}-{p4b}, 서울 지점 방문 예정.\n",
    "회의록 요약: 다음 분기 출시 일정과 예산 검토, 담당자는 {kname} 팀장입니다.\n",
)
CHINESE = (
    "请帮我把下面的客户资料整理成表格：姓名{cname}，手机号13{p9}，地址在上海浦东新区。\n",
    "这段代码为什么报错？我们在生产环境里部署后，日志显示连接超时。\n",
)
JS = (
    "// config loader pasted from our service\n"
    "const client = new Octokit({{ auth: '{github}' }});\n"
    "const aws = {{ accessKeyId: '{aws_id}', region: 'eu-west-1' }};\n"
    "async function fetchOrders(page) {{\n"
    "  const headers = {{ 'X-Trace': '{order}' }};\n"
    "  const res = await fetch(`/api/orders?page=${{page}}`, {{ headers }});\n"
    "  if (!res.ok) throw new Error(`orders: ${{res.status}}`);\n"
    "  return res.json();\n"
    "}}\n"
)


def _luhn_complete(digits: str) -> str:
    """Append the Luhn check digit to `digits`."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    """A German-format IBAN with a valid mod-97 check."""
    bban = "".join(rng.choices(string.digits, k=18))
    numeric = int(bban + "131400")  # "DE" as digits (D=13, E=14) followed by check "00"
    return f"DE{98 - numeric % 97:02d}{bban}"


def _values(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    card = _luhn_complete("4" + "".join(rng.choices(string.digits, k=14)))
    token = "".join(rng.choices(string.ascii_letters + string.digits, k=36))
    return {
        "name": f"{first} {last}",
        "name2": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "email": f"{first.lower()}.{last.lower()}@example-corp.com",
        "email2": f"{rng.choice(FIRST).lower()}{rng.randint(1, 99)}@mail.example.org",
        "phone": f"+1 512-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "card": " ".join(card[i : i + 4] for i in range(0, 16, 4)),
        "card4": card[-4:],
        "iban": _iban(rng),
        "order": f"ORD-{rng.randint(10**7, 10**8 - 1)}",
        "city": rng.choice(CITIES),
        "kname": rng.choice(("김민수", "이서연", "박지훈", "최유나")),
        "cname": rng.choice(("王伟", "李娜", "张敏", "刘洋")),
        "p4a": str(rng.randint(1000, 9999)),
        "p4b": str(rng.randint(1000, 9999)),
        "p9": "".join(rng.choices(string.digits, k=9)),
        "github": "ghp_" + token,
        "aws_id": "AKIA" + "".join(rng.choices(string.ascii_uppercase + "234567", k=16)),
    }


def _fit(parts: list[str], size: int) -> str:
    """Join parts and cut at the last line or word break at or before `size` characters."""
    text = "".join(parts)
    if len(text) <= size:
        return text
    cut = max(text.rfind("\n", 0, size), text.rfind(" ", 0, size))
    return text[: cut if cut > size // 2 else size]


def _fill(rng: random.Random, templates: tuple[str, ...], size: int) -> list[str]:
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(rng.choice(templates).format(**_values(rng)))
    return parts


def _stdlib_slice(rng: random.Random, size: int) -> str:
    """`size` characters of real public Python code, from a whole line onwards."""
    source = Path(rng.choice((textwrap.__file__, shlex.__file__))).read_text(encoding="utf-8")
    start = source.find("\n", rng.randrange(0, len(source) - size - 1)) + 1
    return source[start : start + size]


def _within_bytes(text: str, size: int) -> str:
    """`text` cut at a line or word break so that its UTF-8 form holds at most `size` bytes."""
    if len(text.encode()) <= size:
        return text
    head = text.encode()[:size].decode("utf-8", errors="ignore")
    return _fit([head], len(head) - 1)


def prose(rng: random.Random, size: int = 2048) -> str:
    return _fit(_fill(rng, PROSE, size), size)


def code(rng: random.Random, size: int = 2048) -> str:
    js = JS.format(**_values(rng))
    return _fit([_stdlib_slice(rng, size - len(js)), "\n", js], size)


def mixed(rng: random.Random, size: int = 2048) -> str:
    """Prose, a fenced Python slice, Korean, Chinese and the JavaScript snippet, by byte share."""
    js = JS.format(**_values(rng))
    rest = size - len(js.encode())
    parts = [
        _within_bytes("".join(_fill(rng, PROSE, rest)), rest * 35 // 100),
        "\n```python\n" + _stdlib_slice(rng, rest // 4) + "\n```\n",
        _within_bytes("".join(_fill(rng, KOREAN, rest)), rest * 20 // 100),
        "\n" + _within_bytes("".join(_fill(rng, CHINESE, rest)), rest * 15 // 100),
        "\n" + js,
    ]
    return "".join(parts)


KINDS = {"prose": prose, "code": code, "mixed": mixed}


def corpus(kind: str, count: int, size: int = 2048, seed: int = 7) -> list[str]:
    """`count` different prompts of one kind, each at most `size` bytes of UTF-8 (Korean and
    Chinese take three bytes a character, so a mixed prompt has fewer characters)."""
    rng = random.Random(f"{kind}:{seed}")
    return [_within_bytes(KINDS[kind](rng, size), size) for _ in range(count)]


def large_text(size: int, seed: int = 11) -> str:
    """One text of `size` characters: mixed prompts one after another (a pasted log or dump)."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        part = KINDS[("prose", "code", "mixed")[len(parts) % 3]](rng, 2048) + "\n\n"
        parts.append(part)
        total += len(part)
    return "".join(parts)[:size]
