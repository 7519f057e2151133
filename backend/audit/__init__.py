"""The hash-chained audit log: one entry per state-changing API call (issue 4, item 8).

* `chain`: the pure hash chain and its verifier (what an entry's hash covers, and why).
* `recording` + `middleware`: how every POST/PUT/PATCH/DELETE gets exactly one entry, inside
  the request's own transaction when it commits, in a transaction of its own when it fails.
* `service`: appending under the head-row lock, checkpointing the head into the receipt log,
  and verifying the whole log against the receipted heads (`credagg audit verify`).
"""
