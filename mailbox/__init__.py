"""The mailbox app. Note: this package shadows the standard library's ``mailbox`` module for
every process started from the repository root; use ``mailsite.stdlib_mailbox`` for mbox/Maildir.
"""
