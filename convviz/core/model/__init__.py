"""The model: zoo and files, built as trained, its preprocessing, labels and head."""
