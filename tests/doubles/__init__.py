"""Real fakes at the Asterisk boundary: an AMI server and a spool that replay recordings."""
