"""A frozen copy of the pricing code before the speed work (git 78b32352988c).

Why: the optimised `backend.credit.pricing` and `backend.credit.normalise` must give exactly the
same outputs, to the last digit of every Decimal and every string of the quote document, because
the document is hashed into the EIP-712 `quoteHash` the borrower signs. The guard test
(test_pricing_equivalence.py) and scripts/bench/pricing.py compare against these modules. They are
the original files with only their imports pointed here; do not edit them, re-copy them. The
cash-flow and schedule modules were not touched by that work, so these import the live ones.
"""
