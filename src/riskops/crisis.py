"""The words a crisis plan (playbooks) and a running incident share: how severe, and who is told."""

from enum import StrEnum


class Severity(StrEnum):
    sev1 = "SEV1"
    sev2 = "SEV2"
    sev3 = "SEV3"
    sev4 = "SEV4"


class Audience(StrEnum):
    staff = "staff"
    customers = "customers"
    regulator = "regulator"
    press = "press"
    board = "board"
    suppliers = "suppliers"
    partners = "partners"
    authorities = "authorities"
    insurer = "insurer"
