"""The patient's side after the form: their own page behind a signed link (status, withdraw
consent, ask for erasure) and the services only it uses."""
