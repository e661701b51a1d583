"""Checksum and format validators for personal identifiers, named by `rules/pii.yaml`.

Each validator takes the text a pattern matched (separators included) and says whether it is a
well-formed identifier of its kind. Pure functions, no I/O: they run on every regex candidate.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

_NON_DIGIT = re.compile(r"\D")
_SEPARATORS = re.compile(r"[\s\-./()]")


def _digits(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


def _is_date(year: int, month: int, day: int, not_after: datetime.date | None = None) -> bool:
    """A real calendar day, and not in the future (nobody is born tomorrow)."""
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return False
    return born <= (not_after or datetime.date.today())


def luhn(value: str) -> bool:
    """Luhn mod 10 (ISO/IEC 7812-1 annex B): payment cards, Saudi national IDs."""
    digits = _digits(value)
    if len(digits) < 2:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# Card number ranges (issuer identification number prefix, allowed lengths), from the networks'
# published IIN ranges: Visa, Mastercard (51-55 and 2221-2720), Amex, Discover, JCB, Diners,
# UnionPay, Maestro, Mir.
_CARD_RANGES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (4, 4, (13, 16, 19)), (51, 55, (16,)), (2221, 2720, (16,)), (34, 34, (15,)), (37, 37, (15,)),
    (6011, 6011, (16, 17, 18, 19)), (644, 649, (16, 17, 18, 19)), (65, 65, (16, 17, 18, 19)),
    (3528, 3589, (16, 17, 18, 19)), (36, 36, (14, 15, 16, 17, 18, 19)),
    (300, 305, (14, 15, 16, 17, 18, 19)), (38, 39, (14, 15, 16, 17, 18, 19)),
    (62, 62, (16, 17, 18, 19)), (50, 50, (12, 13, 14, 15, 16, 17, 18, 19)),
    (56, 58, (12, 13, 14, 15, 16, 17, 18, 19)), (2200, 2204, (16, 17, 18, 19))
)  # fmt: skip


def credit_card(value: str) -> bool:
    """A payment card number: a known issuer range with its length, and the Luhn check."""
    digits = _digits(value)
    for low, high, lengths in _CARD_RANGES:
        prefix = int(digits[: len(str(low))])
        if low <= prefix <= high and len(digits) in lengths:
            return luhn(digits)
    return False


# IBAN length per country, from the SWIFT IBAN registry (ISO 13616).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_mod97(value: str) -> bool:
    """IBAN (ISO 13616): the country's registered length, and ISO 7064 MOD 97-10 equal to 1."""
    iban = _compact(value)
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


# The 7th digit of a Korean resident registration number encodes sex and century of birth
# (Resident Registration Act enforcement rules): 9/0 for 1800s, 1/2 for 1900s and 3/4 for 2000s
# for citizens; 5/6 (1900s) and 7/8 (2000s) for registered foreigners.
_KR_CENTURY = {"9": 1800, "0": 1800, "1": 1900, "2": 1900, "3": 2000, "4": 2000,
               "5": 1900, "6": 1900, "7": 2000, "8": 2000}  # fmt: skip


def _kr_registration(value: str, allowed_seventh: str) -> bool:
    """Date of birth and sex/century digit; no check digit, which numbers issued since October
    2020 no longer carry (the last six digits became random)."""
    digits = _digits(value)
    if len(digits) != 13 or digits[6] not in allowed_seventh:
        return False
    year = _KR_CENTURY[digits[6]] + int(digits[:2])
    return _is_date(year, int(digits[2:4]), int(digits[4:6]))


def kr_rrn(value: str) -> bool:
    """Korean resident registration number of a citizen (7th digit 1-4, or 9/0 for the 1800s)."""
    return _kr_registration(value, "123490")


def kr_arn(value: str) -> bool:
    """Korean alien registration number (the RRN format with 7th digit 5-8)."""
    return _kr_registration(value, "5678")


# Province-level codes that open a Chinese resident ID (GB/T 2260), plus 71/81/82 (Taiwan,
# Hong Kong, Macao) and 83 (residence permits of Taiwan residents).
_CN_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83"
})  # fmt: skip
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_resident_id(value: str) -> bool:
    """Chinese resident identity number (GB 11643-1999): province code, birth date YYYYMMDD and
    the ISO 7064 MOD 11-2 check character (0-9 or X)."""
    number = _compact(value)
    if len(number) != 18 or not number[:17].isdigit() or number[:2] not in _CN_PROVINCES:
        return False
    if not _is_date(int(number[6:10]), int(number[10:12]), int(number[12:14])):
        return False
    if int(number[6:10]) < 1900:
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _CN_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return number[17] == ("X" if check == 10 else str(check))


_ES_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni(value: str) -> bool:
    """Spanish DNI: eight digits and the control letter of the number mod 23 (Real Decreto
    1553/2005, Ministerio del Interior's letter table)."""
    number = _compact(value)
    if len(number) != 9 or not number[:8].isdigit():
        return False
    return number[8] == _ES_LETTERS[int(number[:8]) % 23]


def es_nie(value: str) -> bool:
    """Spanish NIE (foreigners): X/Y/Z read as 0/1/2, then the DNI mod 23 control letter."""
    number = _compact(value)
    if len(number) != 9 or number[0] not in "XYZ" or not number[1:8].isdigit():
        return False
    return number[8] == _ES_LETTERS[int("XYZ".index(number[0]) * 10**7 + int(number[1:8])) % 23]


# State codes of a CURP (RENAPO): the 32 federal entities and NE, born abroad.
_MX_STATES = frozenset({
    "AS", "BC", "BS", "CC", "CL", "CM", "CS", "CH", "DF", "DG", "GT", "GR", "HG", "JC", "MC",
    "MN", "MS", "NT", "NL", "OC", "PL", "QT", "QR", "SP", "SL", "SR", "TC", "TS", "TL", "VZ",
    "YN", "ZS", "NE"
})  # fmt: skip
_CURP_ALPHABET = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"
_CURP_FORMAT = re.compile(r"[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[0-9A-Z]\d")


def mx_curp(value: str) -> bool:
    """Mexican CURP (RENAPO): format, birth date, state code and the check digit computed over
    the 37-character alphabet with weights 18..2, (10 - sum mod 10) mod 10."""
    curp = _compact(value)
    if len(curp) != 18 or not _CURP_FORMAT.fullmatch(curp) or curp[11:13] not in _MX_STATES:
        return False
    century = 1900 if curp[16].isdigit() else 2000
    if not _is_date(century + int(curp[4:6]), int(curp[6:8]), int(curp[8:10])):
        return False
    total = sum(_CURP_ALPHABET.index(c) * (18 - i) for i, c in enumerate(curp[:17]))
    return int(curp[17]) == (10 - total % 10) % 10


_RFC_ALPHABET = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ"
_RFC_FORMAT = re.compile(r"[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{2}[0-9A]")


def mx_rfc_format(value: str) -> bool:
    """Mexican RFC (SAT): 4 letters (persona física) or 3 (persona moral), a YYMMDD date and a
    three-character homoclave. The check digit is not required: SAT has issued RFCs whose last
    character does not match it, so this form needs a context word to be reported."""
    rfc = _compact(value)
    if not _RFC_FORMAT.fullmatch(rfc):
        return False
    digits = rfc[-9:-3]
    year, month, day = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    return _is_date(2000 + year, month, day) or _is_date(1900 + year, month, day)


def mx_rfc(value: str) -> bool:
    """Mexican RFC with a matching check digit: weights 13..2 over the SAT alphabet on the
    first 12 characters (left-padded with blanks for a persona moral), (11 - sum) mod 11."""
    rfc = _compact(value)
    if not mx_rfc_format(rfc):
        return False
    padded = rfc[:-1].rjust(12)
    total = sum(_RFC_ALPHABET.index(c) * (13 - i) for i, c in enumerate(padded))
    return rfc[-1] == _RFC_ALPHABET[(11 - total) % 11]


def sa_national_id(value: str) -> bool:
    """Saudi national ID (citizens, leading 1): ten digits with the Luhn check."""
    digits = _digits(value)
    return len(digits) == 10 and digits[0] == "1" and luhn(digits)


def sa_iqama(value: str) -> bool:
    """Saudi Iqama / resident ID (leading 2): ten digits with the Luhn check."""
    digits = _digits(value)
    return len(digits) == 10 and digits[0] == "2" and luhn(digits)


# Numbers the SSA never issues or that were burned by publication (Woolworth's wallet card).
_SSN_RETIRED = frozenset({"078051120", "219099999"})


def us_ssn(value: str) -> bool:
    """US Social Security number: area not 000, 666 or 900-999; group not 00; serial not
    0000 (SSA numbering rules, also after the 2011 randomisation)."""
    digits = _digits(value)
    if len(digits) != 9 or digits in _SSN_RETIRED or len(set(digits)) == 1:
        return False
    area, group, serial = int(digits[:3]), digits[3:5], digits[5:]
    return area not in (0, 666) and area < 900 and group != "00" and serial != "0000"


_FILE_EXTENSIONS = frozenset(
    (
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "ico",
        "css",
        "js",
        "ts",
        "py",
        "json",
        "txt",
        "md",
    )
)


def email_address(value: str) -> bool:
    """An e-mail address whose domain ends in a letters-only top-level label that is not a file
    extension (`icon@2x.png` is an image name, not an address)."""
    local, _, domain = value.rpartition("@")
    tld = domain.rsplit(".", 1)[-1].lower()
    return bool(local) and "." in domain and tld.isalpha() and tld not in _FILE_EXTENSIONS


def _national_number(value: str, country_code: str, trunk_zero: bool = False) -> str | None:
    """The national significant digits of a phone number, or None when it belongs elsewhere.

    `+CC` or `00CC` is dropped (with an optional `(0)` after it); in countries that dial a
    trunk 0 before national numbers (Korea, Saudi Arabia) that 0 is required and dropped.
    """
    digits = _digits(value)
    if value.lstrip().startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
        if not digits.startswith(country_code):
            return None
        digits = digits[len(country_code) :]
        return digits.removeprefix("0") if trunk_zero else digits
    if trunk_zero:
        return digits[1:] if digits.startswith("0") else None
    return digits


def _in_plan(value: str, country_code: str, plan: re.Pattern[str], trunk_zero: bool) -> bool:
    number = _national_number(value, country_code, trunk_zero)
    return number is not None and plan.fullmatch(number) is not None


# Phone number plans: Korea (KCC numbering plan), China (MIIT), Spain (CNMC), Mexico (IFT 10-digit
# plan of 2019), Saudi Arabia (CST), North America (NANPA); national significant numbers.
_KR_PHONE = re.compile(r"1[016789]\d{7,8}|2\d{7,8}|[3-6][1-5]\d{7,8}|70\d{8}")
_CN_PHONE = re.compile(r"1[3-9]\d{9}|[1-9]\d{1,2}[2-8]\d{6,7}")
_ES_PHONE = re.compile(r"[6-9]\d{8}")
_MX_PHONE = re.compile(r"1?[2-9]\d{9}")
_SA_PHONE = re.compile(r"5\d{8}|1[1-7]\d{7}")
_US_PHONE = re.compile(r"1?[2-9](?!11)\d{2}[2-9]\d{6}")


def phone_kr(value: str) -> bool:
    """South Korean phone number: mobile 01x, Seoul 02, regional 0[3-6]x, internet 070."""
    return _in_plan(value, "82", _KR_PHONE, trunk_zero=True)


def phone_cn(value: str) -> bool:
    """Chinese phone number: mobile 1[3-9] + 9 digits, or a landline 0 + area code + number."""
    number = _national_number(value, "86")
    if number is not None and number.startswith("0"):
        number = number[1:]
    return number is not None and _CN_PHONE.fullmatch(number) is not None


def phone_es(value: str) -> bool:
    """Spanish phone number: nine digits starting 6/7 (mobile) or 8/9 (fixed)."""
    return _in_plan(value, "34", _ES_PHONE, trunk_zero=False)


def phone_mx(value: str) -> bool:
    """Mexican phone number: ten digits (area code 2-9), an old mobile `1` allowed after +52."""
    return _in_plan(value, "52", _MX_PHONE, trunk_zero=False)


def phone_sa(value: str) -> bool:
    """Saudi phone number: mobile 5x + 7 digits, or a fixed line 1[1-7] + 7 digits."""
    return _in_plan(value, "966", _SA_PHONE, trunk_zero=True)


def phone_us(value: str) -> bool:
    """North American (NANP) number: area code and exchange start 2-9, no N11 area code."""
    return _in_plan(value, "1", _US_PHONE, trunk_zero=False)


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "luhn": luhn,
    "credit_card": credit_card,
    "iban_mod97": iban_mod97,
    "kr_rrn": kr_rrn,
    "kr_arn": kr_arn,
    "cn_resident_id": cn_resident_id,
    "es_dni": es_dni,
    "es_nie": es_nie,
    "mx_curp": mx_curp,
    "mx_rfc": mx_rfc,
    "mx_rfc_format": mx_rfc_format,
    "sa_national_id": sa_national_id,
    "sa_iqama": sa_iqama,
    "us_ssn": us_ssn,
    "email_address": email_address,
    "phone_kr": phone_kr,
    "phone_cn": phone_cn,
    "phone_es": phone_es,
    "phone_mx": phone_mx,
    "phone_sa": phone_sa,
    "phone_us": phone_us,
}
