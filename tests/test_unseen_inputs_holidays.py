"""National-holiday inputs nobody had tried: regressions found by feeding `ebbtide backtest` and
`ebbtide replay` generated traces with public holidays of several countries (US, GB, DE, CN, JP,
IL, AE, NZ) in far-from-UTC zones.

Cases (fast, no Prophet fit):
- a policy whose `country_holidays` matches the two-capitals pattern but names no country the
  `holidays` package knows (XX) is refused at load, naming the file, the line and the field
  (it passed validation, and then every fit of the replay or the controller failed);
- codes the package knows (including a Friday-Saturday weekend country, IL) still load;
- policies.events.check_holiday_country returns a known code unchanged and refuses an unknown
  one with a message naming the code;
- `forecast.calendar_tz`: an unknown zone is refused at load naming file, line and field; a
  known one reaches the forecaster the replay and the controller build (holiday dates on the
  audience's calendar, not UTC's); absent, UTC.
"""

from __future__ import annotations

import pytest

from policies.errors import InputFileError
from policies.events import check_holiday_country
from policies.loading import load_policy_text

POLICY = """apiVersion: ebbtide/v1
workloads:
  - name: live
    target: {kind: Deployment, namespace: default, name: live}
    demand: {query: 'viewers', per_replica: 100}
    pod_startup: 90s
    scaling: {min_replicas: 1, max_replicas: 50}
    forecast:
      country_holidays: COUNTRY
"""
ZONED = POLICY.replace("country_holidays: COUNTRY", "country_holidays: CN\n      calendar_tz: ZONE")


def test_unknown_country_code_is_refused_at_load_naming_file_line_and_field():
    with pytest.raises(InputFileError) as info:
        load_policy_text(POLICY.replace("COUNTRY", "XX"), "p.yaml")
    assert info.value.problems == [
        "p.yaml:9 workloads[0].forecast.country_holidays: unknown holiday country code 'XX' (the "
        "`holidays` package has no such country; use an ISO 3166 code such as CN, US, DE)"
    ]


@pytest.mark.parametrize("code", ["US", "GB", "DE", "CN", "JP", "IL", "AE", "NZ"])
def test_known_country_codes_load(code):
    policy = load_policy_text(POLICY.replace("COUNTRY", code), "p.yaml")
    assert policy.workloads[0].forecast.country_holidays == code


def test_check_holiday_country():
    assert check_holiday_country("JP") == "JP"
    with pytest.raises(ValueError, match="unknown holiday country code 'ZZ'"):
        check_holiday_country("ZZ")


def test_unknown_calendar_zone_is_refused_at_load_naming_file_line_and_field():
    with pytest.raises(InputFileError) as info:
        load_policy_text(ZONED.replace("ZONE", "Mars/Olympus"), "p.yaml")
    assert info.value.problems == [
        "p.yaml:10 workloads[0].forecast.calendar_tz: unknown IANA time zone 'Mars/Olympus' (e.g. Asia/Shanghai, UTC)"
    ]


def test_calendar_zone_reaches_the_forecaster():
    from scaler.replay.runner import default_model_factory

    policy = load_policy_text(ZONED.replace("ZONE", "Asia/Shanghai"), "p.yaml")
    model = default_model_factory(policy.workloads[0], [])()
    assert (model.settings.calendar_tz, model.settings.country_holidays) == ("Asia/Shanghai", "CN")
    plain = load_policy_text(POLICY.replace("COUNTRY", "CN"), "p.yaml")
    assert default_model_factory(plain.workloads[0], [])().settings.calendar_tz == "UTC"
