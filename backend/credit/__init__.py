"""Credit: requests, fan-out to providers, normalisation, ranking and acceptance of quotes.

`backend.credit.pricing` is the pure part (no database, no HTTP): cash-flow schedules, the EU APRC
and US Reg Z APR, total cost of credit, collateral metrics, the DeFi pools' rate model, ranking.
"""
