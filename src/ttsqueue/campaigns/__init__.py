"""Campaigns (SPEC §13): many calls from one list. This part holds the pure pieces: the
message template and the rows read from a CSV file or JSON."""
