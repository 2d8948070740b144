"""Transactional customer emails: templates (en, it), SMTP sending and the email log.

Emails that carry a one-time link arrive over gRPC (``EmailService.SendEmail``),
never through events, so the raw link exists only in memory while the message is
rendered and handed to the SMTP relay: it is not stored, queued or logged.
"""
