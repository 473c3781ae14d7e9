"""hubmgr: terminal-first manager for pre-trained models."""
