"""`credagg demo`: the whole journey of issue 7 against a running `credagg dev` stack.

One wallet signs in, asks for credit, compares quotes from two DeFi pools and two HTTP lenders,
accepts, deposits collateral, sees a price drop raise an early-warning alert at its own webhook,
repays, sees its score improve; an auditor then verifies every receipt against both chains.
Modules: `context` (finding the stack), `http` (the API client), `chain` (web3 actions),
`lenders` (example lender processes), `receiver` (the wallet's webhook), `operator` (provider
and key set-up an operator does), `output` (rich steps), `journey` (the steps in order).
"""
