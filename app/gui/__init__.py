"""The desktop app. Qt lives only here; it drives app.core through workers and signals."""
