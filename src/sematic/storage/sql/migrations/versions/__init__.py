"""One module per schema revision, written by hand."""
