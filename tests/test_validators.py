"""Checksum and format validators of national IDs, cards, IBANs and phone numbers.

Valid vectors were computed for these tests (check digits worked out by hand-written code apart
from the validators) or are the published specimen numbers of their standards.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from dlpproxy.detect import validators as v


def _replace_last(value: str, char: str) -> str:
    return value[:-1] + char


@pytest.mark.parametrize("number", ["4539148803436467", "4539 1488 0343 6467", "79927398713"])
def test_luhn_accepts_numbers_with_correct_check_digit(number: str) -> None:
    assert v.luhn(number)


def test_luhn_rejects_wrong_check_digit() -> None:
    assert not v.luhn("4539148803436468")


@pytest.mark.parametrize(
    "number",
    [
        "4539148803436467",  # Visa
        "2221000000000009",  # Mastercard 2-series
        "5555-5555-5555-4444",  # Mastercard 51-55
        "378282246310005",  # Amex, 15 digits
        "6011 1111 1111 1117",  # Discover
    ],
)
def test_credit_card_accepts_issuer_ranges_with_luhn(number: str) -> None:
    assert v.credit_card(number)


def test_credit_card_rejects_wrong_check_digit() -> None:
    assert not v.credit_card("2221000000000008")


def test_credit_card_rejects_luhn_valid_number_outside_issuer_ranges() -> None:
    assert v.luhn("1234567812345670")
    assert not v.credit_card("1234567812345670")


def test_credit_card_rejects_amex_prefix_with_sixteen_digits() -> None:
    assert v.luhn("3782822463100052")
    assert not v.credit_card("3782822463100052")


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 00",
        "SA0380000000608010167519",
        "ES9121000418450200051332",
        "GB82 WEST 1234 5698 7654 32",
    ],
)
def test_iban_mod97_accepts_valid_ibans(iban: str) -> None:
    assert v.iban_mod97(iban)


def test_iban_mod97_rejects_wrong_check_digits() -> None:
    assert not v.iban_mod97("DE88370400440532013000")


def test_iban_mod97_rejects_length_not_registered_for_country() -> None:
    # FR IBANs are 27 characters; a German-length body under FR fails even before mod 97.
    assert not v.iban_mod97("FR89370400440532013000")


def test_iban_mod97_rejects_unknown_country() -> None:
    assert not v.iban_mod97("QQ89370400440532013000")


@pytest.mark.parametrize("rrn", ["850417-2123456", "0506104123456", "990101-1000000"])
def test_kr_rrn_accepts_valid_birth_date_and_citizen_digit(rrn: str) -> None:
    assert v.kr_rrn(rrn)


def test_kr_rrn_does_not_require_the_pre_2020_check_digit() -> None:
    # Both end digits cannot satisfy the old weighted checksum at once; both are accepted.
    assert v.kr_rrn("850417-2123456") and v.kr_rrn("850417-2123457")


def test_kr_rrn_rejects_month_thirteen() -> None:
    assert not v.kr_rrn("851317-1234567")


def test_kr_rrn_rejects_february_thirtieth() -> None:
    assert not v.kr_rrn("850230-1234567")


def test_kr_rrn_rejects_birth_date_in_the_future() -> None:
    year = (datetime.date.today().year + 1) % 100
    assert not v.kr_rrn(f"{year:02d}0101-3123456")


def test_kr_rrn_rejects_foreigner_digit() -> None:
    assert not v.kr_rrn("850417-5123456")


def test_kr_arn_accepts_foreigner_digits_five_to_eight() -> None:
    assert all(v.kr_arn(f"050417-{digit}123456") for digit in "5678")


def test_kr_arn_rejects_citizen_digit() -> None:
    assert not v.kr_arn("850417-1123456")


@pytest.mark.parametrize("number", ["11010519491231002X", "440304199003073518"])
def test_cn_resident_id_accepts_valid_check_character(number: str) -> None:
    assert v.cn_resident_id(number)


def test_cn_resident_id_accepts_lowercase_x() -> None:
    assert v.cn_resident_id("11010519491231002x")


def test_cn_resident_id_rejects_wrong_check_character() -> None:
    assert not v.cn_resident_id("440304199003073519")


def test_cn_resident_id_rejects_unknown_province_code() -> None:
    # 99 is no province; the check character is recomputed so only the region is wrong.
    assert not v.cn_resident_id("990304199003073515")


def test_cn_resident_id_rejects_invalid_birth_date() -> None:
    assert not v.cn_resident_id("440304199002303511")


@pytest.mark.parametrize("dni", ["12345678Z", "87654321-X", "12345678 z"])
def test_es_dni_accepts_mod23_letter(dni: str) -> None:
    assert v.es_dni(dni)


def test_es_dni_rejects_wrong_letter() -> None:
    assert not v.es_dni("12345678A")


@pytest.mark.parametrize("nie", ["X1234567L", "Y7654321G", "Z0012345E"])
def test_es_nie_accepts_prefix_mapped_mod23_letter(nie: str) -> None:
    assert v.es_nie(nie)


def test_es_nie_rejects_wrong_letter() -> None:
    assert not v.es_nie("X1234567M")


def test_es_nie_rejects_dni_shaped_number() -> None:
    assert not v.es_nie("12345678Z")


@pytest.mark.parametrize("curp", ["GODE561231HDFRRN00", "HEGG560427MVZRRL04", "MAPL050715MNLRRSA4"])
def test_mx_curp_accepts_valid_check_digit(curp: str) -> None:
    assert v.mx_curp(curp)


def test_mx_curp_rejects_wrong_check_digit() -> None:
    assert not v.mx_curp("GODE561231HDFRRN01")


def test_mx_curp_rejects_unknown_state_code() -> None:
    assert not v.mx_curp("GODE561231HXXRRN00")


def test_mx_curp_rejects_impossible_birth_date() -> None:
    assert not v.mx_curp("GODE561331HDFRRN00")


@pytest.mark.parametrize("rfc", ["GODE561231GR8", "ABC680524P73", "MELM8305281H1"])
def test_mx_rfc_accepts_valid_homoclave_check_digit(rfc: str) -> None:
    assert v.mx_rfc(rfc)


def test_mx_rfc_rejects_wrong_check_digit() -> None:
    assert not v.mx_rfc("GODE561231GR9")


def test_mx_rfc_format_accepts_wrong_check_digit() -> None:
    assert v.mx_rfc_format("GODE561231GR9")


def test_mx_rfc_format_rejects_invalid_date() -> None:
    assert not v.mx_rfc_format("GODE561331GR8")


def test_sa_national_id_accepts_citizen_number_with_luhn() -> None:
    assert v.sa_national_id("1012345672")


def test_sa_national_id_rejects_wrong_check_digit() -> None:
    assert not v.sa_national_id("1012345678")


def test_sa_national_id_rejects_resident_prefix() -> None:
    assert not v.sa_national_id("2345678912")


def test_sa_iqama_accepts_resident_number_with_luhn() -> None:
    assert v.sa_iqama("2345678912")


def test_sa_iqama_rejects_wrong_check_digit() -> None:
    assert not v.sa_iqama("2345678913")


def test_us_ssn_accepts_valid_area_group_serial() -> None:
    assert v.us_ssn("536-22-8705")


@pytest.mark.parametrize("ssn", ["000-12-3456", "666-12-3456", "912-12-3456", "536-00-8705",
                                 "536-22-0000", "078-05-1120"])  # fmt: skip
def test_us_ssn_rejects_never_issued_numbers(ssn: str) -> None:
    assert not v.us_ssn(ssn)


def test_email_address_accepts_address_with_subdomain() -> None:
    assert v.email_address("park.sj@mail.example.co.kr")


def test_email_address_rejects_image_name_with_scale_suffix() -> None:
    assert not v.email_address("icon@2x.png")


@pytest.mark.parametrize(
    ("validator", "number"),
    [
        (v.phone_kr, "010-2345-6789"),
        (v.phone_kr, "+82 10 2345 6789"),
        (v.phone_kr, "02-123-4567"),
        (v.phone_cn, "138 0013 8000"),
        (v.phone_cn, "+86 139 1234 5678"),
        (v.phone_cn, "010-62345678"),
        (v.phone_es, "+34 612 345 678"),
        (v.phone_es, "912 34 56 78"),
        (v.phone_mx, "+52 55 1234 5678"),
        (v.phone_mx, "+52 1 33 1234 5678"),
        (v.phone_sa, "+966 50 123 4567"),
        (v.phone_sa, "0501234567"),
        (v.phone_us, "(415) 555-0132"),
        (v.phone_us, "+1 415 555 0132"),
    ],
)
def test_phone_validators_accept_numbers_of_their_plan(
    validator: Callable[[str], bool], number: str
) -> None:
    assert validator(number)


@pytest.mark.parametrize(
    ("validator", "number"),
    [
        (v.phone_kr, "+86 10 2345 6789"),  # another country's prefix
        (v.phone_kr, "10-2345-6789"),  # no trunk 0
        (v.phone_cn, "128 0013 8000"),  # no mobile block 12x
        (v.phone_es, "512 345 678"),  # Spanish numbers start 6-9
        (v.phone_mx, "+52 05 1234 5678"),  # area codes start 2-9
        (v.phone_sa, "+966 40 123 4567"),  # neither 5x mobile nor 1x fixed
        (v.phone_us, "(911) 555-0132"),  # N11 is a service code
        (v.phone_us, "(415) 055-0132"),  # exchange starts 2-9
    ],
)
def test_phone_validators_reject_numbers_outside_their_plan(
    validator: Callable[[str], bool], number: str
) -> None:
    assert not validator(number)


def test_every_validator_is_registered_by_its_function_name() -> None:
    assert all(func.__name__ == name for name, func in v.VALIDATORS.items())
