"""Errors of the billing domain."""

from __future__ import annotations

from backend.exceptions import BadRequest, NotFound


class UnknownPlan(BadRequest):
    """The plan code is not one of `backend.billing.plans.PLANS`."""

    code = "billing_unknown_plan"


class NoSubscription(NotFound):
    """The provider has no billing subscription (no plan, no statement currency)."""

    code = "billing_no_subscription"


class BadPeriod(BadRequest):
    """A statement period must start at 00:00 UTC on the first of a month."""

    code = "billing_bad_period"


class StatementNotFound(NotFound):
    """No billing statement with this id is yours."""

    code = "billing_statement_not_found"
