"""The Compare tab: the current model beside another of its architecture (before / after a fine-tune)."""
