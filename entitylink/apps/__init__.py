"""The faces: command line, HTTP service, spaCy component and the demo (imported by path, on use)."""
