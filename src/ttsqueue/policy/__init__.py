"""Who may be called, and when: calling windows, holidays, the callee's time zone, the daily
contact cap and the do-not-call list (SPEC §13).

The pure parts (`windows`, `closed_days`, `zones`, `opening`, `rules`, `clock`) know nothing of
Redis; `gate` combines them with the two Redis-backed stores into the one decision a worker
asks for just before dialing.
"""
