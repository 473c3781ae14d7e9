"""Built-in hubmgr task plugins."""
