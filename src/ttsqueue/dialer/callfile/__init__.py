"""The call-file backend: a call is a file moved into Asterisk's spool (`format`), followed by
watching the spool (`spool_watcher`) and reading what Asterisk leaves behind (`progress`)."""
