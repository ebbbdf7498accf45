"""Declarative, idempotent provisioning of teams, roles, users, trunks and queues from YAML.

provisioner = Provisioner(database.sessions, realm=settings.realm)
report = provisioner.apply_file("callcenter.yaml")   # raises ProvisioningError
print(report.summary())
"""

from callwarden.provisioning.errors import Problem, ProvisioningError
from callwarden.provisioning.report import ObjectKind, Outcome, ProvisionReport
from callwarden.provisioning.service import Provisioner

__all__ = [
    "ObjectKind",
    "Outcome",
    "Problem",
    "ProvisionReport",
    "Provisioner",
    "ProvisioningError",
]
