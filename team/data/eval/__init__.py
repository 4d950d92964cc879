"""The bundled evaluation question set (`sbteam-tui eval --sample`): see README.md here."""
